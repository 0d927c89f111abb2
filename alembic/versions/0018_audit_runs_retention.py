"""Retention for audit_runs: the scheduled audit pass records ~8 verdicts a minute per
database, so old ones are pruned by `fsar_prune_audit_runs(max_rows, kept)`: verdicts
older than `kept` (the pass uses 90 days), never a gate's latest verdict nor its latest
pass (live_gate_overrides compares overrides with it), oldest first, at most max_rows a
call. SECURITY DEFINER with EXECUTE for fsar_operator only: the operator who runs the
pass may prune by this rule, and may not DELETE verdicts at will (erasing a failing
hard gate's verdict would lift its block without a trace). An index on `at` finds the
candidates; the keep-set costs two index probes per gate.

Revision ID: 0018_audit_runs_retention
Revises: 0017_governance_roles
"""

from alembic import op

revision = "0018_audit_runs_retention"
down_revision = "0017_governance_roles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX audit_runs_at_idx ON audit_runs (at)")
    op.execute("""
        CREATE FUNCTION fsar_prune_audit_runs(max_rows integer, kept interval) RETURNS integer
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
    """)
    op.execute("REVOKE ALL ON FUNCTION fsar_prune_audit_runs(integer, interval) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION fsar_prune_audit_runs(integer, interval) TO fsar_operator")


def downgrade() -> None:
    op.execute("DROP FUNCTION fsar_prune_audit_runs(integer, interval)")
    op.execute("DROP INDEX audit_runs_at_idx")
