"""Queries the live pipeline needs: LISTEN/NOTIFY, polling task_events, resync snapshots."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from fsar_tui.db.rows import one

POLL_SQL = """
SELECT e.id, e.task_id, t.task_type, t.ai_model, e.from_status, e.to_status, e.attempt, e.at
FROM task_events e
JOIN execution_tasks t ON t.id = e.task_id
WHERE e.id > %(after)s
ORDER BY e.id
LIMIT %(limit)s
"""

CHANNEL = "fsar_events"

COUNTS_SQL = "SELECT status, task_type, count(*) FROM execution_tasks GROUP BY 1, 2"


async def events_after(conn: AsyncConnection, after: int, limit: int = 5000) -> list[TupleRow]:
    cur = await conn.execute(POLL_SQL, {"after": after, "limit": limit})
    return await cur.fetchall()


async def latest_event_id(conn: AsyncConnection) -> int:
    cur = await conn.execute("SELECT coalesce(max(id), 0) FROM task_events")
    latest: int = one(await cur.fetchone())[0]
    return latest


async def status_counts(conn: AsyncConnection) -> list[tuple[str, str, int]]:
    cur = await conn.execute(COUNTS_SQL)
    return await cur.fetchall()


async def listen(conn: AsyncConnection) -> None:
    await conn.execute(f"LISTEN {CHANNEL}")


async def notify(conn: AsyncConnection, payload: str) -> None:
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
