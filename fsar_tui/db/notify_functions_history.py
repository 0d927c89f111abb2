"""Earlier texts of the notification functions, verbatim: what revisions 0037 and 0038
created, so their upgrades create exactly that and the later downgrades put it back
(db/notify_functions.py holds the head's, and says what changed and why).

- 0037: claim / take / record trusting their caller (the state, the clock, the retry).
- 0038: the state checked against its source, the server's clock and retry plan, leases,
  the operator log — but the labels, annotations and times still the caller's, no
  channel required, a lease of up to an hour, any pass taking any channel's delivery.
"""

from __future__ import annotations

from fsar_tui.db.shipped_sql import Fn

RETRY_BASE_S, RETRY_CAP_S, MAX_ATTEMPTS = 60, 3600, 10  # as 0038's record was written with them

CLAIM_0038 = Fn(
    name="fsar_notify_claim",
    params=(
        "p_key text, p_kind text, p_state text, p_labels jsonb, p_annotations jsonb, p_starts_at timestamptz, "
        "p_ends_at timestamptz, p_channel_keys text[], p_channels text[]"
    ),
    signature=(
        "fsar_notify_claim(text, text, text, jsonb, jsonb, timestamp with time zone, timestamp with time zone, "
        "text[], text[])"
    ),
    returns="bigint",
    definer=True,
    body="""
DECLARE
    v_event bigint;
    v_ref text;
    v_firing boolean;
    v_checked boolean := true;
    v_details jsonb;
    v_before text;
BEGIN
    IF coalesce(p_key, '') = '' OR length(p_key) > 300 OR split_part(p_key, ':', 1) <> p_kind
       OR p_kind NOT IN ('drift', 'gate', 'canary', 'proposal', 'rollback') THEN
        RAISE EXCEPTION 'bad event key %', left(p_key, 40) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_ref := substr(p_key, length(p_kind) + 2);
    IF v_ref = '' OR (p_kind IN ('drift', 'canary') AND v_ref !~ '^[0-9]{1,18}$') THEN
        RAISE EXCEPTION 'bad event key %', left(p_key, 40) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_state IS NULL OR p_state NOT IN ('firing', 'resolved') THEN
        RAISE EXCEPTION 'bad state' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(p_labels) IS DISTINCT FROM 'object' OR jsonb_typeof(p_annotations) IS DISTINCT FROM 'object'
       OR NOT p_labels ? 'alertname' OR p_starts_at IS NULL THEN
        RAISE EXCEPTION 'labels and annotations must be objects, with an alertname'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_starts_at > now() + interval '5 minutes' OR p_ends_at > now() + interval '5 minutes'
       OR p_starts_at < '2000-01-01' THEN
        RAISE EXCEPTION 'an event starts or ends in the future (or before 2000)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_channel_keys) IS DISTINCT FROM cardinality(p_channels) OR cardinality(p_channels) > 20
       OR EXISTS (SELECT 1 FROM unnest(p_channels) c WHERE c IS NULL OR length(c) > 500)
       OR EXISTS (SELECT 1 FROM unnest(p_channel_keys) k WHERE k IS NULL OR k !~ '^(webhook|smtp):[0-9a-f]{16}$')
       OR (SELECT count(DISTINCT k) FROM unnest(p_channel_keys) k) <> cardinality(p_channel_keys) THEN
        RAISE EXCEPTION 'bad channels' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The claimed state must be the one the source holds in this transaction.
    IF p_kind = 'drift' THEN
        v_firing := EXISTS (SELECT 1 FROM drift_alerts WHERE id = v_ref::bigint AND state <> 'resolved');
    ELSIF p_kind = 'gate' THEN
        v_firing := EXISTS (
            SELECT 1 FROM audit_gates g
            WHERE g.name = v_ref AND g.hard AND g.enabled
              AND (SELECT r.verdict FROM audit_runs r WHERE r.gate_id = g.id
                   ORDER BY r.at DESC, r.id DESC LIMIT 1) = 'fail');
    ELSIF p_kind = 'canary' THEN
        IF p_state = 'resolved' THEN
            RAISE EXCEPTION 'an aborted canary does not resolve' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_firing := EXISTS (SELECT 1 FROM rollout_canaries WHERE id = v_ref::bigint AND state = 'aborted');
    ELSIF p_kind = 'proposal' THEN
        v_firing := EXISTS (SELECT 1 FROM fsar_proposals WHERE id = v_ref AND block_execution
                            AND block_lifted_at IS NULL AND status IN ('new', 'accepted'));
    ELSE
        IF p_state = 'firing' AND NOT EXISTS (SELECT 1 FROM rollouts WHERE target = v_ref) THEN
            RAISE EXCEPTION 'no rollout target %', left(v_ref, 40) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT r.details INTO v_details
        FROM audit_gates g JOIN audit_runs r ON r.gate_id = g.id
        WHERE g.name = 'builtin:rollback-artifacts' AND g.enabled AND r.verdict IN ('pass', 'fail')
          AND r.at > now() - interval '1 hour'
        ORDER BY r.at DESC, r.id DESC LIMIT 1;
        IF FOUND THEN
            v_firing := coalesce(jsonb_typeof(v_details -> 'broken') = 'object' AND (v_details -> 'broken') ? v_ref,
                                 false);
        ELSE
            v_checked := false;
        END IF;
    END IF;
    IF v_checked AND v_firing IS DISTINCT FROM (p_state = 'firing') THEN
        RAISE EXCEPTION '% is % in the database, not %', left(p_key, 60),
            CASE WHEN v_firing THEN 'firing' ELSE 'not firing' END, p_state
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT state INTO v_before FROM notify_states WHERE event_key = p_key;
    -- The claim: the row's lock orders racing passes; the second sees the first's state.
    INSERT INTO notify_states AS s (event_key, state, labels, annotations, starts_at, changed_at)
    VALUES (p_key, p_state, p_labels, p_annotations, p_starts_at, now())
    ON CONFLICT (event_key) DO UPDATE
        SET state = EXCLUDED.state, labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
            starts_at = EXCLUDED.starts_at, changed_at = EXCLUDED.changed_at
        WHERE s.state IS DISTINCT FROM EXCLUDED.state;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO notify_events (event_key, kind, state, labels, annotations, starts_at, ends_at, created_at)
    VALUES (p_key, p_kind, p_state, p_labels, p_annotations, p_starts_at, p_ends_at, now())
    RETURNING id INTO v_event;
    UPDATE notify_states SET event_id = v_event WHERE event_key = p_key;
    INSERT INTO notify_deliveries (event_id, channel_key, channel, next_attempt_at)
    SELECT v_event, k, c, now() FROM unnest(p_channel_keys, p_channels) AS x(k, c);
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (NULL, 'notify.' || p_state, 'notify:' || left(p_key, 290), left(p_annotations ->> 'summary', 500),
            jsonb_build_object('state', v_before),
            jsonb_build_object('state', p_state, 'event', v_event, 'channels', to_jsonb(coalesce(p_channels, '{}')),
                               'channel_count', coalesce(cardinality(p_channels), 0)));
    RETURN v_event;
END
""",
)

