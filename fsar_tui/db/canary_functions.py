"""The only ways a revision is deployed and a canary moves: SECURITY DEFINER functions, as
revision 0035 creates them (see shipped_sql.py; `security-audit` compares their source).

- fsar_rollout_deploy: appends a revision (the artifact and its sha256, checked by the
  client as for a rollback: domain/rollouts.artifact_sha256) to a target, only if the
  active revision is still the one the operator saw and no canary runs on it, refusing an
  artifact equal to the active one. Without steps it becomes active at once (`rollout.
  deploy`); with steps a canary starts at the first step's weight (`canary.start`), the
  active (stable) revision staying active. Steps: 1–20 weights in 1..100, strictly
  increasing, ending at 100.
- fsar_canary_decide: promote (to the next step; at the last, 100 %, the canary revision
  becomes the active one and the canary ends `promoted`) or abort (weight 0, `aborted`:
  every claim after the commit runs on stable). Only if the canary and its step are still
  the ones the caller saw — two operators (or the judge and an operator) racing: the
  second gets 'conflict' and the client names who moved it (operator_actions). Logged as
  `canary.promote` / `canary.abort` under the role; the judge passes `fsar-tui (canary
  judge)` as the claimed actor.
- fsar_canary_record: the judge's analysis of a running canary (append-only
  canary_analyses) and its latest state on the canary row, including why its weight
  holds (inconclusive, awaiting a manual promote, the judge failing).
- fsar_rollout_rollback (replaced): as revision 0021 left it, and a running canary on
  the target is aborted in the same transaction (logged `canary.abort`): a rollback moves
  the stable revision, so a canary judged against the old one has no baseline left.

Every function locks the target's rollouts row first, so deploys, promotions, aborts and
rollbacks of one target are serialised.
"""

from __future__ import annotations

from fsar_tui.db import action_functions
from fsar_tui.db.shipped_sql import Fn

DEPLOY = Fn(
    name="fsar_rollout_deploy",
    params=(
        "p_target text, p_artifact jsonb, p_sha256 text, p_expected_active integer, p_steps integer[], "
        "p_interval_s integer, p_manual boolean, p_reason text, p_claimed text"
    ),
    signature="fsar_rollout_deploy(text, jsonb, text, integer, integer[], integer, boolean, text, text)",
    returns="TABLE (outcome text, new_revision integer, canary_id bigint)",
    definer=True,
    body="""
DECLARE
    v_id bigint;
    v_active integer;
    v_running bigint;
    v_new integer;
    v_canary bigint;
    i integer;
BEGIN
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a reason is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_sha256 IS NULL OR p_sha256 !~ '^[0-9a-f]{64}$' OR p_artifact IS NULL THEN
        RAISE EXCEPTION 'an artifact and its sha256 are required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_steps IS NOT NULL THEN
        IF cardinality(p_steps) NOT BETWEEN 1 AND 20 OR p_steps[cardinality(p_steps)] <> 100
           OR EXISTS (SELECT 1 FROM unnest(p_steps) s WHERE s IS NULL OR s NOT BETWEEN 1 AND 100) THEN
            RAISE EXCEPTION 'canary steps: 1 to 20 weights in 1..100, the last 100'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR i IN 2 .. cardinality(p_steps) LOOP
            IF p_steps[i] <= p_steps[i - 1] THEN
                RAISE EXCEPTION 'canary steps must increase' USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
        IF p_interval_s IS NULL OR p_interval_s NOT BETWEEN 0 AND 604800 THEN
            RAISE EXCEPTION 'canary interval: 0 to 7 days' USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    SELECT r.id, r.active_revision INTO v_id, v_active FROM rollouts r WHERE r.target = p_target FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no-target'::text, NULL::integer, NULL::bigint;
        RETURN;
    END IF;
    IF v_active IS DISTINCT FROM p_expected_active THEN
        RETURN QUERY SELECT 'conflict'::text, v_active, NULL::bigint;
        RETURN;
    END IF;
    SELECT c.id INTO v_running FROM rollout_canaries c WHERE c.rollout_id = v_id AND c.state = 'running';
    IF FOUND THEN
        RETURN QUERY SELECT 'canary-running'::text, v_active, v_running;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM rollout_revisions rr WHERE rr.rollout_id = v_id AND rr.revision = v_active
               AND (rr.sha256 = p_sha256 OR rr.artifact = p_artifact)) THEN
        RETURN QUERY SELECT 'same-as-active'::text, v_active, NULL::bigint;
        RETURN;
    END IF;
    IF p_steps IS NOT NULL AND v_active IS NULL THEN
        RETURN QUERY SELECT 'no-stable'::text, v_active, NULL::bigint;
        RETURN;
    END IF;
    INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256, created_by, reason)
    SELECT v_id, coalesce((SELECT max(x.revision) FROM rollout_revisions x WHERE x.rollout_id = v_id), 0) + 1,
           p_artifact, p_sha256, session_user, p_reason
    RETURNING rollout_revisions.revision INTO v_new;
    IF p_steps IS NULL THEN
        UPDATE rollouts SET active_revision = v_new, updated_at = now() WHERE id = v_id;
        INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
        VALUES (p_claimed, 'rollout.deploy', 'rollout:' || p_target, p_reason,
                jsonb_build_object('active_revision', v_active),
                jsonb_build_object('active_revision', v_new, 'sha256', p_sha256));
    ELSE
        INSERT INTO rollout_canaries (rollout_id, canary_revision, stable_revision, steps, step, weight,
                                      interval_s, manual, started_by, start_reason)
        VALUES (v_id, v_new, v_active, p_steps, 0, p_steps[1], p_interval_s, coalesce(p_manual, false),
                session_user, p_reason)
        RETURNING id INTO v_canary;
        INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
        VALUES (p_claimed, 'canary.start', 'rollout:' || p_target, p_reason,
                jsonb_build_object('active_revision', v_active),
                jsonb_build_object('canary', v_canary, 'canary_revision', v_new, 'stable_revision', v_active,
                                   'steps', to_jsonb(p_steps), 'weight', p_steps[1], 'sha256', p_sha256));
    END IF;
    RETURN QUERY SELECT 'done'::text, v_new, v_canary;
END
""",
)

