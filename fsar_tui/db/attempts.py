"""Reads over attempts' ends: what is failing now (screen 1's `f` view).

A failure is an attempt that ended badly, as the events trail records it: the task went
from 'running' back to 'queued' (an executor retry, an expired lease, an operator's
requeue) or to 'failed'. Since revision 0022 that event carries the attempt's error
(task_events.error; NULL on earlier events: their errors were not recorded per attempt).

Both reads walk the partial index of failing events by time (`task_events_failures_idx`,
revision 0022) — never execution_tasks as a whole: the counts join each failure of the
last 24 h to its task by primary key (for the type and model), the error groups read
only the trail. A task's attempts themselves come with its detail (db/tasks.task_detail:
the trail's events carry their error; domain/attempts.py rebuilds the attempts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row

from fsar_tui.domain.error_groups import Failure

# As revision 0022's index predicate, verbatim: the planner uses a partial index only for
# a WHERE clause that implies it.
FAILURE = "(e.to_status = 'failed' OR (e.from_status = 'running' AND e.to_status = 'queued'))"
WINDOWS_S = (15 * 60, 3600, 24 * 3600)  # the view's windows: 15 min, 1 h, 24 h
GROUPED_CAP = 5000  # error groups are made from the newest failures of their window, at most this many

COUNTS_SQL = f"""
    SELECT t.task_type, t.ai_model,
           count(*) FILTER (WHERE e.at >= now() - make_interval(secs => %(w0)s)) AS last_15m,
           count(*) FILTER (WHERE e.at >= now() - make_interval(secs => %(w1)s)) AS last_1h,
           count(*) AS last_24h,
           count(*) FILTER (WHERE e.to_status = 'failed') AS final_24h
    FROM task_events e JOIN execution_tasks t ON t.id = e.task_id
    WHERE e.at >= now() - make_interval(secs => %(w2)s) AND {FAILURE}
    GROUP BY t.task_type, t.ai_model
    ORDER BY last_15m DESC, last_1h DESC, last_24h DESC, t.task_type, t.ai_model NULLS FIRST"""

# The newest failures of the window, identical messages counted together. A message is
# read as its first 600 characters and, when longer, its last 300 (a traceback's
# exception is its last line): enough for domain/error_groups.headline.
FAILURES_SQL = f"""
    WITH f AS (
        SELECT e.task_id, e.at,
               CASE WHEN length(e.error) > 900 THEN left(e.error, 600) || E'\\n' || right(e.error, 300)
                    ELSE e.error END AS error
        FROM task_events e
        WHERE e.at >= now() - make_interval(secs => %(window)s) AND {FAILURE}
        ORDER BY e.at DESC
        LIMIT %(cap)s)
    SELECT (array_agg(task_id ORDER BY at DESC, task_id DESC))[1] AS task_id, max(at) AS at, error,
           count(*)::int AS count
    FROM f GROUP BY error"""


@dataclass(frozen=True)
class FailureCount:
    """Failed attempts of one type × model in the last 15 min, 1 h and 24 h (final: the
    24 h ones that left the task failed, not queued for another attempt)."""

    task_type: str
    ai_model: str | None
    last_15m: int
    last_1h: int
    last_24h: int
    final_24h: int


@dataclass(frozen=True)
class FailingNow:
    counts: list[FailureCount]
    window_s: int  # the window the failures below were read over
    failures: list[Failure]  # its newest (at most GROUPED_CAP), identical messages together
    read: int  # how many failures `failures` stands for (≤ GROUPED_CAP)

    def total(self, window_s: int) -> int:
        """Failures of every type and model in one of WINDOWS_S."""
        column = {WINDOWS_S[0]: "last_15m", WINDOWS_S[1]: "last_1h", WINDOWS_S[2]: "last_24h"}[window_s]
        return sum(getattr(c, column) for c in self.counts)


def _params(window_s: int, cap: int) -> dict[str, int]:
    if window_s not in WINDOWS_S:
        raise ValueError(f"window {window_s}s is not one of {WINDOWS_S}")
    return {"w0": WINDOWS_S[0], "w1": WINDOWS_S[1], "w2": WINDOWS_S[2], "window": window_s, "cap": cap}


def _failures(rows: list[tuple[int, datetime, str | None, int]]) -> list[Failure]:
    return [Failure(task_id, at, error, count) for task_id, at, error, count in rows]


async def failing_now(conn: AsyncConnection, window_s: int = 3600, cap: int = GROUPED_CAP) -> FailingNow:
    """Failure counts per type × model for the three windows, and the newest failures of
    `window_s` (one of WINDOWS_S) for grouping by error."""
    params = _params(window_s, cap)
    cur = conn.cursor(row_factory=class_row(FailureCount))
    await cur.execute(COUNTS_SQL, params)
    counts = await cur.fetchall()
    rows = await (await conn.execute(FAILURES_SQL, params)).fetchall()
    failures = _failures(rows)
    return FailingNow(counts, window_s, failures, sum(f.count for f in failures))


def failing_now_sync(conn: Connection, window_s: int = 3600, cap: int = GROUPED_CAP) -> FailingNow:
    """`failing_now` for scripts and tests."""
    params = _params(window_s, cap)
    counts = conn.cursor(row_factory=class_row(FailureCount)).execute(COUNTS_SQL, params).fetchall()
    failures = _failures(conn.execute(FAILURES_SQL, params).fetchall())
    return FailingNow(counts, window_s, failures, sum(f.count for f in failures))
