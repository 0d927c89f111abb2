"""Queue-screen reads: filtered keyset pages, counts, running tasks, workers, detail.

Never loads the table: pages are `LIMIT n` after a keyset cursor on (sort column, id),
so page N costs the same as page 1 on an index. Filters are compiled to
parameterised WHERE clauses from `domain.task_filter.TaskFilter` (never string-pasted).
The CLI (`fsar-tui tasks`, commands/tasks.py) runs the same SQL through `_sync` twins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row, dict_row

from fsar_tui.db import retention
from fsar_tui.db.rows import one
from fsar_tui.domain.task_filter import TaskFilter

# Column name -> SQL expression; only these can be sorted on (no user text reaches SQL).
SORTABLE = {
    "id": "t.id",
    "created": "t.created_at",
    "started": "t.started_at",
    "finished": "t.finished_at",
    "attempt": "t.attempt",
    "cost": "t.cost_minor",
}
LIST_COLUMNS = """t.id, t.status, t.task_type, t.ai_model, t.attempt, t.max_attempts, t.worker_id, t.created_at,
    t.started_at, t.finished_at, t.cost_minor, t.currency, left(t.error, 1000) AS error, t.priority"""
# The list shows the first 80 characters of the error *after* redaction; 1,000 fetched
# characters keep any secret that starts in the visible part whole for the detectors.


@dataclass(frozen=True)
class TaskRow:
    id: int
    status: str
    task_type: str
    ai_model: str | None
    attempt: int
    max_attempts: int
    worker_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cost_minor: int | None
    currency: str | None
    error: str | None
    priority: int


def where_clause(f: TaskFilter) -> tuple[str, dict[str, Any]]:
    conds: list[str] = []
    params: dict[str, Any] = {}
    for attr, column in (
        ("statuses", "t.status"),
        ("types", "t.task_type"),
        ("models", "t.ai_model"),
        ("workers", "t.worker_id"),
        ("ideas", "t.idea_id"),
        ("ids", "t.id"),
        ("priorities", "t.priority"),
    ):
        values = getattr(f, attr)
        if values:
            conds.append(f"{column} = ANY(%({attr})s)")
            params[attr] = list(values)
    if f.since_s is not None:
        conds.append("t.created_at >= now() - make_interval(secs => %(since_s)s)")
        params["since_s"] = f.since_s
    if f.error_contains is not None:
        conds.append("t.error ILIKE %(error_like)s")
        params["error_like"] = "%" + _escape_like(f.error_contains) + "%"
    if f.payload_contains is not None:
        conds.append("t.payload::text ILIKE %(payload_like)s")
        params["payload_like"] = "%" + _escape_like(f.payload_contains) + "%"
    return (" AND ".join(conds) or "true"), params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class PageRequest:
    filter: TaskFilter = TaskFilter()
    sort: str = "id"
    descending: bool = True
    after: tuple[Any, int] | None = None  # (sort value, id) of the last row of the previous page
    limit: int = 100


def _page_query(req: PageRequest) -> tuple[str, dict[str, Any]]:
    """The keyset page's SQL and parameters (shared by `page` and `page_sync`)."""
    if req.sort not in SORTABLE:
        raise ValueError(f"cannot sort by {req.sort!r}")
    col = SORTABLE[req.sort]
    where, params = where_clause(req.filter)
    op, direction = ("<", "DESC") if req.descending else (">", "ASC")
    nulls = "NULLS LAST" if req.descending else "NULLS FIRST"
    keyset = ""
    if req.after is not None:
        value, last_id = req.after
        if req.sort == "id":
            keyset = f"AND t.id {op} %(after_id)s"
        elif value is None:
            # Past the non-null values (NULLs sort last when descending): only NULLs remain.
            keyset = (
                f"AND {col} IS NULL AND t.id {op} %(after_id)s"
                if req.descending
                else f"AND ({col} IS NOT NULL OR t.id {op} %(after_id)s)"
            )
        else:
            keyset = f"AND ({col} {op} %(after_value)s OR ({col} = %(after_value)s AND t.id {op} %(after_id)s)" + (
                f" OR {col} IS NULL)" if req.descending else ")"
            )
        params.update(after_value=value, after_id=last_id)
    order = f"t.id {direction}" if req.sort == "id" else f"{col} {direction} {nulls}, t.id {direction}"
    sql = f"SELECT {LIST_COLUMNS} FROM execution_tasks t WHERE {where} {keyset} ORDER BY {order} LIMIT %(limit)s"
    return sql, {**params, "limit": req.limit}