DECIDE = Fn(
    name="fsar_canary_decide",
    params=(
        "p_target text, p_canary bigint, p_expected_step integer, p_action text, p_reason text, p_claimed text, "
        "p_evidence jsonb"
    ),
    signature="fsar_canary_decide(text, bigint, integer, text, text, text, jsonb)",
    returns="TABLE (outcome text, state text, weight integer, step integer)",
    definer=True,
    body="""
DECLARE
    v_id bigint;
    c rollout_canaries%ROWTYPE;
    v_next integer;
BEGIN
    IF p_action NOT IN ('promote', 'abort') THEN
        RAISE EXCEPTION 'unknown canary action %', p_action USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a reason is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT r.id INTO v_id FROM rollouts r WHERE r.target = p_target FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no-target'::text, NULL::text, NULL::integer, NULL::integer;
        RETURN;
    END IF;
    SELECT * INTO c FROM rollout_canaries x WHERE x.id = p_canary AND x.rollout_id = v_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no-canary'::text, NULL::text, NULL::integer, NULL::integer;
        RETURN;
    END IF;
    IF c.state <> 'running' OR c.step IS DISTINCT FROM p_expected_step THEN
        RETURN QUERY SELECT 'conflict'::text, c.state, c.weight, c.step;
        RETURN;
    END IF;
    IF p_action = 'abort' THEN
        UPDATE rollout_canaries x SET state = 'aborted', weight = 0, ended_at = now(), ended_by = session_user,
               end_reason = p_reason
        WHERE x.id = c.id;
        INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
        VALUES (p_claimed, 'canary.abort', 'rollout:' || p_target, p_reason,
                jsonb_build_object('canary', c.id, 'weight', c.weight, 'step', c.step),
                jsonb_build_object('canary', c.id, 'weight', 0, 'state', 'aborted',
                                   'stable_revision', c.stable_revision, 'evidence', p_evidence));
        RETURN QUERY SELECT 'done'::text, 'aborted'::text, 0, c.step;
        RETURN;
    END IF;
    v_next := c.step + 1;
    IF v_next >= cardinality(c.steps) OR c.steps[v_next + 1] >= 100 THEN
        UPDATE rollout_canaries x SET state = 'promoted', step = v_next, weight = 100, ended_at = now(),
               ended_by = session_user, end_reason = p_reason
        WHERE x.id = c.id;
        UPDATE rollouts SET active_revision = c.canary_revision, updated_at = now() WHERE id = v_id;
        INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
        VALUES (p_claimed, 'canary.promote', 'rollout:' || p_target, p_reason,
                jsonb_build_object('canary', c.id, 'weight', c.weight, 'step', c.step,
                                   'active_revision', c.stable_revision),
                jsonb_build_object('canary', c.id, 'weight', 100, 'state', 'promoted',
                                   'active_revision', c.canary_revision, 'evidence', p_evidence));
        RETURN QUERY SELECT 'done'::text, 'promoted'::text, 100, v_next;
        RETURN;
    END IF;
    UPDATE rollout_canaries x SET step = v_next, weight = c.steps[v_next + 1], step_started_at = now(),
           judgement = NULL, judged_at = NULL, hold_reason = NULL
    WHERE x.id = c.id;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (p_claimed, 'canary.promote', 'rollout:' || p_target, p_reason,
            jsonb_build_object('canary', c.id, 'weight', c.weight, 'step', c.step),
            jsonb_build_object('canary', c.id, 'weight', c.steps[v_next + 1], 'step', v_next,
                               'evidence', p_evidence));
    RETURN QUERY SELECT 'done'::text, 'running'::text, c.steps[v_next + 1], v_next;
END
""",
)

