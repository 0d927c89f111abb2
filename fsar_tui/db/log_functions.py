"""The operator log's functions in SQL, as revision 0019 creates them (see shipped_sql.py).

- fsar_log_field / fsar_operator_actions_hash: the hash input of domain/action_chain.py
  (length-prefixed fields), computed by the server for new rows and by the verify
  function; the client recomputes the same bytes in Python.
- fsar_operator_actions_chain: the BEFORE INSERT trigger. It locks the head row (which
  serialises appends), gives the row the next seq, the server's clock_timestamp(), the
  authenticated actor — `session_user`, the login that authenticated, unchanged by SET
  ROLE and by SECURITY DEFINER functions (inside one, current_user is the owner) — and
  as db_role the role set with SET ROLE (else the login). What the client says of
  itself (the OS user) goes to claimed_os_user: a client that still fills `actor` has it
  moved there. SECURITY DEFINER: it writes the head, which no fsar role may write.
- fsar_operator_log_head_guard: operator_log_head changes only from inside the chain
  trigger (pg_trigger_depth() > 1); a direct UPDATE or DELETE is refused.
- fsar_operator_actions_verify(): the database's own walk (first broken seq, or NULL),
  the head included; informative only — the client does not trust it.
- fsar_reject_change: the append-only trigger (unchanged since revision 0005; re-created
  here so its source is among the shipped ones the audit compares).
"""

from __future__ import annotations

from fsar_tui.db.shipped_sql import Fn, Trigger

FIELD = Fn(
    name="fsar_log_field",
    params="v text",
    signature="fsar_log_field(text)",
    returns="bytea",
    language="sql",
    volatility="IMMUTABLE",
    body="""
    SELECT CASE WHEN v IS NULL THEN convert_to('-', 'UTF8')
                ELSE convert_to(octet_length(convert_to(v, 'UTF8'))::text || ':', 'UTF8') || convert_to(v, 'UTF8')
           END
""",
)

HASH = Fn(
    name="fsar_operator_actions_hash",
    params=(
        "prev_hash text, seq bigint, at timestamptz, actor text, claimed_os_user text, db_role text, "
        "action text, target text, reason text, before jsonb, after jsonb, legacy_hash text"
    ),
    signature=(
        "fsar_operator_actions_hash(text, bigint, timestamp with time zone, text, text, text, text, text, text, "
        "jsonb, jsonb, text)"
    ),
    returns="text",
    language="sql",
    volatility="STABLE",
    body="""
    SELECT encode(sha256(
        fsar_log_field('fsar-operator-actions/2') || fsar_log_field(prev_hash) || fsar_log_field(seq::text)
        || fsar_log_field(((extract(epoch FROM at) * 1000000)::bigint)::text)
        || fsar_log_field(actor) || fsar_log_field(claimed_os_user) || fsar_log_field(db_role)
        || fsar_log_field(action) || fsar_log_field(target) || fsar_log_field(reason)
        || fsar_log_field(before::text) || fsar_log_field(after::text) || fsar_log_field(legacy_hash)), 'hex')
""",
)

CHAIN = Fn(
    name="fsar_operator_actions_chain",
    params="",
    signature="fsar_operator_actions_chain()",
    returns="trigger",
    definer=True,
    body="""
DECLARE
    head record;
BEGIN
    SELECT seq, hash INTO head FROM operator_log_head FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operator_log_head has no row: the operator log cannot be appended to'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    NEW.seq := head.seq + 1;
    NEW.prev_hash := head.hash;
    NEW.at := clock_timestamp();
    NEW.claimed_os_user := coalesce(NEW.claimed_os_user, NEW.actor);
    NEW.actor := session_user;
    NEW.db_role := coalesce(nullif(current_setting('role'), 'none'), session_user);
    NEW.legacy_hash := NULL;
    NEW.hash := fsar_operator_actions_hash(NEW.prev_hash, NEW.seq, NEW.at, NEW.actor, NEW.claimed_os_user,
                                           NEW.db_role, NEW.action, NEW.target, NEW.reason, NEW.before,
                                           NEW.after, NEW.legacy_hash);
    UPDATE operator_log_head SET seq = NEW.seq, hash = NEW.hash, at = NEW.at;
    RETURN NEW;
END
""",
)

