"""The only ways an operator changes tasks, rollouts, verdicts and drift alerts: SECURITY
DEFINER functions, as revision 0020 creates them (see shipped_sql.py). Each checks the
transition itself and appends to operator_actions in the same transaction, so neither a
client nor a role with psql can change state without its log row; the fsar roles have no
INSERT/UPDATE on these tables. What the client says of its user (the OS user) is passed
as p_claimed and lands in claimed_os_user; the actor is session_user (the chain trigger).

Results are codes rather than errors where the client has something to say about them
("changed:<status>" — someone else got there first), so the message stays in Python.

- fsar_task_action: retry (failed → queued), cancel (queued, running → cancelled),
  requeue (running, cancelled, succeeded → queued), only rows still in the state the
  operator saw (the optimistic check); `fsar.bulk_load` is pinned off, so the task
  triggers (events, counters, rollups) always run. Returns the ids changed.
- fsar_rollout_rollback: a new revision that copies an existing one of the same target
  (jsonb to jsonb, sha256 copied), made active, only if the active revision is still the
  one the operator saw; rollback or roll_forward by the revisions' origins. The artifact's
  hash is checked by the client (domain/rollouts.artifact_sha256) before the call.
- fsar_record_verdict: the audit pass's verdict; a verdict that starts a hard gate's
  block (a fail after anything else) is logged as `gate_blocked`, one that ends it (pass,
  inconclusive or error after a fail) as `gate_unblocked` (revision 0021; 0020 logged the
  end only, so a false 'fail' stopped every claim silently).
- fsar_prune_audit_runs: verdict retention (revision 0018, re-created by 0021): verdicts
  older than `kept`, at most `max_rows`, never a gate's latest verdict nor its latest
  pass; refuses `kept` under 90 days and `max_rows` outside 1..5000 (the pass's policy,
  db/gates.RUNS_KEPT and PRUNE_MAX_ROWS).
- fsar_drift_alert_raise / _resolve / _ack: the known indicators only; a resolve and an
  ack are logged.
"""

from __future__ import annotations

from fsar_tui.db.shipped_sql import Fn

TASK_ACTION = Fn(
    name="fsar_task_action",
    params="p_action text, p_ids bigint[], p_seen text[], p_scope text, p_reason text, p_claimed text",
    signature="fsar_task_action(text, bigint[], text[], text, text, text)",
    returns="SETOF bigint",
    definer=True,
    settings=(("fsar.bulk_load", "off"),),
    body="""
DECLARE
    v_allowed text[];
    v_to text;
    v_done bigint[];
    v_before jsonb;
BEGIN
    CASE p_action
        WHEN 'retry' THEN v_allowed := ARRAY['failed']; v_to := 'queued';
        WHEN 'cancel' THEN v_allowed := ARRAY['queued', 'running']; v_to := 'cancelled';
        WHEN 'requeue' THEN v_allowed := ARRAY['running', 'cancelled', 'succeeded']; v_to := 'queued';
        ELSE RAISE EXCEPTION 'unknown task action %', p_action USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a reason is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_seen) THEN
        RAISE EXCEPTION 'one seen status per task id' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH seen AS (SELECT DISTINCT ON (s.id) s.id, s.status FROM unnest(p_ids, p_seen) AS s(id, status)),
    changed AS (
        UPDATE execution_tasks t
        SET status = v_to,
            finished_at = CASE WHEN v_to = 'cancelled' THEN now() END,
            lease_expires_at = NULL,
            queued_at = CASE WHEN v_to = 'queued' THEN now() ELSE t.queued_at END,
            max_attempts = CASE WHEN v_to = 'queued' THEN greatest(t.max_attempts, t.attempt + 1)
                                ELSE t.max_attempts END
        FROM seen
        WHERE t.id = seen.id AND t.status = seen.status AND t.status = ANY (v_allowed)
        RETURNING t.id, seen.status)
    SELECT array_agg(c.id ORDER BY c.id), jsonb_object_agg(c.id::text, c.status) INTO v_done, v_before
    FROM changed c;
    IF v_done IS NOT NULL THEN
        INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
        VALUES (p_claimed, 'task.' || p_action, p_scope, p_reason, jsonb_build_object('status', v_before),
                jsonb_build_object('status', v_to, 'ids', to_jsonb(v_done)));
    END IF;
    RETURN QUERY SELECT unnest(coalesce(v_done, '{}'));
END
""",
)