RECORD = Fn(
    name="fsar_canary_record",
    params="p_canary bigint, p_step integer, p_verdict text, p_score numeric, p_judgement jsonb, p_hold text",
    signature="fsar_canary_record(bigint, integer, text, numeric, jsonb, text)",
    returns="bigint",
    definer=True,
    body="""
DECLARE
    v_run bigint;
BEGIN
    IF p_verdict NOT IN ('pass', 'fail', 'inconclusive', 'error') THEN
        RAISE EXCEPTION 'unknown canary verdict %', p_verdict USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM rollout_canaries c WHERE c.id = p_canary AND c.state = 'running' AND c.step = p_step
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;  -- promoted, aborted or moved on meanwhile: the analysis is of the past
    END IF;
    INSERT INTO canary_analyses (canary_id, step, verdict, score, judgement, hold_reason)
    VALUES (p_canary, p_step, p_verdict, p_score, coalesce(p_judgement, '{}'::jsonb), p_hold)
    RETURNING id INTO v_run;
    UPDATE rollout_canaries c SET judgement = p_judgement, judged_at = now(), hold_reason = p_hold
    WHERE c.id = p_canary;
    RETURN v_run;
END
""",
)

# fsar_rollout_rollback as revision 0021 left it, plus: a running canary on the target is
# aborted (and logged) in the rollback's transaction.
_ROLLBACK_ABORT = """    UPDATE rollouts SET active_revision = v_new, updated_at = now() WHERE id = v_id;
    WITH aborted AS (
        UPDATE rollout_canaries x SET state = 'aborted', weight = 0, ended_at = now(), ended_by = session_user,
               end_reason = 'rolled back: ' || p_reason
        WHERE x.rollout_id = v_id AND x.state = 'running'
        RETURNING x.id, x.weight, x.step, x.stable_revision)
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    SELECT p_claimed, 'canary.abort', 'rollout:' || p_target, 'rolled back: ' || p_reason,
           jsonb_build_object('canary', a.id, 'weight', a.weight, 'step', a.step),
           jsonb_build_object('canary', a.id, 'weight', 0, 'state', 'aborted', 'stable_revision', a.stable_revision)
    FROM aborted a;
"""
_ROLLBACK_LINE = "    UPDATE rollouts SET active_revision = v_new, updated_at = now() WHERE id = v_id;\n"
assert action_functions.ROLLBACK.body.count(_ROLLBACK_LINE) == 1
ROLLBACK = Fn(
    name=action_functions.ROLLBACK.name,
    params=action_functions.ROLLBACK.params,
    signature=action_functions.ROLLBACK.signature,
    returns=action_functions.ROLLBACK.returns,
    definer=True,
    body=action_functions.ROLLBACK.body.replace(_ROLLBACK_LINE, _ROLLBACK_ABORT),
)

OPERATOR_FUNCTIONS: tuple[Fn, ...] = (DEPLOY, DECIDE, RECORD)
REPLACED_IN_0035: tuple[Fn, ...] = (ROLLBACK,)
FUNCTIONS_0035: tuple[Fn, ...] = OPERATOR_FUNCTIONS + REPLACED_IN_0035

# -- revision 0036: what an attacker with the operator role did in plain SQL ------------------
# - deploy: a canary whose first step is 100 % (no stable arm left to judge it against);
# - record: a forged judgement shown as the judge's, a NaN score, and a look cadence taken
#   from the caller (a forged `canary_attempts` silenced the judge's later looks);
# - decide: an operator's promote over a failing judgement left no trace of the evidence.


def _replaced(fn: Fn, pairs: list[tuple[str, str, int]]) -> Fn:
    body = fn.body
    for old, new, times in pairs:
        assert body.count(old) == times, (fn.name, old)
        body = body.replace(old, new)
    return Fn(fn.name, fn.params, fn.signature, fn.returns, body, definer=True)


