"""The only writes to the notification tables: SECURITY DEFINER functions granted to
fsar_operator (the role the audit pass runs as), as the migrations create them
(db/shipped_sql.py: `security-audit` compares their source with this text). Earlier
texts, verbatim: notify_functions_history.py (0037, 0038), notify_functions_0039.py.

The audit pass runs as fsar_operator, so an operator in plain SQL can call whatever it
calls: each function checks what it can against the database itself.

- 0037 trusted its caller with everything (the state, the clock, the retry, the outcome).
- 0038 checked the claimed state against its source (in the caller's transaction) —
  drift:<id> firing ⇔ the alert is open; gate:<name> firing ⇔ an enabled hard gate
  whose latest verdict is fail; canary:<id> firing only for an aborted canary, never
  resolved; proposal:<id> firing ⇔ its block is in force; rollback:<target> firing ⇔
  the latest pass/fail verdict of builtin:rollback-artifacts in the last hour names it
  broken (without one, only that the target exists) — took the clock and the retry plan
  from the server, required the lease of a take to record an attempt, and logged every
  claim (`notify.firing` / `notify.resolved`) under the role.
- 0039 (an attack on 0038): an operator could still word the page (any alertname,
  severity, labels such as a runbook URL, annotations), date it (starts 2001), claim it
  for no channel (nobody paged, and `log list` did not say so), resolve keys that never
  fired, hoard pending deliveries with hour-long leases, take other configurations'
  deliveries and burn their attempts, and record fake failures (any status on a mail,
  control characters). Now:
  * claim: alertname and severity are the kind's (domain/notify.ALERTNAMES, SEVERITY),
    label names the kind's (LABEL_KEYS), every label and annotation a string without
    control characters within the domain's bounds, annotations only summary and
    description; the times are the database's — a firing event starts when its source
    did (the alert opened, the gate's latest verdict, the canary ended, the proposal was
    ingested, now for a rollback), a resolution keeps the firing's start and ends now;
    at least one channel; "resolved" only for a key whose last notified state is firing.
    The log row's reason says how many channels it went to.
  * take: only deliveries of the channels the caller names (its [notify]): a pass
    never spends an attempt on a channel it cannot send to; a lease of at most
    MAX_LEASE_S; who took it last is kept (notify_deliveries.taken_by).
  * record: an HTTP status only for a webhook, an error line without control characters.

- 0040 (an attack on 0039): the label values were still the caller's (a page for one
  proposal labelled as another, its severity changed, a URL in task_type: receivers pair
  and route by labels); a claim without a summary left its log row without a reason; the
  times were the caller's transaction start (a transaction held open dated events
  before their source); a take moved a never-tried delivery's due time, so re-taking it
  every lease hid it from `alerts list` for good. Now:
  * claim: the labels stored are the database's — the kind's alertname and severity and
    what the source row says (the alert's indicator, id and scope; the gate's name and
    scope; the canary's target, id and revision; the proposal's id, task type and
    severity; the rollback's target); for a source gone, the labels last notified. The
    caller's labels are still checked (names, strings, bounds) but not kept. A summary
    is required. Times are statement_timestamp(), not the transaction's start.
  * deliveries keep `due_since` (when first due, or when the failed attempt's retry is
    due), which a take does not move: a delivery never tried for 15 minutes after it was
    due is listed as not sent, with the role that took it last.

What no database can check: that a receiver was really called, or that a summary's words
are true. A role that takes a delivery can record it ok without sending it, and a role
that claims a real change words its summary — both under its own name (the attempt's
recorded_by, the claim's operator-log row).
"""

from __future__ import annotations

from fsar_tui.db.notify_functions_0039 import FUNCTIONS_0039
from fsar_tui.db.notify_functions_history import FUNCTIONS_0037, FUNCTIONS_0038
from fsar_tui.db.shipped_sql import Fn
from fsar_tui.domain.notify import ALERTNAMES, KINDS, LABEL_KEYS, LABEL_MAX, MAX_ATTEMPTS, SEVERITY, TEXT_MAX
from fsar_tui.domain.notify import RETRY_BASE_S as _BASE
from fsar_tui.domain.notify import RETRY_CAP_S as _CAP

__all__ = ["CLAIM", "FUNCTIONS", "FUNCTIONS_0037", "FUNCTIONS_0038", "FUNCTIONS_0039", "MAX_LEASE_S", "RECORD", "TAKE"]

# domain/notify's retry rule in SQL: after failed attempt n (1, 2, …), least(cap, base·2^(n−1))
# seconds; none after MAX_ATTEMPTS. tests/test_notify_guards.py checks the waits.
RETRY_BASE_S, RETRY_CAP_S = int(_BASE), int(_CAP)
MAX_LEASE_S = 600  # services/notify.LEASE_S is 300