async def page(conn: AsyncConnection, req: PageRequest) -> list[TaskRow]:
    cur = await conn.execute(*_page_query(req))
    return [TaskRow(*r) for r in await cur.fetchall()]


def page_sync(conn: Connection, req: PageRequest) -> list[TaskRow]:
    """`page` for the CLI (`fsar-tui tasks list`)."""
    return [TaskRow(*r) for r in conn.execute(*_page_query(req)).fetchall()]


def sort_key(row: TaskRow, sort: str) -> tuple[Any, int]:
    attr = {
        "id": "id",
        "created": "created_at",
        "started": "started_at",
        "finished": "finished_at",
        "attempt": "attempt",
        "cost": "cost_minor",
    }[sort]
    return getattr(row, attr), row.id


def _count_query(f: TaskFilter, cap: int) -> tuple[str, dict[str, Any]]:
    where, params = where_clause(f)
    sql = f"SELECT count(*) FROM (SELECT 1 FROM execution_tasks t WHERE {where} LIMIT %(cap)s) s"
    return sql, {**params, "cap": cap}


async def count_matching(conn: AsyncConnection, f: TaskFilter, cap: int = 10_001) -> int:
    """How many tasks match, counting at most `cap` (the screen says "10,000+")."""
    cur = await conn.execute(*_count_query(f, cap))
    return _count(await cur.fetchone())


def count_matching_sync(conn: Connection, f: TaskFilter, cap: int = 10_001) -> int:
    return _count(conn.execute(*_count_query(f, cap)).fetchone())


def _count(row: tuple[Any, ...] | None) -> int:
    return int(one(row)[0])  # count(*) always returns a row


def _matching_query(f: TaskFilter, statuses: tuple[str, ...], cap: int) -> tuple[str, dict[str, Any]]:
    where, params = where_clause(f)
    sql = (
        f"SELECT t.id, t.status FROM execution_tasks t WHERE {where} AND t.status = ANY(%(action_statuses)s) "
        "ORDER BY t.id LIMIT %(cap)s"
    )
    return sql, {**params, "action_statuses": list(statuses), "cap": cap}


async def matching_ids(
    conn: AsyncConnection, f: TaskFilter, statuses: tuple[str, ...], cap: int
) -> list[tuple[int, str]]:
    """(id, status) of tasks matching the filter in one of `statuses` (bulk actions)."""
    cur = await conn.execute(*_matching_query(f, statuses, cap))
    return await cur.fetchall()


def matching_ids_sync(conn: Connection, f: TaskFilter, statuses: tuple[str, ...], cap: int) -> list[tuple[int, str]]:
    return conn.execute(*_matching_query(f, statuses, cap)).fetchall()


def count_in_states_sync(conn: Connection, f: TaskFilter, statuses: tuple[str, ...], cap: int) -> int:
    """How many tasks match the filter in one of `statuses`, counting at most `cap` (to say
    how many a refused bulk action would have touched)."""
    where, params = where_clause(f)
    return _count(
        conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM execution_tasks t WHERE {where} "
            "AND t.status = ANY(%(action_statuses)s) LIMIT %(cap)s) s",
            {**params, "action_statuses": list(statuses), "cap": cap},
        ).fetchone()
    )


def statuses_of_sync(conn: Connection, ids: list[int]) -> dict[int, str]:
    """id -> current status of those of `ids` that exist (what the operator "saw")."""
    return dict(conn.execute("SELECT id, status FROM execution_tasks WHERE id = ANY(%s)", (list(ids),)).fetchall())


@dataclass(frozen=True)
class StatusCount:
    """Tasks in one status of one type (and model, when counted per model; else None)."""

    status: str
    task_type: str
    ai_model: str | None
    n: int


@dataclass(frozen=True)
class RunningTask:
    id: int
    task_type: str
    ai_model: str | None
    worker_id: str | None
    started_at: datetime | None
    attempt: int
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class WorkerSeen:
    """A worker that reported lately (`workers`): when last, and how many tasks run on it
    whose lease has not run out (a task run without a lease, as a legacy executor does,
    counts; it is no sign of life, having no expiry)."""

    worker_id: str
    last_report: datetime
    running: int


@dataclass(frozen=True)
class MinuteActivity:
    minute: datetime
    finished: int
    enqueued: int


