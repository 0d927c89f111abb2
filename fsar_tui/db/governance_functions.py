"""The only ways the fsar roles change proposals and audit gates and write the log beside a
reveal or an anonymization: SECURITY DEFINER functions, as revision 0020 creates them
(see shipped_sql.py and action_functions.py for the conventions: the transition checked
here, the log row in the same transaction, p_claimed = the client's OS user, result codes
where the client has something to say).

Operators (fsar_operator):
- fsar_proposal_ingest: a parsed FSAR report (domain/fsar_report.py) stored once by id;
  'inserted' (and logged), or the sha256 already stored under that id.
- fsar_proposal_decide: accept (new → accepted), reject and implemented (new, accepted →
  …), only from the status the operator saw when one is given.
- fsar_proposal_lift_block, fsar_proposal_tick: lift a blocking proposal's block (new or
  accepted, not lifted yet); tick or untick checklist item N (revision 0023: numbered
  from 1 as the screen and `proposals show` number them, risks first, then mitigations;
  the state wanted is explicit, so asking for what already holds changes and logs
  nothing; revision 0020's toggled `risks/0` — PROPOSAL_TICK_0020).
Admins (fsar_admin):
- fsar_gate_override: only a gate that blocks execution now; fsar_gate_add, fsar_gate_set.
- fsar_record_reveal: the reveal's log row (no reveal without it); fsar_log_anonymize:
  the anonymization's start and end rows (its writes are the admin's column grants).
"""

from __future__ import annotations

from fsar_tui.db.shipped_sql import Fn

NEED_REASON = """
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a reason is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;"""

PROPOSAL_INGEST = Fn(
    name="fsar_proposal_ingest",
    params=(
        "p_id text, p_reported_at timestamptz, p_severity integer, p_block boolean, p_task_type text, p_body text, "
        "p_risks jsonb, p_mitigations jsonb, p_extra_headers jsonb, p_sha256 text, p_source text, p_claimed text"
    ),
    signature=(
        "fsar_proposal_ingest(text, timestamp with time zone, integer, boolean, text, text, jsonb, jsonb, jsonb, "
        "text, text, text)"
    ),
    returns="text",
    definer=True,
    body="""
DECLARE
    v_stored text;
BEGIN
    INSERT INTO fsar_proposals (id, reported_at, severity, block_execution, task_type, body, risks, mitigations,
                                extra_headers, source_sha256)
    VALUES (p_id, p_reported_at, p_severity, p_block, p_task_type, p_body, p_risks, p_mitigations,
            coalesce(p_extra_headers, '{}'), p_sha256)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT p.source_sha256 INTO v_stored FROM fsar_proposals p WHERE p.id = p_id;
        RETURN v_stored;
    END IF;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, after)
    VALUES (p_claimed, 'proposal.ingest', 'proposal:' || p_id, 'ingested from ' || p_source,
            jsonb_build_object('severity', p_severity, 'block_execution', p_block, 'task_type', p_task_type,
                               'sha256', p_sha256));
    RETURN 'inserted';
END
""",
)

PROPOSAL_DECIDE = Fn(
    name="fsar_proposal_decide",
    params="p_id text, p_action text, p_expected text, p_reason text, p_claimed text",
    signature="fsar_proposal_decide(text, text, text, text, text)",
    returns="text",
    definer=True,
    body=f"""
DECLARE
    v_allowed text[];
    v_new text;
    v_status text;
BEGIN
    CASE p_action
        WHEN 'accept' THEN v_allowed := ARRAY['new']; v_new := 'accepted';
        WHEN 'reject' THEN v_allowed := ARRAY['new', 'accepted']; v_new := 'rejected';
        WHEN 'implemented' THEN v_allowed := ARRAY['new', 'accepted']; v_new := 'implemented';
        ELSE RAISE EXCEPTION 'unknown decision %', p_action USING ERRCODE = 'invalid_parameter_value';
    END CASE;{NEED_REASON}
    SELECT p.status INTO v_status FROM fsar_proposals p WHERE p.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    IF p_expected IS NOT NULL AND v_status <> p_expected THEN
        RETURN 'changed:' || v_status;
    END IF;
    IF NOT (v_status = ANY (v_allowed)) THEN
        RETURN 'not-applicable:' || v_status;
    END IF;
    UPDATE fsar_proposals SET status = v_new WHERE id = p_id;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (p_claimed, 'proposal.' || p_action, 'proposal:' || p_id, p_reason,
            jsonb_build_object('status', v_status), jsonb_build_object('status', v_new));
    RETURN 'done:' || v_new;
END
""",
)