ROLLBACK = Fn(
    name="fsar_rollout_rollback",
    params="p_target text, p_to integer, p_expected_active integer, p_reason text, p_claimed text",
    signature="fsar_rollout_rollback(text, integer, integer, text, text)",
    returns="TABLE (outcome text, new_revision integer, move text)",
    definer=True,
    body="""
DECLARE
    v_id bigint;
    v_active integer;
    v_sha text;
    v_to_origin integer;
    v_active_origin integer;
    v_move text;
    v_new integer;
BEGIN
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a reason is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT r.id, r.active_revision INTO v_id, v_active FROM rollouts r WHERE r.target = p_target FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no-target'::text, NULL::integer, NULL::text;
        RETURN;
    END IF;
    IF v_active IS DISTINCT FROM p_expected_active THEN
        RETURN QUERY SELECT 'conflict'::text, v_active, NULL::text;
        RETURN;
    END IF;
    SELECT rr.sha256 INTO v_sha FROM rollout_revisions rr WHERE rr.rollout_id = v_id AND rr.revision = p_to;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no-revision'::text, v_active, NULL::text;
        RETURN;
    END IF;
    -- Copies of copies: follow rollback_of to the revision first written (db/rollouts.ORIGINS_SQL).
    WITH RECURSIVE chain AS (
        SELECT rr.revision AS start, rr.revision AS rev, rr.rollback_of FROM rollout_revisions rr
        WHERE rr.rollout_id = v_id AND rr.revision IN (p_to, v_active)
        UNION ALL
        SELECT c.start, rr.revision, rr.rollback_of FROM chain c
        JOIN rollout_revisions rr ON rr.rollout_id = v_id AND rr.revision = c.rollback_of)
    SELECT max(c.rev) FILTER (WHERE c.start = p_to), max(c.rev) FILTER (WHERE c.start = v_active)
    INTO v_to_origin, v_active_origin
    FROM chain c WHERE c.rollback_of IS NULL;
    v_move := CASE WHEN v_to_origin > v_active_origin THEN 'roll_forward' ELSE 'rollback' END;
    INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256, created_by, reason, rollback_of)
    SELECT v_id, (SELECT max(x.revision) + 1 FROM rollout_revisions x WHERE x.rollout_id = v_id),
           rr.artifact, rr.sha256, session_user, p_reason, rr.revision
    FROM rollout_revisions rr WHERE rr.rollout_id = v_id AND rr.revision = p_to
    RETURNING rollout_revisions.revision INTO v_new;
    UPDATE rollouts SET active_revision = v_new, updated_at = now() WHERE id = v_id;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (p_claimed, v_move, 'rollout:' || p_target, p_reason, jsonb_build_object('active_revision', v_active),
            jsonb_build_object('active_revision', v_new, 'copy_of', p_to, 'sha256', v_sha));
    RETURN QUERY SELECT 'done'::text, v_new, v_move;
END
""",
)

# As revision 0020 created it (it logged only the END of a block); 0021 replaced it with
# RECORD_VERDICT below.
RECORD_VERDICT_0020 = Fn(
    name="fsar_record_verdict",
    params=(
        "p_gate_id bigint, p_value numeric, p_baseline numeric, p_verdict text, p_sample_size bigint, "
        "p_details jsonb, p_claimed text"
    ),
    signature="fsar_record_verdict(bigint, numeric, numeric, text, bigint, jsonb, text)",
    returns="bigint",
    definer=True,
    body="""
DECLARE
    v_name text;
    v_blocking boolean;
    v_run bigint;
BEGIN
    SELECT g.name INTO v_name FROM audit_gates g WHERE g.id = p_gate_id FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no audit gate with id %', p_gate_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    v_blocking := EXISTS (SELECT 1 FROM execution_blocks b WHERE b.source = 'gate' AND b.ref = v_name);
    INSERT INTO audit_runs (gate_id, value, baseline, verdict, sample_size, details)
    VALUES (p_gate_id, p_value, p_baseline, p_verdict, p_sample_size, coalesce(p_details, '{}'))
    RETURNING id INTO v_run;
    IF v_blocking AND NOT EXISTS (SELECT 1 FROM execution_blocks b WHERE b.source = 'gate' AND b.ref = v_name) THEN
        INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
        VALUES (p_claimed, 'gate_unblocked', 'gate:' || v_name, 'audit pass verdict: ' || p_verdict,
                jsonb_build_object('blocking', true),
                jsonb_build_object('blocking', false, 'verdict', p_verdict, 'value', p_value, 'run', v_run));
    END IF;
    RETURN v_run;
END
""",
)