async def status_type_counts(conn: AsyncConnection, by_model: bool = False) -> list[StatusCount]:
    """Counts per status × type (× model), exact, from the trigger-maintained counters
    (revision 0012): folded totals plus the not-yet-folded deltas, a few hundred rows
    whatever the size of execution_tasks."""
    model = "nullif(ai_model, '')" if by_model else "NULL::text"
    group = "status, task_type" + (", ai_model" if by_model else "")
    cur = conn.cursor(row_factory=class_row(StatusCount))
    await cur.execute(
        f"""SELECT status, task_type, {model} AS ai_model, sum(n)::bigint AS n FROM (
                SELECT status, task_type, ai_model, n FROM task_counts
                UNION ALL SELECT status, task_type, ai_model, n FROM task_count_deltas) c
            GROUP BY {group} HAVING sum(n) <> 0 ORDER BY {group}"""
    )
    return await cur.fetchall()


# Groups where the counters disagree with a full recount (empty when they agree). A full
# scan: for checks and tests, never for the live screen.
COUNTS_DRIFT_SQL = """
    WITH counted AS (SELECT status, task_type, coalesce(ai_model, '') AS ai_model, count(*) AS n
                     FROM execution_tasks GROUP BY 1, 2, 3),
         kept AS (SELECT status, task_type, ai_model, sum(n) AS n FROM (
                      SELECT status, task_type, ai_model, n FROM task_counts
                      UNION ALL SELECT status, task_type, ai_model, n FROM task_count_deltas) c
                  GROUP BY 1, 2, 3 HAVING sum(n) <> 0)
    SELECT status, task_type, ai_model, counted.n AS counted, kept.n AS kept
    FROM counted FULL JOIN kept USING (status, task_type, ai_model)
    WHERE counted.n IS DISTINCT FROM kept.n"""


async def running_tasks(conn: AsyncConnection, limit: int = 50) -> list[RunningTask]:
    cur = conn.cursor(row_factory=class_row(RunningTask))
    await cur.execute(
        "SELECT id, task_type, ai_model, worker_id, started_at, attempt, lease_expires_at FROM execution_tasks "
        "WHERE status = 'running' ORDER BY started_at LIMIT %s",
        (limit,),
    )
    return await cur.fetchall()


# What a worker itself did, on the events trail (alias e). The status trigger writes the
# task's worker_id on every event, whoever made it, so the worker column alone does not
# say the worker reported: an operator's cancel or requeue and the lease reaper's requeue
# or fail carry the worker that held the task, dead or alive. A report is:
# - a claim: the event into 'running' (only a claim sets that status);
# - the end of an attempt written by the worker: out of 'running' into 'succeeded' (only
#   a worker sets it), 'failed' or 'queued' (a retry) — but not the reaper's, whose error
#   is REAP_SQL's "lease expired at …" (db/executor.py), and not an operator's requeue,
#   which the trigger records with no error (revision 0022; a worker's retry carries the
#   error it set, so a retry written without an error is not counted either).
# 'cancelled' is only ever an operator's. Bulk-loaded history (fsar-tui seed) follows the
# same shapes.
REPORT = """e.worker_id IS NOT NULL AND (
    e.to_status = 'running'
    OR (e.from_status = 'running' AND (
        e.to_status = 'succeeded'
        OR (e.to_status = 'failed' AND (e.error IS NULL OR e.error NOT LIKE %(reaped)s))
        OR (e.to_status = 'queued' AND e.error NOT LIKE %(reaped)s))))"""
REAPED = "lease expired at %"  # REPORT's %(reaped)s: how REAP_SQL's error starts
# The newest report is looked for among this many newest events at most: a fleet that
# is down while tasks are still enqueued, requeued or cancelled must not make every
# refresh walk the whole events index back to its last report.
REPORT_SEARCH = 10_000


@dataclass(frozen=True)
class FleetHealth:
    """Is anyone working? Running tasks, those whose lease ran out (no live worker renewed
    it: the worker died or hangs), those whose lease is live, and when a worker last
    reported (`fleet_health`)."""

    running: int
    lease_expired: int
    live_leases: int
    last_report: datetime | None  # None: no report among the newest REPORT_SEARCH events
    searched_since: datetime | None  # then: the oldest of those (None: every event was read)


