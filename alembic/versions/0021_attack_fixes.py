"""What an independent attacker broke after revisions 0019 and 0020, fixed in the schema.

1. A false 'fail' went unlogged. An operator may call fsar_record_verdict (the audit
   pass computes verdicts in the client, so PostgreSQL cannot tell a true verdict from
   a false one), and revision 0020 logged only a verdict that ENDS a hard gate's block:
   `fsar_record_verdict(<builtin:rollback-artifacts>, 1, NULL, 'fail', …)` put a row
   without task_type in execution_blocks — every claim stopped — with no log row. Now a
   verdict that STARTS a block (the gate not blocking before it, blocking after) is
   logged as `gate_blocked` under the role, as the end is logged as `gate_unblocked`.
2. Retention at will. `fsar_prune_audit_runs(2147483647, '-1000 years')` deleted every
   verdict but each gate's latest and latest pass, unlogged: revision 0018's function
   took any `kept` and any `max_rows`. Now it refuses a `kept` under 90 days (the pass's
   db/gates.RUNS_KEPT; compared as a cutoff, so '3 months' in a short quarter is refused
   too) and a `max_rows` outside 1..5000 (the pass's batch, db/gates.PRUNE_MAX_ROWS),
   raising invalid_parameter_value with the policy in the message.

Both functions keep their signature, owner and grants (CREATE OR REPLACE); their text
is db/action_functions.REPLACED_IN_0021, which `security-audit` compares with pg_proc.
The other findings (grants to roles outside the declaration, rules, extra triggers and
owners on the operator log) are checks in the client — db/privileges.py,
services/log_integrity.py — with nothing to change in the schema.

Downgrade puts back revision 0020's fsar_record_verdict and revision 0018's
fsar_prune_audit_runs.

Revision ID: 0021_attack_fixes
Revises: 0020_least_privilege
"""

from alembic import op

from fsar_tui.db import action_functions

revision = "0021_attack_fixes"
down_revision = "0020_least_privilege"
branch_labels = None
depends_on = None

# Revision 0018's function, as it ran (its text is inline in that revision's upgrade()).
PRUNE_0018 = """
        CREATE OR REPLACE FUNCTION fsar_prune_audit_runs(max_rows integer, kept interval) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
            n integer;
        BEGIN
            WITH keep AS (
                SELECT l.id FROM audit_gates g CROSS JOIN LATERAL (
                    SELECT r.id FROM audit_runs r WHERE r.gate_id = g.id ORDER BY r.at DESC, r.id DESC LIMIT 1) l
                UNION
                SELECT p.id FROM audit_gates g CROSS JOIN LATERAL (
                    SELECT r.id FROM audit_runs r WHERE r.gate_id = g.id AND r.verdict = 'pass'
                    ORDER BY r.at DESC, r.id DESC LIMIT 1) p),
            doomed AS (
                SELECT a.id FROM audit_runs a
                WHERE a.at < now() - kept AND a.id NOT IN (SELECT id FROM keep)
                ORDER BY a.at LIMIT max_rows)
            DELETE FROM audit_runs WHERE id IN (SELECT id FROM doomed);
            GET DIAGNOSTICS n = ROW_COUNT;
            RETURN n;
        END $$
    """


def upgrade() -> None:
    for fn in action_functions.REPLACED_IN_0021:
        op.execute(fn.create_sql())


def downgrade() -> None:
    op.execute(action_functions.RECORD_VERDICT_0020.create_sql())
    op.execute(PRUNE_0018)
