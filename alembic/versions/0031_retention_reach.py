"""Retention reach (issue 18, review): how far back the raw rows retention dropped reach.

`retention_log.newest_at`: for a 'dropped' row, the newest instant any row of the
partition carried — for a range of execution_tasks the latest created/queued/started/
finished instant of its tasks (the drop's own facts, exact: a row changed since the
export refuses the drop), for a day of task_events its upper bound. An audit gate that
reads raw rows (retry_rate, the trust gate, …) compares its window plus baseline with
the newest instant archived and not restored: a window reaching into archived history
records an 'error' verdict saying so, rather than a figure over a part of its rows; and
`audit gate add` / `set --enable` refuse such a gate. Rows logged before this revision:
events get their upper bound; tasks stay NULL and are read as the drop's own time (an
upper bound: every task of the range had finished by then), the cautious side.

Revision ID: 0031_retention_reach
Revises: 0030_retention
"""

from alembic import op

revision = "0031_retention_reach"
down_revision = "0030_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE retention_log ADD COLUMN newest_at timestamptz")
    op.execute(
        "UPDATE retention_log SET newest_at = upper_bound::timestamptz "
        "WHERE table_name = 'task_events' AND action = 'dropped' AND upper_bound IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE retention_log DROP COLUMN newest_at")
