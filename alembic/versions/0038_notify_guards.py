"""Notification guards: what an operator did to revision 0037's functions in plain SQL.

fsar_notify_claim / take / record are replaced (db/notify_functions.py says what each
checks now): the claimed state must be the source's, the clock is the server's, a record
needs the lease its take handed out, the retry is planned by the database, every claim
is on the operator log, and every attempt names the role that recorded it.

- notify_deliveries.lease: the uuid of the current lease (NULL when not leased).
- notify_attempts.recorded_by: the role that recorded the attempt (NULL for the attempts
  recorded before this revision: unknown).

The signatures change, so the 0037 functions are dropped and the new ones created and
granted to fsar_operator. Downgrade puts 0037's back and drops the columns.

Revision ID: 0038_notify_guards
Revises: 0037_notifications
"""

from alembic import op

from fsar_tui.db import notify_functions_history as notify_functions
from fsar_tui.db.shipped_sql import replace_sql

revision = "0038_notify_guards"
down_revision = "0037_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE notify_deliveries ADD COLUMN lease uuid")
    op.execute("ALTER TABLE notify_attempts ADD COLUMN recorded_by text")
    op.execute("ALTER TABLE notify_attempts ALTER COLUMN recorded_by SET DEFAULT session_user")
    for statement in replace_sql(notify_functions.FUNCTIONS_0037, notify_functions.FUNCTIONS_0038, "fsar_operator"):
        op.execute(statement)


def downgrade() -> None:
    for statement in replace_sql(notify_functions.FUNCTIONS_0038, notify_functions.FUNCTIONS_0037, "fsar_operator"):
        op.execute(statement)
    op.execute("ALTER TABLE notify_attempts DROP COLUMN recorded_by")
    op.execute("ALTER TABLE notify_deliveries DROP COLUMN lease")
