"""Which task completed each idea, and the idea's first revenue after it (attribution).

For the window's ideas (given by the caller: those in its cost and ledger rollup rows),
the last successful idea_implementation / implement_idea task finished before the
window's end — one probe per idea of `execution_tasks_idea_completed_idx` (revision
0025), a partial index on exactly those tasks, newest first — and the idea's first
revenue entry at or after that task's finish (`ledger_entries_idea_idx`). So the read
costs two index probes per idea, whatever the number of tasks (1.0 ms for the 40 ideas
of a 1 M-task seed) — three since retention (revision 0030): an idea's completions in
task ranges retention dropped are kept per UTC day in `idea_completion_days`, and the
newer of the two answers is the completion (windows end at a UTC midnight, so the last
completion before the end is some earlier day's last: the same answer as before the drop).
domain/attribution.py and domain/idea_figures.py use the result.
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow

from fsar_tui.domain.attribution import IMPLEMENTING_TYPES, Completion

# The tasks' WHERE repeats the index's predicate (the planner uses a partial index only
# for a query whose WHERE implies it). The first revenue is bounded by a row comparison
# on (idea_id, occurred_at), which only ledger_entries_idea_idx can serve: with a plain
# `occurred_at >= finish` the planner walks ledger_entries_occurred_idx over every idea's
# entries since the finish — cheap while completions are recent, a scan of the ledger
# for an idea completed long ago that has not earned since.
COMPLETIONS_SQL = """
    SELECT i.idea, c.task_type, coalesce(c.ai_model, ''), coalesce(c.rollout_revision_id, 0), c.finished_at,
           (SELECT l.occurred_at FROM ledger_entries l
            WHERE l.idea_id = i.idea AND l.kind = 'revenue' AND (l.idea_id, l.occurred_at) >= (i.idea, c.finished_at)
            ORDER BY l.idea_id, l.occurred_at LIMIT 1)
    FROM unnest(%(ideas)s::text[]) AS i(idea)
    CROSS JOIN LATERAL (
        SELECT * FROM (
            (SELECT t.task_type, t.ai_model, t.rollout_revision_id, t.finished_at, t.id
             FROM execution_tasks t
             WHERE t.idea_id = i.idea AND t.status = 'succeeded'
               AND t.task_type IN ('idea_implementation', 'implement_idea')
               AND t.finished_at < %(end)s
             ORDER BY t.finished_at DESC, t.id DESC LIMIT 1)
            UNION ALL
            (SELECT d.task_type, d.ai_model, d.rollout_revision_id, d.finished_at, d.task_id
             FROM idea_completion_days d
             WHERE d.idea_id = i.idea AND d.finished_at < %(end)s
             ORDER BY d.finished_at DESC, d.task_id DESC LIMIT 1)) u
        ORDER BY u.finished_at DESC, u.id DESC LIMIT 1) c
"""
assert all(f"'{t}'" in COMPLETIONS_SQL for t in IMPLEMENTING_TYPES)


def _params(ideas: set[str], end: datetime) -> dict[str, object]:
    return {"ideas": sorted(i for i in ideas if i), "end": end}


def _completions(rows: list[TupleRow]) -> dict[str, Completion]:
    return {idea: Completion(idea, *rest) for idea, *rest in rows}


async def completions(conn: AsyncConnection, ideas: set[str], end: datetime) -> dict[str, Completion]:
    """idea -> its completing task (ideas without one are absent)."""
    if not any(ideas):
        return {}
    cur = await conn.execute(COMPLETIONS_SQL, _params(ideas, end))
    return _completions(await cur.fetchall())


def completions_sync(conn: Connection, ideas: set[str], end: datetime) -> dict[str, Completion]:
    if not any(ideas):
        return {}
    return _completions(conn.execute(COMPLETIONS_SQL, _params(ideas, end)).fetchall())
