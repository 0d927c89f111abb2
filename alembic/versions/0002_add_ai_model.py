"""Add execution_tasks.ai_model: the column whose absence made tasks fail.

A revision of its own so a legacy database gets exactly the fix the FSAR report asks
for. IF NOT EXISTS because operators who read that report may have added it by hand.

Revision ID: 0002_add_ai_model
Revises: 0001_legacy_execution_tasks
"""

from alembic import op

revision = "0002_add_ai_model"
down_revision = "0001_legacy_execution_tasks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE execution_tasks ADD COLUMN IF NOT EXISTS ai_model TEXT")


def downgrade() -> None:
    op.execute("ALTER TABLE execution_tasks DROP COLUMN ai_model")