PROPOSAL_LIFT = Fn(
    name="fsar_proposal_lift_block",
    params="p_id text, p_reason text, p_claimed text",
    signature="fsar_proposal_lift_block(text, text, text)",
    returns="text",
    definer=True,
    body=f"""
DECLARE
    p record;
BEGIN{NEED_REASON}
    SELECT f.status, f.block_execution, f.block_lifted_at INTO p FROM fsar_proposals f WHERE f.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    ELSIF NOT p.block_execution THEN
        RETURN 'no-block';
    ELSIF p.block_lifted_at IS NOT NULL THEN
        RETURN 'lifted-already';
    ELSIF p.status NOT IN ('new', 'accepted') THEN
        RETURN 'ended:' || p.status;
    END IF;
    UPDATE fsar_proposals SET block_lifted_at = now() WHERE id = p_id;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (p_claimed, 'proposal.lift_block', 'proposal:' || p_id, p_reason,
            jsonb_build_object('blocking', true), jsonb_build_object('blocking', false));
    RETURN 'done';
END
""",
)

# Revision 0020's: toggles the item named by its 0-based key (`risks/0`).
PROPOSAL_TICK_0020 = Fn(
    name="fsar_proposal_tick",
    params="p_id text, p_item text, p_reason text, p_claimed text",
    signature="fsar_proposal_tick(text, text, text, text)",
    returns="text",
    definer=True,
    body="""
DECLARE
    p record;
    v_kind text := split_part(p_item, '/', 1);
    v_index text := split_part(p_item, '/', 2);
    v_items jsonb;
    v_ticked boolean;
BEGIN
    SELECT f.risks, f.mitigations, f.checklist INTO p FROM fsar_proposals f WHERE f.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    v_items := CASE v_kind WHEN 'risks' THEN p.risks WHEN 'mitigations' THEN p.mitigations END;
    IF v_items IS NULL OR p_item <> v_kind || '/' || v_index OR v_index !~ '^[0-9]{1,9}$' THEN
        RETURN 'no-item';
    END IF;
    IF v_index::integer >= jsonb_array_length(v_items) THEN  -- (apart: OR does not promise an order)
        RETURN 'no-item';
    END IF;
    v_ticked := NOT p.checklist ? p_item;
    UPDATE fsar_proposals
    SET checklist = CASE WHEN v_ticked
                         THEN checklist || jsonb_build_object(p_item, jsonb_build_object(
                                  'by', session_user, 'os_user', p_claimed, 'at', clock_timestamp()))
                         ELSE checklist - p_item END
    WHERE id = p_id;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (p_claimed, CASE WHEN v_ticked THEN 'proposal.tick' ELSE 'proposal.untick' END, 'proposal:' || p_id,
            coalesce(nullif(btrim(p_reason), ''), v_items ->> v_index::integer),
            jsonb_build_object('item', p_item, 'ticked', NOT v_ticked),
            jsonb_build_object('item', p_item, 'ticked', v_ticked));
    RETURN CASE WHEN v_ticked THEN 'ticked' ELSE 'unticked' END;
END
""",
)

