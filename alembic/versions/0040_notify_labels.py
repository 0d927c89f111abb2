"""Notification labels and due times: what an operator still did through revision
0039's functions in plain SQL — label a page as another (receivers pair and route by
labels), claim without a summary (a log row without a reason), date events by a
transaction held open, and hide a never-tried delivery by re-taking it every lease.
db/notify_functions.py says what each function does now.

- notify_deliveries.due_since: when the delivery was first due (or its retry is), which
  a take's lease does not move (set from next_attempt_at for the existing rows).

Same signatures as 0039 (CREATE OR REPLACE: the grants stay). Downgrade puts 0039's
back and drops the column.

Revision ID: 0040_notify_labels
Revises: 0039_notify_content
"""

from alembic import op

from fsar_tui.db import notify_functions, notify_functions_0039

revision = "0040_notify_labels"
down_revision = "0039_notify_content"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE notify_deliveries ADD COLUMN due_since timestamptz")
    op.execute("UPDATE notify_deliveries SET due_since = next_attempt_at WHERE status = 'pending'")
    for fn in notify_functions.FUNCTIONS:
        op.execute(fn.create_sql())


def downgrade() -> None:
    for fn in notify_functions_0039.FUNCTIONS_0039:
        op.execute(fn.create_sql())
    op.execute("ALTER TABLE notify_deliveries DROP COLUMN due_since")