def _case(values: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{kind}' THEN '{values[kind]}'" for kind in KINDS)
    return f"(CASE p_kind {whens} END)"


def _keys() -> str:
    whens = " ".join(f"WHEN '{kind}' THEN ARRAY[{', '.join(repr(k) for k in LABEL_KEYS[kind])}]" for kind in KINDS)
    return f"(CASE p_kind {whens} END)"


CLAIM = Fn(
    name="fsar_notify_claim",
    params=(
        "p_key text, p_kind text, p_state text, p_labels jsonb, p_annotations jsonb, p_channel_keys text[], "
        "p_channels text[]"
    ),
    signature="fsar_notify_claim(text, text, text, jsonb, jsonb, text[], text[])",
    returns="bigint",
    definer=True,
    body=f"""
DECLARE
    v_event bigint;
    v_ref text;
    v_firing boolean;
    v_checked boolean := true;
    v_details jsonb;
    v_before text;
    v_before_starts timestamptz;
    v_starts timestamptz;
    v_ends timestamptz;
    v_source jsonb;  -- the labels the source row gives
    v_labels jsonb;
    v_now timestamptz := statement_timestamp();
BEGIN
    IF coalesce(p_key, '') = '' OR length(p_key) > 300 OR split_part(p_key, ':', 1) <> p_kind
       OR p_kind NOT IN ('drift', 'gate', 'canary', 'proposal', 'rollback') THEN
        RAISE EXCEPTION 'bad event key %', left(p_key, 40) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_ref := substr(p_key, length(p_kind) + 2);
    IF v_ref = '' OR (p_kind IN ('drift', 'canary') AND v_ref !~ '^[0-9]{{1,18}}$') THEN
        RAISE EXCEPTION 'bad event key %', left(p_key, 40) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_state IS NULL OR p_state NOT IN ('firing', 'resolved') THEN
        RAISE EXCEPTION 'bad state' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- What is said: the kind's alertname and severity, the kind's label names, strings
    -- without control characters within the domain's bounds.
    IF jsonb_typeof(p_labels) IS DISTINCT FROM 'object' OR jsonb_typeof(p_annotations) IS DISTINCT FROM 'object'
       OR p_labels ->> 'alertname' IS DISTINCT FROM {_case(ALERTNAMES)}
       OR p_labels ->> 'severity' IS DISTINCT FROM {_case(SEVERITY)}
       OR EXISTS (SELECT 1 FROM jsonb_each(p_labels) l(k, v)
                  WHERE k <> ALL ({_keys()}) OR jsonb_typeof(v) <> 'string'
                     OR length(v #>> '{{}}') > {LABEL_MAX} OR (v #>> '{{}}') ~ '[[:cntrl:]]')
       OR EXISTS (SELECT 1 FROM jsonb_each(p_annotations) a(k, v)
                  WHERE k NOT IN ('summary', 'description') OR jsonb_typeof(v) <> 'string'
                     OR length(v #>> '{{}}') > {TEXT_MAX} OR (v #>> '{{}}') ~ '[[:cntrl:]]')
       OR coalesce(p_annotations ->> 'summary', '') = '' THEN
        RAISE EXCEPTION 'labels or annotations are not what a % event carries', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(p_channels), 0) = 0 OR cardinality(p_channel_keys) IS DISTINCT FROM cardinality(p_channels)
       OR cardinality(p_channels) > 20
       OR EXISTS (SELECT 1 FROM unnest(p_channels) c WHERE c IS NULL OR length(c) > 500 OR c ~ '[[:cntrl:]]')
       OR EXISTS (SELECT 1 FROM unnest(p_channel_keys) k WHERE k IS NULL OR k !~ '^(webhook|smtp):[0-9a-f]{{16}}$')
       OR (SELECT count(DISTINCT k) FROM unnest(p_channel_keys) k) <> cardinality(p_channel_keys) THEN
        RAISE EXCEPTION 'bad channels (one to twenty, as the client names them)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The claimed state must be the one the source holds in this transaction, and the
    -- event starts when the source's state began.
    IF p_kind = 'drift' THEN
        SELECT state <> 'resolved', opened_at, resolved_at,
               jsonb_build_object('indicator', indicator, 'alert_id', id::text, 'task_type', scope ->> 'task_type',
                                  'ai_model', scope ->> 'ai_model', 'target', scope ->> 'rollout')
        INTO v_firing, v_starts, v_ends, v_source
        FROM drift_alerts WHERE id = v_ref::bigint;
        v_firing := coalesce(v_firing, false);
    ELSIF p_kind = 'gate' THEN
        SELECT g.hard AND g.enabled AND r.verdict IS NOT DISTINCT FROM 'fail', r.at,
               jsonb_build_object('gate', g.name, 'task_type', g.scope ->> 'task_type',
                                  'ai_model', g.scope ->> 'ai_model', 'target', g.scope ->> 'rollout')
        INTO v_firing, v_starts, v_source
        FROM audit_gates g
        LEFT JOIN LATERAL (SELECT verdict, at FROM audit_runs WHERE gate_id = g.id ORDER BY at DESC, id DESC LIMIT 1) r
            ON true
        WHERE g.name = v_ref;
        v_firing := coalesce(v_firing, false);
    ELSIF p_kind = 'canary' THEN
        IF p_state = 'resolved' THEN
            RAISE EXCEPTION 'an aborted canary does not resolve' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT c.state = 'aborted', c.ended_at,
               jsonb_build_object('target', r.target, 'canary_id', c.id::text, 'revision', c.canary_revision::text)
        INTO v_firing, v_starts, v_source
        FROM rollout_canaries c JOIN rollouts r ON r.id = c.rollout_id WHERE c.id = v_ref::bigint;
        v_firing := coalesce(v_firing, false);
    ELSIF p_kind = 'proposal' THEN
        SELECT block_execution AND block_lifted_at IS NULL AND status IN ('new', 'accepted'), ingested_at,
               jsonb_build_object('proposal', id, 'task_type', task_type, 'proposal_severity', severity::text)
        INTO v_firing, v_starts, v_source
        FROM fsar_proposals WHERE id = v_ref;
        v_firing := coalesce(v_firing, false);
    ELSE
        IF p_state = 'firing' AND NOT EXISTS (SELECT 1 FROM rollouts WHERE target = v_ref) THEN
            RAISE EXCEPTION 'no rollout target %', left(v_ref, 40) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT r.details INTO v_details
        FROM audit_gates g JOIN audit_runs r ON r.gate_id = g.id
        WHERE g.name = 'builtin:rollback-artifacts' AND g.enabled AND r.verdict IN ('pass', 'fail')
          AND r.at > v_now - interval '1 hour'
        ORDER BY r.at DESC, r.id DESC LIMIT 1;
        IF FOUND THEN
            v_firing := coalesce(jsonb_typeof(v_details -> 'broken') = 'object' AND (v_details -> 'broken') ? v_ref,
                                 false);
        ELSE
            v_checked := false;
        END IF;
        v_starts := v_now;
        v_source := jsonb_build_object('target', v_ref);
    END IF;
    IF v_checked AND v_firing IS DISTINCT FROM (p_state = 'firing') THEN
        RAISE EXCEPTION '% is % in the database, not %', left(p_key, 60),
            CASE WHEN v_firing THEN 'firing' ELSE 'not firing' END, p_state
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The row's lock orders racing passes: the second sees the first's state.
    SELECT state, starts_at, labels INTO v_before, v_before_starts, v_labels
    FROM notify_states WHERE event_key = p_key FOR UPDATE;
    IF v_before IS NOT DISTINCT FROM p_state THEN
        RETURN NULL;
    END IF;
    IF p_state = 'resolved' THEN
        IF v_before IS DISTINCT FROM 'firing' THEN
            RAISE EXCEPTION '% never fired: nothing to resolve', left(p_key, 60)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_starts := v_before_starts;
        v_ends := CASE WHEN p_kind = 'drift' THEN least(coalesce(v_ends, v_now), v_now) ELSE v_now END;
    ELSE
        v_starts := least(coalesce(v_starts, v_now), v_now);
        v_ends := NULL;
    END IF;
    -- The labels are the database's: the kind's names, then the source's values (a source
    -- gone: the labels last notified).
    IF v_source IS NOT NULL THEN
        SELECT coalesce(jsonb_object_agg(k, v), '{{}}') INTO v_source FROM jsonb_each(v_source) x(k, v)
        WHERE jsonb_typeof(v) = 'string' AND v #>> '{{}}' <> '';
        v_labels := v_source;
    END IF;
    v_labels := coalesce(v_labels, '{{}}') || jsonb_build_object('alertname', {_case(ALERTNAMES)},
                                                              'severity', {_case(SEVERITY)});
    INSERT INTO notify_states AS s (event_key, state, labels, annotations, starts_at, changed_at)
    VALUES (p_key, p_state, v_labels, p_annotations, v_starts, v_now)
    ON CONFLICT (event_key) DO UPDATE
        SET state = EXCLUDED.state, labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
            starts_at = EXCLUDED.starts_at, changed_at = EXCLUDED.changed_at
        WHERE s.state IS DISTINCT FROM EXCLUDED.state;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO notify_events (event_key, kind, state, labels, annotations, starts_at, ends_at, created_at)
    VALUES (p_key, p_kind, p_state, v_labels, p_annotations, v_starts, v_ends, v_now)
    RETURNING id INTO v_event;
    UPDATE notify_states SET event_id = v_event WHERE event_key = p_key;
    INSERT INTO notify_deliveries (event_id, channel_key, channel, next_attempt_at, due_since)
    SELECT v_event, k, c, v_now, v_now FROM unnest(p_channel_keys, p_channels) AS x(k, c);
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (NULL, 'notify.' || p_state, 'notify:' || left(p_key, 290),
            left(p_annotations ->> 'summary', 440) || ' (to ' || cardinality(p_channels) || ' channel(s))',
            jsonb_build_object('state', v_before),
            jsonb_build_object('state', p_state, 'event', v_event, 'channels', to_jsonb(p_channels),
                               'channel_count', cardinality(p_channels)));
    RETURN v_event;
END
""",
)

TAKE = Fn(
    name="fsar_notify_take",
    params="p_channel_keys text[], p_lease_s integer, p_limit integer",
    signature="fsar_notify_take(text[], integer, integer)",
    returns=(
        "TABLE (delivery_id bigint, lease uuid, channel_key text, channel text, attempts integer, event_key text, "
        "kind text, state text, labels jsonb, annotations jsonb, starts_at timestamptz, ends_at timestamptz)"
    ),
    definer=True,
    body=f"""
BEGIN
    IF p_lease_s IS NULL OR p_limit IS NULL OR p_lease_s NOT BETWEEN 1 AND {MAX_LEASE_S}
       OR p_limit NOT BETWEEN 1 AND 1000 OR p_channel_keys IS NULL THEN
        RAISE EXCEPTION 'bad lease, limit or channels' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Leased, not held: the sending happens after this transaction, and a pass that dies
    -- mid-send leaves the delivery due again when the lease ends. Only the caller's
    -- channels: a pass never spends another configuration's attempts.
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM notify_deliveries d
        WHERE d.status = 'pending' AND d.next_attempt_at <= statement_timestamp()
          AND d.channel_key = ANY (p_channel_keys)
        ORDER BY d.next_attempt_at, d.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE notify_deliveries d
        SET next_attempt_at = statement_timestamp() + make_interval(secs => p_lease_s), lease = gen_random_uuid(),
            taken_by = session_user
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

RECORD = Fn(
    name="fsar_notify_record",
    params="p_delivery bigint, p_lease uuid, p_ok boolean, p_http_status integer, p_error text",
    signature="fsar_notify_record(bigint, uuid, boolean, integer, text)",
    returns="integer",
    definer=True,
    body=f"""
DECLARE
    v_attempt integer;
    v_channel text;
    v_next timestamptz;
BEGIN
    IF p_ok IS NULL OR p_lease IS NULL OR p_http_status NOT BETWEEN 100 AND 599 OR length(p_error) > 2000
       OR p_error ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'bad attempt' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT attempts + 1, channel_key INTO v_attempt, v_channel FROM notify_deliveries
    WHERE id = p_delivery AND status = 'pending' AND lease = p_lease AND next_attempt_at > statement_timestamp()
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery % is not leased to this caller (take it first; a lease ends)', p_delivery
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_http_status IS NOT NULL AND v_channel NOT LIKE 'webhook:%' THEN
        RAISE EXCEPTION 'an HTTP status for a mail' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT p_ok AND v_attempt < {MAX_ATTEMPTS} THEN
        v_next := statement_timestamp()
                  + make_interval(secs => least({RETRY_CAP_S}, {RETRY_BASE_S} * 2 ^ (v_attempt - 1)));
    END IF;
    UPDATE notify_deliveries
    SET attempts = v_attempt,
        status = CASE WHEN p_ok THEN 'ok' WHEN v_next IS NULL THEN 'failed' ELSE 'pending' END,
        next_attempt_at = v_next, due_since = coalesce(v_next, due_since), lease = NULL,
        last_at = statement_timestamp(), last_http_status = p_http_status,
        last_error = CASE WHEN p_ok THEN NULL ELSE p_error END
    WHERE id = p_delivery;
    INSERT INTO notify_attempts (delivery_id, attempt, at, outcome, http_status, error, next_retry_at)
    VALUES (p_delivery, v_attempt, statement_timestamp(), CASE WHEN p_ok THEN 'ok' ELSE 'failed' END, p_http_status,
            CASE WHEN p_ok THEN NULL ELSE p_error END, v_next);
    RETURN v_attempt;
END
""",
)

FUNCTIONS = (CLAIM, TAKE, RECORD)  # revision 0040 on: granted to fsar_operator
