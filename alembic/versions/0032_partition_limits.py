"""Partition limits: the partition functions of revision 0029, robust against extreme ids
and times and against an operator abusing fsar_ensure_partitions' arguments.

Replaces (CREATE OR REPLACE: same signatures, so the grants stay) the four functions of
db/partition_functions.REPLACED_IN_0032 — see that module's docstring, "Limits":
- fsar_ensure_partitions follows the bulk of the ids (from the sequence), not the highest
  stored id; computes chunk ends without bigint overflow; gives DEFAULT's rows partitions
  only within horizons (ids near the bulk, events from ~10 years back to a year ahead);
  refuses a non-owner more than 10 M ids / 60 days ahead; fills at most 100 chunks or
  days a call;
- fsar_cover_task_ids: the top chunk ends at 2^63-1 instead of overflowing;
- fsar_create_event_partition / fsar_cover_event_days: refuse bounds outside years
  1..9999 (Python's datetime cannot hold them: every reader of the bounds broke).

Partitions the old functions already made are left as they are (db/partitions.
list_partitions reads a bound Python cannot hold as open-ended; retention keeps those).

Downgrade puts the 0029 versions back.

Revision ID: 0032_partition_limits
Revises: 0031_retention_reach
"""

from alembic import op

from fsar_tui.db import partition_functions as pf

revision = "0032_partition_limits"
down_revision = "0031_retention_reach"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for fn in pf.REPLACED_IN_0032:
        op.execute(fn.create_sql())


def downgrade() -> None:
    replaced = {fn.name for fn in pf.REPLACED_IN_0032}
    for fn in pf.FUNCTIONS_0029:
        if fn.name in replaced:
            op.execute(fn.create_sql())
