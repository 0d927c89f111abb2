"""The execution_tasks table exactly as the legacy production database has it.

A fresh database gets it from here; a legacy database (table present, no
alembic_version) is recognised by `fsar-tui migrate` and stamped at this revision,
so every later revision applies to both in the same way.

Revision ID: 0001_legacy_execution_tasks
Revises:
"""

from alembic import op

revision = "0001_legacy_execution_tasks"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE execution_tasks (
            id           SERIAL PRIMARY KEY,
            task_type    VARCHAR(64)  NOT NULL,
            status       VARCHAR(32)  NOT NULL DEFAULT 'queued',
            payload      JSONB,
            result       JSONB,
            error        TEXT,
            worker_id    VARCHAR(128),
            created_at   TIMESTAMP    NOT NULL DEFAULT now(),
            started_at   TIMESTAMP,
            finished_at  TIMESTAMP
        )
    """)
    op.execute("CREATE INDEX execution_tasks_status_idx ON execution_tasks (status)")


def downgrade() -> None:
    # Going below the legacy table removes the tasks; `fsar-tui migrate --downgrade base`
    # is the only way here and the README says so.
    op.execute("DROP TABLE execution_tasks")