TAKE_0038 = Fn(
    name="fsar_notify_take",
    params="p_lease_s integer, p_limit integer",
    signature="fsar_notify_take(integer, integer)",
    returns=(
        "TABLE (delivery_id bigint, lease uuid, channel_key text, channel text, attempts integer, event_key text, "
        "kind text, state text, labels jsonb, annotations jsonb, starts_at timestamptz, ends_at timestamptz)"
    ),
    definer=True,
    body="""
BEGIN
    IF p_lease_s IS NULL OR p_limit IS NULL OR p_lease_s NOT BETWEEN 1 AND 3600 OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'bad lease or limit' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Leased, not held: the sending happens after this transaction, and a pass that dies
    -- mid-send leaves the delivery due again when the lease ends.
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM notify_deliveries d
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at, d.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE notify_deliveries d
        SET next_attempt_at = now() + make_interval(secs => p_lease_s), lease = gen_random_uuid()
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.lease, d.event_id, d.channel_key, d.channel, d.attempts
    )
    SELECT l.id, l.lease, l.channel_key, l.channel, l.attempts, e.event_key, e.kind, e.state, e.labels,
           e.annotations, e.starts_at, e.ends_at
    FROM leased l JOIN notify_events e ON e.id = l.event_id
    ORDER BY e.id, l.id;
END
""",
)

