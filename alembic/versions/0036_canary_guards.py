"""Canary guards: what an attacker with the operator role did to revision 0035 in plain SQL.

- `fsar_rollout_deploy` refuses a canary whose first step is already 100 % (no stable arm
  left to judge it against: the client refused it, the function did not), and a canary
  while the hard built-in gate builtin:rollback-artifacts fails (the rehearsal runs in the
  client, which re-hashes artifacts; the gate is the database's record of it).
- `fsar_canary_record` counts the look's canary attempts itself (canary_analyses.
  canary_attempts) instead of trusting the caller's number — a forged one had silenced
  the judge's later looks; refuses a score outside 0..100 (NaN had reached the JSON
  status) and a judgement that is not an object; records who recorded it
  (canary_analyses.recorded_by, rollout_canaries.judged_by, shown beside the verdict);
  and logs `canary.judgement` when the verdict differs from the step's previous one, so
  who said "pass" is on the hash-chained log.
- `fsar_canary_decide` puts the judgement the mover saw (verdict, when, by whom) in the
  log row of every promote and abort: an operator's promote over a 'fail' reads as such.

Same signatures, so the grants stay (CREATE OR REPLACE). Downgrade puts revision 0035's
functions back and drops the columns.

Revision ID: 0036_canary_guards
Revises: 0035_canaries
"""

from alembic import op

from fsar_tui.db import canary_functions

revision = "0036_canary_guards"
down_revision = "0035_canaries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE canary_analyses ADD COLUMN canary_attempts bigint")
    op.execute("ALTER TABLE canary_analyses ADD COLUMN recorded_by text NOT NULL DEFAULT session_user")
    op.execute("ALTER TABLE rollout_canaries ADD COLUMN judged_by text")
    for fn in canary_functions.REPLACED_IN_0036:
        op.execute(fn.create_sql())


def downgrade() -> None:
    for fn in (canary_functions.DEPLOY, canary_functions.DECIDE, canary_functions.RECORD):
        op.execute(fn.create_sql())
    op.execute("ALTER TABLE rollout_canaries DROP COLUMN judged_by")
    op.execute("ALTER TABLE canary_analyses DROP COLUMN recorded_by")
    op.execute("ALTER TABLE canary_analyses DROP COLUMN canary_attempts")