RECORD_VERDICT = Fn(
    name="fsar_record_verdict",
    params=(
        "p_gate_id bigint, p_value numeric, p_baseline numeric, p_verdict text, p_sample_size bigint, "
        "p_details jsonb, p_claimed text"
    ),
    signature="fsar_record_verdict(bigint, numeric, numeric, text, bigint, jsonb, text)",
    returns="bigint",
    definer=True,
    body="""
DECLARE
    v_name text;
    v_was boolean;
    v_is boolean;
    v_run bigint;
BEGIN
    SELECT g.name INTO v_name FROM audit_gates g WHERE g.id = p_gate_id FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no audit gate with id %', p_gate_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    v_was := EXISTS (SELECT 1 FROM execution_blocks b WHERE b.source = 'gate' AND b.ref = v_name);
    INSERT INTO audit_runs (gate_id, value, baseline, verdict, sample_size, details)
    VALUES (p_gate_id, p_value, p_baseline, p_verdict, p_sample_size, coalesce(p_details, '{}'))
    RETURNING id INTO v_run;
    v_is := EXISTS (SELECT 1 FROM execution_blocks b WHERE b.source = 'gate' AND b.ref = v_name);
    IF v_was <> v_is THEN
        INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
        VALUES (p_claimed, CASE WHEN v_is THEN 'gate_blocked' ELSE 'gate_unblocked' END, 'gate:' || v_name,
                'audit pass verdict: ' || p_verdict, jsonb_build_object('blocking', v_was),
                jsonb_build_object('blocking', v_is, 'verdict', p_verdict, 'value', p_value, 'run', v_run));
    END IF;
    RETURN v_run;
END
""",
)

# Verdict retention as the audit pass applies it (db/gates.prune_runs: RUNS_KEPT, at most
# PRUNE_MAX_ROWS a call). Revision 0018 wrote the function; 0021 re-creates it refusing
# anything else: a younger `kept` (a negative one deleted nearly every verdict), a
# `max_rows` below 1 or above the pass's batch.
PRUNE_AUDIT_RUNS = Fn(
    name="fsar_prune_audit_runs",
    params="max_rows integer, kept interval",  # the names revision 0018 gave them
    signature="fsar_prune_audit_runs(integer, interval)",
    returns="integer",
    definer=True,
    body="""
DECLARE
    v_cutoff timestamptz;
    n integer;
BEGIN
    IF max_rows IS NULL OR max_rows < 1 OR max_rows > 5000 THEN
        RAISE EXCEPTION 'fsar_prune_audit_runs: max_rows must be between 1 and 5000, not %', max_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_cutoff := now() - kept;
    IF v_cutoff IS NULL OR v_cutoff > now() - interval '90 days' THEN
        RAISE EXCEPTION 'fsar_prune_audit_runs: verdicts are kept at least 90 days, not %', kept
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH keep AS (
        SELECT l.id FROM audit_gates g CROSS JOIN LATERAL (
            SELECT r.id FROM audit_runs r WHERE r.gate_id = g.id ORDER BY r.at DESC, r.id DESC LIMIT 1) l
        UNION
        SELECT p.id FROM audit_gates g CROSS JOIN LATERAL (
            SELECT r.id FROM audit_runs r WHERE r.gate_id = g.id AND r.verdict = 'pass'
            ORDER BY r.at DESC, r.id DESC LIMIT 1) p),
    doomed AS (
        SELECT a.id FROM audit_runs a
        WHERE a.at < v_cutoff AND a.id NOT IN (SELECT id FROM keep)
        ORDER BY a.at LIMIT max_rows)
    DELETE FROM audit_runs WHERE id IN (SELECT id FROM doomed);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
""",
)