RECORD_0038 = Fn(
    name="fsar_notify_record",
    params="p_delivery bigint, p_lease uuid, p_ok boolean, p_http_status integer, p_error text",
    signature="fsar_notify_record(bigint, uuid, boolean, integer, text)",
    returns="integer",
    definer=True,
    body=f"""
DECLARE
    v_attempt integer;
    v_next timestamptz;
BEGIN
    IF p_ok IS NULL OR p_lease IS NULL OR p_http_status NOT BETWEEN 100 AND 599 OR length(p_error) > 2000 THEN
        RAISE EXCEPTION 'bad attempt' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT attempts + 1 INTO v_attempt FROM notify_deliveries
    WHERE id = p_delivery AND status = 'pending' AND lease = p_lease AND next_attempt_at > now()
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery % is not leased to this caller (take it first; a lease ends)', p_delivery
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT p_ok AND v_attempt < {MAX_ATTEMPTS} THEN
        v_next := now() + make_interval(secs => least({RETRY_CAP_S}, {RETRY_BASE_S} * 2 ^ (v_attempt - 1)));
    END IF;
    UPDATE notify_deliveries
    SET attempts = v_attempt,
        status = CASE WHEN p_ok THEN 'ok' WHEN v_next IS NULL THEN 'failed' ELSE 'pending' END,
        next_attempt_at = v_next, lease = NULL,
        last_at = now(), last_http_status = p_http_status, last_error = CASE WHEN p_ok THEN NULL ELSE p_error END
    WHERE id = p_delivery;
    INSERT INTO notify_attempts (delivery_id, attempt, at, outcome, http_status, error, next_retry_at)
    VALUES (p_delivery, v_attempt, now(), CASE WHEN p_ok THEN 'ok' ELSE 'failed' END, p_http_status,
            CASE WHEN p_ok THEN NULL ELSE p_error END, v_next);
    RETURN v_attempt;
END
""",
)

FUNCTIONS_0038 = (CLAIM_0038, TAKE_0038, RECORD_0038)


CLAIM_0037 = Fn(
    name="fsar_notify_claim",
    params=(
        "p_key text, p_kind text, p_state text, p_labels jsonb, p_annotations jsonb, p_starts_at timestamptz, "
        "p_ends_at timestamptz, p_channel_keys text[], p_channels text[], p_now timestamptz"
    ),
    signature=(
        "fsar_notify_claim(text, text, text, jsonb, jsonb, timestamp with time zone, timestamp with time zone, "
        "text[], text[], timestamp with time zone)"
    ),
    returns="bigint",
    definer=True,
    body="""
DECLARE
    v_event bigint;
BEGIN
    IF coalesce(p_key, '') = '' OR length(p_key) > 300 OR split_part(p_key, ':', 1) <> p_kind
       OR p_kind NOT IN ('drift', 'gate', 'canary', 'proposal', 'rollback') THEN
        RAISE EXCEPTION 'bad event key %', left(p_key, 40) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_state IS NULL OR p_state NOT IN ('firing', 'resolved') THEN
        RAISE EXCEPTION 'bad state' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(p_labels) IS DISTINCT FROM 'object' OR jsonb_typeof(p_annotations) IS DISTINCT FROM 'object'
       OR NOT p_labels ? 'alertname' OR p_starts_at IS NULL OR p_now IS NULL THEN
        RAISE EXCEPTION 'labels and annotations must be objects, with an alertname'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_channel_keys) IS DISTINCT FROM cardinality(p_channels) OR cardinality(p_channels) > 20
       OR EXISTS (SELECT 1 FROM unnest(p_channels) c WHERE c IS NULL OR length(c) > 500) THEN
        RAISE EXCEPTION 'bad channels' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The claim: the row's lock orders racing passes; the second sees the first's state.
    INSERT INTO notify_states AS s (event_key, state, labels, annotations, starts_at, changed_at)
    VALUES (p_key, p_state, p_labels, p_annotations, p_starts_at, p_now)
    ON CONFLICT (event_key) DO UPDATE
        SET state = EXCLUDED.state, labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
            starts_at = EXCLUDED.starts_at, changed_at = EXCLUDED.changed_at
        WHERE s.state IS DISTINCT FROM EXCLUDED.state;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO notify_events (event_key, kind, state, labels, annotations, starts_at, ends_at, created_at)
    VALUES (p_key, p_kind, p_state, p_labels, p_annotations, p_starts_at, p_ends_at, p_now)
    RETURNING id INTO v_event;
    UPDATE notify_states SET event_id = v_event WHERE event_key = p_key;
    INSERT INTO notify_deliveries (event_id, channel_key, channel, next_attempt_at)
    SELECT v_event, k, c, p_now FROM unnest(p_channel_keys, p_channels) AS x(k, c);
    RETURN v_event;
END
""",
)