_NO_WAY_BACK = """    IF p_steps IS NOT NULL AND EXISTS (SELECT 1 FROM execution_blocks b
                                      WHERE b.source = 'gate' AND b.ref = 'builtin:rollback-artifacts') THEN
        RETURN QUERY SELECT 'no-way-back'::text, v_active, NULL::bigint;
        RETURN;
    END IF;
"""
DEPLOY_0036 = _replaced(
    DEPLOY,
    [
        (
            "IF cardinality(p_steps) NOT BETWEEN 1 AND 20 OR",
            "IF cardinality(p_steps) NOT BETWEEN 2 AND 20 OR",
            1,
        ),
        (
            "'canary steps: 1 to 20 weights in 1..100, the last 100'",
            "'canary steps: 2 to 20 weights in 1..100, the first below 100 (a canary), the last 100'",
            1,
        ),
        # The rollback rehearsal re-hashes artifacts in the client, so the database cannot
        # run it; it can refuse while the pass's record of it — the hard built-in gate
        # builtin:rollback-artifacts — is failing (the client also rehearses first).
        (
            "    IF p_steps IS NOT NULL AND v_active IS NULL THEN",
            _NO_WAY_BACK + "    IF p_steps IS NOT NULL AND v_active IS NULL THEN",
            1,
        ),
    ],
)
# Every log row of a move carries the judgement the mover saw: an operator's promote over
# a 'fail' is then on the record as such.
DECIDE_0036 = _replaced(
    DECIDE,
    [
        (
            "jsonb_build_object('canary', c.id, 'weight', c.weight, 'step', c.step",
            (
                "jsonb_build_object('canary', c.id, 'weight', c.weight, 'step', c.step, "
                "'judge_verdict', c.judgement ->> 'verdict', 'judged_at', c.judged_at, 'judged_by', c.judged_by"
            ),
            3,
        ),
    ],
)
RECORD_0036 = Fn(
    name=RECORD.name,
    params=RECORD.params,
    signature=RECORD.signature,
    returns=RECORD.returns,
    definer=True,
    body="""
DECLARE
    v_run bigint;
    c rollout_canaries%ROWTYPE;
    v_target text;
    v_revision bigint;
    v_attempts bigint;
    v_previous text;
BEGIN
    IF p_verdict IS NULL OR p_verdict NOT IN ('pass', 'fail', 'inconclusive', 'error') THEN
        RAISE EXCEPTION 'unknown canary verdict %', p_verdict USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_score IS NOT NULL AND p_score NOT BETWEEN 0 AND 100 THEN  -- NaN and infinities too
        RAISE EXCEPTION 'a canary score is 0..100' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_judgement IS NOT NULL AND jsonb_typeof(p_judgement) <> 'object' THEN
        RAISE EXCEPTION 'a canary judgement is a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO c FROM rollout_canaries x WHERE x.id = p_canary AND x.state = 'running' AND x.step = p_step
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;  -- promoted, aborted or moved on meanwhile: the analysis is of the past
    END IF;
    SELECT r.target INTO v_target FROM rollouts r WHERE r.id = c.rollout_id;
    SELECT rr.id INTO v_revision FROM rollout_revisions rr
    WHERE rr.rollout_id = c.rollout_id AND rr.revision = c.canary_revision;
    -- The look's cadence is counted here (the canary's attempts that ended this step), not
    -- taken from the caller: the judge's next look waits for look_every more of these.
    SELECT coalesce(sum(t.attempt), 0) INTO v_attempts FROM execution_tasks t
    WHERE t.rollout_revision_id = v_revision AND t.finished_at >= c.step_started_at
      AND t.status IN ('succeeded', 'failed');
    SELECT a.verdict INTO v_previous FROM canary_analyses a
    WHERE a.canary_id = p_canary AND a.step = p_step ORDER BY a.id DESC LIMIT 1;
    INSERT INTO canary_analyses (canary_id, step, verdict, score, judgement, hold_reason, canary_attempts)
    VALUES (p_canary, p_step, p_verdict, p_score, coalesce(p_judgement, '{}'::jsonb), p_hold, v_attempts)
    RETURNING id INTO v_run;
    UPDATE rollout_canaries x SET judgement = p_judgement, judged_at = now(), hold_reason = p_hold,
           judged_by = session_user
    WHERE x.id = p_canary;
    -- A judgement that differs from the step's previous one is logged, under the role that
    -- recorded it: who said "pass" is on the hash-chained record, not only in this table.
    IF v_previous IS DISTINCT FROM p_verdict THEN
        INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
        VALUES (NULL, 'canary.judgement', 'rollout:' || v_target,
                left(coalesce(p_judgement ->> 'summary', p_verdict), 500),
                jsonb_build_object('canary', p_canary, 'step', p_step, 'verdict', v_previous),
                jsonb_build_object('canary', p_canary, 'step', p_step, 'verdict', p_verdict, 'score', p_score,
                                   'canary_attempts', v_attempts, 'analysis', v_run));
    END IF;
    RETURN v_run;
END
""",
)
REPLACED_IN_0036: tuple[Fn, ...] = (DEPLOY_0036, DECIDE_0036, RECORD_0036)
# What the database holds at head (security-audit compares these).
HEAD: tuple[Fn, ...] = REPLACED_IN_0036 + REPLACED_IN_0035
