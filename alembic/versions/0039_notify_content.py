"""Notification content guards: what an operator still did to revision 0038's functions
in plain SQL — word and date a page, claim it for no channel, resolve what never fired,
hoard leases, burn other configurations' attempts, record fake failures.
db/notify_functions.py says what each function checks now.

- notify_deliveries.taken_by: the role that leased the delivery last.

The claim's and the take's signatures change (the times are the database's; a take
names its channels), so 0038's functions are dropped and the new ones created and
granted to fsar_operator. Downgrade puts 0038's back and drops the column.

Revision ID: 0039_notify_content
Revises: 0038_notify_guards
"""

from alembic import op

from fsar_tui.db import notify_functions
from fsar_tui.db.shipped_sql import replace_sql

revision = "0039_notify_content"
down_revision = "0038_notify_guards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE notify_deliveries ADD COLUMN taken_by text")
    for statement in replace_sql(notify_functions.FUNCTIONS_0038, notify_functions.FUNCTIONS_0039, "fsar_operator"):
        op.execute(statement)


def downgrade() -> None:
    for statement in replace_sql(notify_functions.FUNCTIONS_0039, notify_functions.FUNCTIONS_0038, "fsar_operator"):
        op.execute(statement)
    op.execute("ALTER TABLE notify_deliveries DROP COLUMN taken_by")
