"""Retention for audit_runs: the scheduled audit pass records ~8 verdicts a minute per
database, so old ones are pruned (db/gates.prune_runs: older than 90 days, never a gate's
latest verdict nor its latest pass, which the override rule reads). An index on `at`
lets the pass find them without scanning; the operator, who runs the pass, may delete.

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
    op.execute("GRANT DELETE ON audit_runs TO fsar_operator")


def downgrade() -> None:
    op.execute("REVOKE DELETE ON audit_runs FROM fsar_operator")
    op.execute("DROP INDEX audit_runs_at_idx")