async def fleet_health(conn: AsyncConnection) -> FleetHealth:
    """Running tasks, expired and live leases, and the fleet's newest report.

    A worker's report is something the worker itself did (REPORT): a claim, or the end
    of an attempt it wrote — not an operator's cancel or requeue, nor the lease reaper's
    requeue or fail, though the trigger records the task's worker on those too — or a
    live lease it holds: a running task whose lease_expires_at is in the future, which
    only the worker's renewals keep so. Renewals are not recorded, so a live lease counts
    as a report at the time of this read (the worker renewed it within its lease length).

    Cost, on every refresh: the counts ride the partial index of running tasks' leases;
    the newest report walks task_events' time index backwards and stops at the first
    report, reading at most REPORT_SEARCH events (~10 ms when a dead fleet's last report
    is further back; then `searched_since` says how far back was looked)."""
    cur = await conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE lease_expires_at < now()),
                  count(*) FILTER (WHERE lease_expires_at >= now()), now()
           FROM execution_tasks WHERE status = 'running'"""
    )
    running, expired, live, read_at = one(await cur.fetchone())
    if live:  # a live lease is a report now: no need to look at the events
        return FleetHealth(running, expired, live, read_at, None)
    cur = await conn.execute(
        f"""SELECT e.at FROM (SELECT at, worker_id, from_status, to_status, error FROM task_events
                              ORDER BY at DESC LIMIT %(n)s) e
            WHERE {REPORT} ORDER BY e.at DESC LIMIT 1""",
        {"n": REPORT_SEARCH, "reaped": REAPED},
    )
    found = await cur.fetchone()
    if found is not None:
        return FleetHealth(running, expired, live, found[0], None)
    # How far back the search went (None: the whole trail was read, and held no report).
    cur = await conn.execute("SELECT at FROM task_events ORDER BY at DESC OFFSET %s LIMIT 1", (REPORT_SEARCH - 1,))
    oldest = await cur.fetchone()
    return FleetHealth(running, expired, live, None, oldest[0] if oldest else None)


async def workers(conn: AsyncConnection, window_s: int = 300) -> list[WorkerSeen]:
    """Workers that reported in the last `window_s` seconds or hold a live lease (the rule
    is fleet_health's), each with its newest report (a live lease: this read) and the
    tasks running on it whose lease has not run out. A dead worker whose task is still
    'running' with an expired lease is not one of them, nor is the worker named on an
    operator's or the reaper's event. Cost: the window's events through task_events' time index, the live
    leases through the partial index of running tasks — never the whole events trail."""
    cur = conn.cursor(row_factory=class_row(WorkerSeen))
    await cur.execute(
        f"""WITH reports AS (
                SELECT e.worker_id, max(e.at) AS at FROM task_events e
                WHERE e.at > now() - make_interval(secs => %(window)s) AND {REPORT}
                GROUP BY e.worker_id),
            leases AS (
                SELECT t.worker_id, count(*) AS n, count(*) FILTER (WHERE t.lease_expires_at >= now()) AS live
                FROM execution_tasks t
                WHERE t.status = 'running' AND t.worker_id IS NOT NULL
                  AND (t.lease_expires_at >= now() OR t.lease_expires_at IS NULL)
                GROUP BY t.worker_id)
            SELECT worker_id, CASE WHEN l.live > 0 THEN now() ELSE r.at END AS last_report,
                   coalesce(l.n, 0) AS running
            FROM reports r FULL JOIN leases l USING (worker_id)
            WHERE r.at IS NOT NULL OR l.live > 0
            ORDER BY worker_id""",
        {"window": window_s, "reaped": REAPED},
    )
    return await cur.fetchall()


async def activity(conn: AsyncConnection, minutes: int = 30) -> list[MinuteActivity]:
    """Per minute: tasks that finished (throughput) and tasks enqueued."""
    # Aggregate the window once (one index range scan), then place it on the minute grid.
    cur = conn.cursor(row_factory=class_row(MinuteActivity))
    await cur.execute(
        """WITH per_minute AS (
               SELECT date_trunc('minute', at) AS m,
                      count(*) FILTER (WHERE to_status IN ('succeeded', 'failed', 'cancelled')) AS done,
                      count(*) FILTER (WHERE from_status IS NULL) AS enqueued
               FROM task_events
               WHERE at >= date_trunc('minute', now()) - make_interval(mins => %(m)s - 1)
               GROUP BY 1)
           SELECT g.m AS minute, coalesce(p.done, 0) AS finished, coalesce(p.enqueued, 0) AS enqueued
           FROM generate_series(date_trunc('minute', now()) - make_interval(mins => %(m)s - 1),
                                date_trunc('minute', now()), interval '1 minute') AS g(m)
           LEFT JOIN per_minute p ON p.m = g.m
           ORDER BY g.m""",
        {"m": minutes},
    )
    return await cur.fetchall()


# Error, payload and result are read as text, cut at `head` characters, with their full size
# in bytes: the detail shows the first 64 KiB of each (domain/capped.py) and a 10 MB payload
# costs the client what 64 KiB does — it is never parsed (a document nested 3,000 deep,
# which PostgreSQL accepts and Python's parser does not, shows like any other). OFFSET 0
# keeps the lateral subquery from being flattened, so each document is serialised once.
DETAIL_SQL = """SELECT t.id, t.task_type, t.ai_model, t.status, t.priority, t.attempt, t.max_attempts, t.worker_id,
                      t.created_at, t.queued_at, t.started_at, t.finished_at, t.lease_expires_at, t.input_tokens,
                      t.output_tokens, t.cost_minor, t.currency, t.idea_id, t.proposal_id,
                      left(t.error, %(head)s) AS error, octet_length(t.error) AS error_bytes,
                      left(d.payload, %(head)s) AS payload, octet_length(d.payload) AS payload_bytes,
                      left(d.result, %(head)s) AS result, octet_length(d.result) AS result_bytes,
                      rr.revision AS rollout_revision, r.target AS rollout_target, p.severity AS proposal_severity
               FROM execution_tasks t
               CROSS JOIN LATERAL (SELECT t.payload::text AS payload, t.result::text AS result OFFSET 0) d
               LEFT JOIN rollout_revisions rr ON rr.id = t.rollout_revision_id
               LEFT JOIN rollouts r ON r.id = rr.rollout_id
               LEFT JOIN fsar_proposals p ON p.id = t.proposal_id
               WHERE t.id = %(id)s"""
FULL = 2**31 - 1  # `head` that reads the whole text (left() takes an int)
# task_events has no CHECK on its status columns and an operator role may INSERT into it:
# a status that is not one of the five is shown as "?" (an escape sequence never reaches a terminal).
EVENTS_SQL = """SELECT CASE WHEN from_status IN ('queued','running','succeeded','failed','cancelled')
                            THEN from_status WHEN from_status IS NULL THEN NULL ELSE '?' END AS from_status,
                       CASE WHEN to_status IN ('queued','running','succeeded','failed','cancelled')
                            THEN to_status ELSE '?' END AS to_status,
                       attempt, worker_id, at, error FROM task_events WHERE task_id = %s ORDER BY id"""


async def task_detail(conn: AsyncConnection, task_id: int, head: int = FULL) -> dict[str, Any] | None:
    """The row, its rollout and proposal, and `events` (the task_events trail, oldest
    first, each with the error that ended its attempt since revision 0022: at most
    4,096 characters plus a line saying how many more); error, payload and result as
    text — the first `head` characters (payload and result: their JSON text) — with
    `<column>_bytes`, each one's whole size."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(DETAIL_SQL, {"id": task_id, "head": head})
        task = await cur.fetchone()
        if task is None:
            return None
        await cur.execute(EVENTS_SQL, (task_id,))
        task["events"] = await cur.fetchall()
    task["events_archived_before"] = await retention.events_archived_before_async(conn, task)
    return task


def task_detail_sync(conn: Connection, task_id: int, head: int = FULL) -> dict[str, Any] | None:
    """`task_detail` for the CLI (`fsar-tui tasks show`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        task = cur.execute(DETAIL_SQL, {"id": task_id, "head": head}).fetchone()
        if task is None:
            return None
        task["events"] = cur.execute(EVENTS_SQL, (task_id,)).fetchall()
    task["events_archived_before"] = retention.events_archived_before(conn, task)  # None: the trail is whole
    return task


@dataclass(frozen=True)
class QueueSnapshot:
    """One round of the queue screen's reads, on one pooled connection."""

    rows: list[TaskRow]
    counts: list[StatusCount]
    running: list[RunningTask]
    workers: list[WorkerSeen]
    recent: list[MinuteActivity]
    matching: int
    fleet: FleetHealth


async def queue_snapshot(conn: AsyncConnection, req: PageRequest, *, by_model: bool, minutes: int) -> QueueSnapshot:
    """The page first (what the operator looks at), then the panels."""
    rows = await page(conn, req)
    return QueueSnapshot(
        rows,
        await status_type_counts(conn, by_model),
        await running_tasks(conn),
        await workers(conn),
        await activity(conn, minutes),
        await count_matching(conn, req.filter),
        await fleet_health(conn),
    )


async def counts_and_running(conn: AsyncConnection, by_model: bool) -> tuple[list[StatusCount], list[RunningTask]]:
    """What a live batch re-reads: the counters and the running tasks (both small)."""
    return await status_type_counts(conn, by_model), await running_tasks(conn)