# Revision 0023's: item p_item numbered from 1 over the risks, then the mitigations (the
# checklist's keys stay `risks/0`, `mitigations/1`); p_ticked is the state wanted.
# 'no-item:N' (N: how many items there are), 'already-ticked' / 'already-unticked'
# (nothing written), or 'ticked' / 'unticked' with a log row naming the item's number.
PROPOSAL_TICK = Fn(
    name="fsar_proposal_tick",
    params="p_id text, p_item integer, p_ticked boolean, p_reason text, p_claimed text",
    signature="fsar_proposal_tick(text, integer, boolean, text, text)",
    returns="text",
    definer=True,
    body="""
DECLARE
    p record;
    v_risks integer;
    v_total integer;
    v_key text;
    v_text text;
    v_was boolean;
BEGIN
    IF p_ticked IS NULL THEN
        RAISE EXCEPTION 'say whether to tick or untick' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT f.risks, f.mitigations, f.checklist INTO p FROM fsar_proposals f WHERE f.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    v_risks := CASE WHEN jsonb_typeof(p.risks) = 'array' THEN jsonb_array_length(p.risks) ELSE 0 END;
    v_total := v_risks
               + CASE WHEN jsonb_typeof(p.mitigations) = 'array' THEN jsonb_array_length(p.mitigations) ELSE 0 END;
    IF p_item IS NULL OR p_item < 1 OR p_item > v_total THEN
        RETURN 'no-item:' || v_total;
    END IF;
    IF p_item <= v_risks THEN
        v_key := 'risks/' || (p_item - 1);
        v_text := p.risks ->> (p_item - 1);
    ELSE
        v_key := 'mitigations/' || (p_item - 1 - v_risks);
        v_text := p.mitigations ->> (p_item - 1 - v_risks);
    END IF;
    v_was := p.checklist ? v_key;
    IF v_was = p_ticked THEN
        RETURN CASE WHEN p_ticked THEN 'already-ticked' ELSE 'already-unticked' END;
    END IF;
    UPDATE fsar_proposals
    SET checklist = CASE WHEN p_ticked
                         THEN checklist || jsonb_build_object(v_key, jsonb_build_object(
                                  'by', session_user, 'os_user', p_claimed, 'at', clock_timestamp()))
                         ELSE checklist - v_key END
    WHERE id = p_id;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (p_claimed, CASE WHEN p_ticked THEN 'proposal.tick' ELSE 'proposal.untick' END, 'proposal:' || p_id,
            coalesce(nullif(btrim(p_reason), ''), v_text),
            jsonb_build_object('item', p_item, 'ticked', v_was),
            jsonb_build_object('item', p_item, 'ticked', p_ticked));
    RETURN CASE WHEN p_ticked THEN 'ticked' ELSE 'unticked' END;
END
""",
)

GATE_OVERRIDE = Fn(
    name="fsar_gate_override",
    params="p_name text, p_reason text, p_expires_at timestamptz, p_claimed text",
    signature="fsar_gate_override(text, text, timestamp with time zone, text)",
    returns="text",
    definer=True,
    body=f"""
DECLARE
    v_id bigint;
BEGIN{NEED_REASON}
    SELECT g.id INTO v_id FROM audit_gates g WHERE g.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM execution_blocks b WHERE b.source = 'gate' AND b.ref = p_name) THEN
        RETURN 'not-blocking';
    END IF;
    INSERT INTO audit_gate_overrides (gate_id, actor, reason, expires_at)
    VALUES (v_id, session_user, p_reason, p_expires_at);
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (p_claimed, 'gate_override', 'gate:' || p_name, p_reason, jsonb_build_object('blocking', true),
            jsonb_build_object('blocking', false, 'expires_at', p_expires_at));
    RETURN 'done';
END
""",
)

CONDITION = (
    "g.metric || ' ' || g.comparator || ' ' || trim_scale(g.threshold)::text "
    "|| CASE WHEN g.baseline_window IS NOT NULL THEN ' × baseline' ELSE '' END"
)

GATE_ADD = Fn(
    name="fsar_gate_add",
    params=(
        "p_name text, p_metric text, p_scope jsonb, p_window_s bigint, p_comparator text, p_threshold numeric, "
        "p_hard boolean, p_baseline_window_s bigint, p_description text, p_reason text, p_claimed text"
    ),
    signature="fsar_gate_add(text, text, jsonb, bigint, text, numeric, boolean, bigint, text, text, text)",
    returns="text",
    definer=True,
    body=f"""
DECLARE
    g record;
BEGIN{NEED_REASON}
    INSERT INTO audit_gates (name, metric, scope, time_window, comparator, threshold, hard, baseline_window,
                             description)
    VALUES (p_name, p_metric, coalesce(p_scope, '{{}}'), make_interval(secs => p_window_s), p_comparator, p_threshold,
            p_hard, CASE WHEN p_baseline_window_s IS NOT NULL THEN make_interval(secs => p_baseline_window_s) END,
            coalesce(p_description, ''))
    ON CONFLICT (name) DO NOTHING
    RETURNING * INTO g;
    IF NOT FOUND THEN
        RETURN 'exists';
    END IF;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, after)
    VALUES (p_claimed, 'gate_add', 'gate:' || p_name, p_reason,
            jsonb_build_object('condition', {CONDITION}, 'scope', g.scope, 'hard', g.hard));
    RETURN 'done';
END
""",
)

