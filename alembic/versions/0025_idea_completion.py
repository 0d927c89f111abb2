"""Attribution by the task that completed an idea (issue 17, point 3): an index to find it.

ROI's default attribution gives an idea's revenue to the (type, model, rollout) group of
the task that completed the idea — its last successful idea_implementation /
implement_idea task (domain/attribution.py). The ROI read asks that for each of the
window's ideas (db/idea_completions.py): without an index it is a scan of
execution_tasks per idea (13.8 s for the 40 ideas of a 1 M-task seed). The partial index
`execution_tasks_idea_completed_idx` on (idea_id, finished_at, id) over exactly those
tasks makes it one backward index probe per idea (0.9 ms for the 40).

Why an index, not a per-idea table kept by trigger: every success of an idea's task
would then update the same row (a hot row under a busy fleet), and undoing the
completing task (a delete, a retry) would need this index anyway to find the one before.
The index costs one entry per successful implementing task (38 MB for 800 k of them,
next to the table's 340 MB) and nothing for other writes.

Large tables: the index is built in this transaction and reads execution_tasks once
while task writes wait on its lock: 2.6 s for a 1 M-task seed (warm cache, this 2-core
machine) — about 26 s per 10 M tasks, longer when the table is not in memory.

Downgrade drops the index.

Revision ID: 0025_idea_completion
Revises: 0024_exact_cost
"""

from alembic import op

revision = "0025_idea_completion"
down_revision = "0024_exact_cost"
branch_labels = None
depends_on = None

INDEX = "execution_tasks_idea_completed_idx"
# db/idea_completions.COMPLETIONS_SQL repeats the predicate (the planner uses a partial
# index only for a query whose WHERE implies it).
PREDICATE = "status = 'succeeded' AND task_type IN ('idea_implementation', 'implement_idea') AND idea_id IS NOT NULL"


def upgrade() -> None:
    op.execute(f"CREATE INDEX {INDEX} ON execution_tasks (idea_id, finished_at, id) WHERE {PREDICATE}")


def downgrade() -> None:
    op.execute(f"DROP INDEX {INDEX}")
