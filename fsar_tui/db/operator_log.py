"""The operator action log (operator_actions, revision 0009): the one insert every change
makes (`append` / `append_sync`, in the caller's transaction), the rows with their
canonical text for `fsar-tui log verify`, and filtered listings for `log list`.

CANONICAL_SQL must render a row exactly as the chain trigger of revision 0009 hashed
it; tests check that this module's verification agrees with the database's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from fsar_tui.db.rows import one
from fsar_tui.domain.action_chain import ChainRow

CANONICAL_SQL = """concat_ws('|', seq, extract(epoch FROM at), actor, db_role, action, target, coalesce(reason, ''),
                             coalesce(before::text, 'null'), coalesce(after::text, 'null'))"""


APPEND_SQL = (
    "INSERT INTO operator_actions (actor, action, target, reason, before, after) VALUES (%s, %s, %s, %s, %s, %s)"
)


def _params(actor: str, action: str, target: str, reason: str | None, before: Any, after: Any) -> tuple[Any, ...]:
    return (
        actor,
        action,
        target,
        reason,
        None if before is None else Jsonb(before),
        None if after is None else Jsonb(after),
    )


def append_sync(
    conn: Connection, *, actor: str, action: str, target: str, reason: str | None, before: Any = None, after: Any = None
) -> None:
    """One row of the log, in the caller's transaction (so it commits with the change)."""
    conn.execute(APPEND_SQL, _params(actor, action, target, reason, before, after))


async def append(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    target: str,
    reason: str | None,
    before: Any = None,
    after: Any = None,
) -> None:
    """append_sync for the app's async connections."""
    await conn.execute(APPEND_SQL, _params(actor, action, target, reason, before, after))


def chain_rows(conn: Connection) -> Iterator[ChainRow]:
    with conn.cursor(name="fsar_log_verify") as cur:  # server-side: the log can be long
        cur.itersize = 5000
        cur.execute(f"SELECT seq, prev_hash, hash, {CANONICAL_SQL} FROM operator_actions ORDER BY seq")
        for seq, prev_hash, hash_, canonical in cur:
            yield ChainRow(seq, prev_hash, hash_, canonical)


def database_verdict_sync(conn: Connection) -> int | None:
    """The database's own check: the first broken seq, or None."""
    broken_at: int | None = one(conn.execute("SELECT fsar_operator_actions_verify()").fetchone())[0]
    return broken_at


def database_oid(conn: Connection) -> int:
    """With the server's address, which log this is (to key anchors): a database dropped
    and recreated under the same name gets another oid."""
    oid: int = one(conn.execute("SELECT oid::bigint FROM pg_database WHERE datname = current_database()").fetchone())[0]
    return oid


@dataclass(frozen=True)
class LoggedAction:
    """One row of the log as `log list` and screen 4 show it."""

    seq: int
    at: datetime
    actor: str
    db_role: str
    action: str
    target: str
    reason: str | None


LIST_SQL = """
    SELECT seq, at, actor, db_role, action, target, reason FROM operator_actions
    WHERE (%(actor)s::text IS NULL OR actor = %(actor)s) AND (%(action)s::text IS NULL OR action = %(action)s)
      AND (%(target)s::text IS NULL OR target LIKE %(target)s || '%%')
      AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
    ORDER BY seq DESC LIMIT %(limit)s"""


def _list_params(
    actor: str | None, action: str | None, target: str | None, since: datetime | None, limit: int
) -> dict[str, Any]:
    return {"actor": actor, "action": action, "target": target, "since": since, "limit": limit}


def list_actions_sync(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[LoggedAction]:
    """The log, newest first."""
    cur = conn.cursor(row_factory=class_row(LoggedAction))
    return cur.execute(LIST_SQL, _list_params(actor, action, target, since, limit)).fetchall()


async def list_actions(
    conn: AsyncConnection,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[LoggedAction]:
    cur = conn.cursor(row_factory=class_row(LoggedAction))
    return await (await cur.execute(LIST_SQL, _list_params(actor, action, target, since, limit))).fetchall()


async def database_verdict(conn: AsyncConnection) -> int | None:
    cur = await conn.execute("SELECT fsar_operator_actions_verify()")
    broken_at: int | None = one(await cur.fetchone())[0]
    return broken_at
