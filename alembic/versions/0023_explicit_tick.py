"""Ticking a proposal's checklist item is explicit and idempotent (issue 16, point 9).

Revision 0020's fsar_proposal_tick(id, item, reason, claimed) toggled the item named by
its 0-based key (`risks/0`): a script that ran twice unticked what it had ticked, and two
operators ticking the same item on their screens undid each other's work. From here it
is fsar_proposal_tick(id, item integer, ticked boolean, reason, claimed):
- `item` is numbered from 1 over the risks, then the mitigations — the numbers the
  Proposals screen and `fsar-tui proposals show` print; the checklist's keys stay
  `risks/0`, `mitigations/1` (stored ticks keep their meaning, nothing is rewritten);
- `ticked` is the state wanted: asking for the state the item is already in returns
  'already-ticked' / 'already-unticked' and writes nothing (no log row);
- a number outside 1..N returns 'no-item:N' and writes nothing;
- the log row (proposal.tick / proposal.untick) names the item by that number:
  before/after {"item": 3, "ticked": false/true}.
The function's text is db/governance_functions.REPLACED_IN_0023, which `security-audit`
compares with pg_proc; EXECUTE goes to fsar_operator as domain/privileges.py declares
(PUBLIC none). The signature changes, so the old function is dropped, not replaced.

Downgrade drops it and puts back revision 0020's function with its grant.

Revision ID: 0023_explicit_tick
Revises: 0022_attempt_history
"""

from alembic import op

from fsar_tui.db import governance_functions

revision = "0023_explicit_tick"
down_revision = "0022_attempt_history"
branch_labels = None
depends_on = None


def _create(fn) -> None:
    op.execute(fn.create_sql())
    op.execute(f"REVOKE ALL ON FUNCTION {fn.signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {fn.signature} TO fsar_operator")


def upgrade() -> None:
    op.execute(governance_functions.PROPOSAL_TICK_0020.drop_sql())
    for fn in governance_functions.REPLACED_IN_0023:
        _create(fn)


def downgrade() -> None:
    for fn in governance_functions.REPLACED_IN_0023:
        op.execute(fn.drop_sql())
    _create(governance_functions.PROPOSAL_TICK_0020)