INDICATORS = "ARRAY['failure_rate', 'p90_run_time', 'cost_per_task']"
SCOPE_OK = (
    "jsonb_typeof(p_scope) = 'object' AND (p_scope - 'task_type' - 'ai_model') = '{}'::jsonb "
    "AND coalesce(jsonb_typeof(p_scope -> 'task_type'), 'string') = 'string' "
    "AND coalesce(jsonb_typeof(p_scope -> 'ai_model'), 'string') = 'string'"
)

ALERT_RAISE = Fn(
    name="fsar_drift_alert_raise",
    params="p_indicator text, p_scope jsonb, p_baseline numeric, p_current numeric, p_details jsonb",
    signature="fsar_drift_alert_raise(text, jsonb, numeric, numeric, jsonb)",
    returns="void",
    definer=True,
    body=f"""
BEGIN
    IF NOT (p_indicator = ANY ({INDICATORS})) OR NOT ({SCOPE_OK}) THEN
        RAISE EXCEPTION 'not a drift indicator and scope: %, %', p_indicator, p_scope
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO drift_alerts (indicator, scope, baseline, current, details)
    VALUES (p_indicator, p_scope, p_baseline, p_current, coalesce(p_details, '{{}}'))
    ON CONFLICT (indicator, scope) WHERE state <> 'resolved'
    DO UPDATE SET baseline = EXCLUDED.baseline, current = EXCLUDED.current, details = EXCLUDED.details;
END
""",
)

ALERT_RESOLVE = Fn(
    name="fsar_drift_alert_resolve",
    params="p_indicator text, p_scope jsonb, p_current numeric, p_claimed text",
    signature="fsar_drift_alert_resolve(text, jsonb, numeric, text)",
    returns="integer",
    definer=True,
    body="""
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN UPDATE drift_alerts a SET state = 'resolved', resolved_at = now(), current = p_current
             FROM (SELECT d.id, d.state FROM drift_alerts d
                   WHERE d.indicator = p_indicator AND d.scope = p_scope AND d.state <> 'resolved' FOR UPDATE) old
             WHERE a.id = old.id
             RETURNING a.id, old.state AS was LOOP
        INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
        VALUES (p_claimed, 'alert_resolve', 'alert:' || r.id, 'the drift detector no longer fires',
                jsonb_build_object('state', r.was),
                jsonb_build_object('state', 'resolved', 'indicator', p_indicator, 'scope', p_scope));
        n := n + 1;
    END LOOP;
    RETURN n;
END
""",
)

ALERT_ACK = Fn(
    name="fsar_drift_alert_ack",
    params="p_id bigint, p_reason text, p_claimed text",
    signature="fsar_drift_alert_ack(bigint, text, text)",
    returns="text",
    definer=True,
    body="""
DECLARE
    a record;
BEGIN
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a reason is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT d.state, d.indicator, d.scope INTO a FROM drift_alerts d WHERE d.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    IF a.state <> 'firing' THEN
        RETURN 'not-firing:' || a.state;
    END IF;
    UPDATE drift_alerts SET state = 'acked', acked_at = now(), acked_by = session_user, ack_reason = p_reason
    WHERE id = p_id;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (p_claimed, 'alert_ack', 'alert:' || p_id, p_reason, jsonb_build_object('state', 'firing'),
            jsonb_build_object('state', 'acked', 'indicator', a.indicator, 'scope', a.scope));
    RETURN 'done';
END
""",
)

# What revision 0020 created, granted and (downgrading) drops: that revision reads this
# name, so it stays the set and the bodies 0020 shipped — never change it. Later revisions
# list what they replace; HEAD is what the database holds at head.
FUNCTIONS: tuple[Fn, ...] = (TASK_ACTION, ROLLBACK, RECORD_VERDICT_0020, ALERT_RAISE, ALERT_RESOLVE, ALERT_ACK)
# Revision 0021 re-creates these (it reads this name: never change it): fsar_record_verdict
# logs a block's start too; fsar_prune_audit_runs (revision 0018's) refuses arguments
# outside the retention policy.
REPLACED_IN_0021: tuple[Fn, ...] = (RECORD_VERDICT, PRUNE_AUDIT_RUNS)
# The state-changing functions at head (what `security-audit` compares with the database).
HEAD: tuple[Fn, ...] = (TASK_ACTION, ROLLBACK, RECORD_VERDICT, PRUNE_AUDIT_RUNS, ALERT_RAISE, ALERT_RESOLVE, ALERT_ACK)