TAKE_0037 = Fn(
    name="fsar_notify_take",
    params="p_now timestamptz, p_lease_s integer, p_limit integer",
    signature="fsar_notify_take(timestamp with time zone, integer, integer)",
    returns=(
        "TABLE (delivery_id bigint, channel_key text, channel text, attempts integer, event_key text, kind text, "
        "state text, labels jsonb, annotations jsonb, starts_at timestamptz, ends_at timestamptz)"
    ),
    definer=True,
    body="""
BEGIN
    IF p_now IS NULL OR p_lease_s IS NULL OR p_limit IS NULL OR p_lease_s NOT BETWEEN 1 AND 3600
       OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'bad lease or limit' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Leased, not held: the sending happens after this transaction, and a pass that dies
    -- mid-send leaves the delivery due again when the lease ends.
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM notify_deliveries d
        WHERE d.status = 'pending' AND d.next_attempt_at <= p_now
        ORDER BY d.next_attempt_at, d.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE notify_deliveries d SET next_attempt_at = p_now + make_interval(secs => p_lease_s)
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.event_id, d.channel_key, d.channel, d.attempts
    )
    SELECT l.id, l.channel_key, l.channel, l.attempts, e.event_key, e.kind, e.state, e.labels, e.annotations,
           e.starts_at, e.ends_at
    FROM leased l JOIN notify_events e ON e.id = l.event_id
    ORDER BY e.id, l.id;
END
""",
)

RECORD_0037 = Fn(
    name="fsar_notify_record",
    params=(
        "p_delivery bigint, p_at timestamptz, p_ok boolean, p_http_status integer, p_error text, p_next_at timestamptz"
    ),
    signature="fsar_notify_record(bigint, timestamp with time zone, boolean, integer, text, timestamp with time zone)",
    returns="integer",
    definer=True,
    body="""
DECLARE
    v_attempt integer;
BEGIN
    IF p_at IS NULL OR p_ok IS NULL OR (p_ok AND p_next_at IS NOT NULL)
       OR p_http_status NOT BETWEEN 100 AND 599 OR length(p_error) > 2000 THEN
        RAISE EXCEPTION 'bad attempt' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE notify_deliveries
    SET attempts = attempts + 1,
        status = CASE WHEN p_ok THEN 'ok' WHEN p_next_at IS NULL THEN 'failed' ELSE 'pending' END,
        next_attempt_at = CASE WHEN p_ok THEN NULL ELSE p_next_at END,
        last_at = p_at, last_http_status = p_http_status, last_error = CASE WHEN p_ok THEN NULL ELSE p_error END
    WHERE id = p_delivery AND status = 'pending'
    RETURNING attempts INTO v_attempt;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery % is not pending', p_delivery USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO notify_attempts (delivery_id, attempt, at, outcome, http_status, error, next_retry_at)
    VALUES (p_delivery, v_attempt, p_at, CASE WHEN p_ok THEN 'ok' ELSE 'failed' END, p_http_status,
            CASE WHEN p_ok THEN NULL ELSE p_error END, CASE WHEN p_ok THEN NULL ELSE p_next_at END);
    RETURN v_attempt;
END
""",
)

FUNCTIONS_0037 = (CLAIM_0037, TAKE_0037, RECORD_0037)