GATE_SET = Fn(
    name="fsar_gate_set",
    params="p_name text, p_hard boolean, p_enabled boolean, p_comparator text, p_threshold numeric, p_reason text, "
    "p_claimed text",
    signature="fsar_gate_set(text, boolean, boolean, text, numeric, text, text)",
    returns="text",
    definer=True,
    body=f"""
DECLARE
    b record;
    a record;
BEGIN{NEED_REASON}
    SELECT * INTO b FROM audit_gates g WHERE g.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    UPDATE audit_gates g SET hard = coalesce(p_hard, g.hard), enabled = coalesce(p_enabled, g.enabled),
                             comparator = coalesce(p_comparator, g.comparator),
                             threshold = coalesce(p_threshold, g.threshold)
    WHERE g.name = p_name RETURNING * INTO a;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after)
    VALUES (p_claimed, 'gate_change', 'gate:' || p_name, p_reason,
            jsonb_strip_nulls(jsonb_build_object(
                'hard', CASE WHEN p_hard IS NOT NULL THEN b.hard END,
                'enabled', CASE WHEN p_enabled IS NOT NULL THEN b.enabled END,
                'comparator', CASE WHEN p_comparator IS NOT NULL THEN b.comparator END,
                'threshold', CASE WHEN p_threshold IS NOT NULL THEN b.threshold END)),
            jsonb_strip_nulls(jsonb_build_object(
                'hard', CASE WHEN p_hard IS NOT NULL THEN a.hard END,
                'enabled', CASE WHEN p_enabled IS NOT NULL THEN a.enabled END,
                'comparator', CASE WHEN p_comparator IS NOT NULL THEN a.comparator END,
                'threshold', CASE WHEN p_threshold IS NOT NULL THEN a.threshold END)));
    RETURN 'done';
END
""",
)

# Parameter names as revision 0017 declared them (CREATE OR REPLACE cannot rename them).
RECORD_REVEAL = Fn(
    name="fsar_record_reveal",
    params="actor text, target text, reason text",
    signature="fsar_record_reveal(text, text, text)",
    returns="bigint",
    language="sql",
    definer=True,
    body="""
    INSERT INTO operator_actions (claimed_os_user, action, target, reason)
    VALUES ($1, 'reveal', $2, $3) RETURNING seq
""",
)

LOG_ANONYMIZE = Fn(
    name="fsar_log_anonymize",
    params="p_action text, p_target text, p_reason text, p_counts jsonb, p_claimed text",
    signature="fsar_log_anonymize(text, text, text, jsonb, text)",
    returns="void",
    definer=True,
    body="""
BEGIN
    IF p_action NOT IN ('anonymize.start', 'anonymize') THEN
        RAISE EXCEPTION 'not an anonymization step: %', p_action USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO operator_actions (claimed_os_user, action, target, reason, after)
    VALUES (p_claimed, p_action, p_target, p_reason, p_counts);
END
""",
)

# What revision 0020 created, granted and (downgrading) drops: that revision reads these
# names, so they stay the sets and the bodies 0020 shipped — never change them. Later
# revisions list what they replace; FUNCTIONS is what the database holds at head.
OPERATOR_FUNCTIONS: tuple[Fn, ...] = (PROPOSAL_INGEST, PROPOSAL_DECIDE, PROPOSAL_LIFT, PROPOSAL_TICK_0020)
ADMIN_FUNCTIONS: tuple[Fn, ...] = (GATE_OVERRIDE, GATE_ADD, GATE_SET, RECORD_REVEAL, LOG_ANONYMIZE)
# Revision 0023 drops PROPOSAL_TICK_0020 and creates this (it reads this name: never change it).
REPLACED_IN_0023: tuple[Fn, ...] = (PROPOSAL_TICK,)
# At head (what `security-audit` compares with the database).
FUNCTIONS: tuple[Fn, ...] = (PROPOSAL_INGEST, PROPOSAL_DECIDE, PROPOSAL_LIFT, PROPOSAL_TICK) + ADMIN_FUNCTIONS