HEAD_GUARD = Fn(
    name="fsar_operator_log_head_guard",
    params="",
    signature="fsar_operator_log_head_guard()",
    returns="trigger",
    body="""
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'operator_log_head is written only by the operator log''s chain trigger'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
""",
)

VERIFY = Fn(
    name="fsar_operator_actions_verify",
    params="",
    signature="fsar_operator_actions_verify()",
    returns="bigint",
    language="sql",
    volatility="STABLE",
    body="""
    SELECT min(broken) FROM (
        SELECT seq AS broken FROM (
            SELECT a.seq, a.hash, a.prev_hash,
                   lag(a.hash, 1, repeat('0', 64)) OVER w AS expected_prev,
                   lag(a.seq, 1, 0::bigint) OVER w AS prev_seq,
                   fsar_operator_actions_hash(a.prev_hash, a.seq, a.at, a.actor, a.claimed_os_user, a.db_role,
                                              a.action, a.target, a.reason, a.before, a.after, a.legacy_hash)
                       AS expected_hash
            FROM operator_actions a WINDOW w AS (ORDER BY a.seq)) chain
        WHERE prev_hash <> expected_prev OR hash <> expected_hash OR seq <> prev_seq + 1
        UNION ALL
        SELECT CASE WHEN h.seq <> coalesce(l.seq, 0) THEN least(h.seq, coalesce(l.seq, 0)) + 1
                    WHEN h.hash <> coalesce(l.hash, repeat('0', 64)) THEN h.seq END
        FROM operator_log_head h
        LEFT JOIN (SELECT seq, hash FROM operator_actions ORDER BY seq DESC LIMIT 1) l ON true) found
""",
)

REJECT_CHANGE = Fn(
    name="fsar_reject_change",
    params="",
    signature="fsar_reject_change()",
    returns="trigger",
    body="""
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
""",
)

FUNCTIONS: tuple[Fn, ...] = (FIELD, HASH, CHAIN, HEAD_GUARD, VERIFY, REJECT_CHANGE)

# The triggers the log's integrity rests on — and the only triggers its tables may have:
# security-audit and log verify check each exists, runs that function, fires as created
# (tgtype) and is enabled (pg_trigger.tgenabled 'O' or 'A'), and that no other trigger,
# rule, policy or owner sits on these tables (db/privileges.log_table_problems).
ROW_BEFORE, INSERT, DELETE, UPDATE, TRUNCATE_BEFORE = 1 | 2, 4, 8, 16, 2 | 32
TRIGGERS: tuple[Trigger, ...] = (
    Trigger("operator_actions", "operator_actions_chain", CHAIN.name, ROW_BEFORE | INSERT),
    Trigger("operator_actions", "operator_actions_append_only", REJECT_CHANGE.name, ROW_BEFORE | UPDATE | DELETE),
    Trigger("operator_actions", "operator_actions_no_truncate", REJECT_CHANGE.name, TRUNCATE_BEFORE),
    Trigger("operator_log_head", "operator_log_head_guard", HEAD_GUARD.name, ROW_BEFORE | INSERT | UPDATE | DELETE),
    Trigger("operator_log_head", "operator_log_head_no_truncate", REJECT_CHANGE.name, TRUNCATE_BEFORE),
    Trigger(
        "operator_log_encodings", "operator_log_encodings_append_only", REJECT_CHANGE.name, ROW_BEFORE | UPDATE | DELETE
    ),
    Trigger("operator_log_encodings", "operator_log_encodings_no_truncate", REJECT_CHANGE.name, TRUNCATE_BEFORE),
)
