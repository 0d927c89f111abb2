"""The operator action log (operator_actions, revisions 0009 and 0019): the rows with the
fields their hash covers for `fsar-tui log verify` and `security-audit`, the head and the
encoding record the database keeps, who last changed a target, and filtered listings for
`log list` and screen 4.

The client names itself only as `claimed_os_user` (whatever $LOGNAME/$USER say): the
chain trigger of revision 0019 sets `actor` to the authenticated role (session_user).
Since revision 0020 the fsar roles write the log only through the SECURITY DEFINER
functions that make the change (db/action_functions.py, db/governance_functions.py);
`append_sync` is for the schema owner's own tools and tests.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from fsar_tui.db.rows import one
from fsar_tui.domain.action_chain import LogRow

APPEND_SQL = (
    "INSERT INTO operator_actions (claimed_os_user, action, target, reason, before, after) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
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
    """One row of the log, in the caller's transaction (so it commits with the change).
    `actor` is the OS user the client claims (claimed_os_user); the database sets actor."""
    conn.execute(APPEND_SQL, _params(actor, action, target, reason, before, after))


# The fields the hash covers, jsonb as the server renders it (the hash input's text).
CHAIN_SQL = """
    SELECT seq, prev_hash, hash, at, actor, claimed_os_user, db_role, action, target, reason,
           before::text, after::text, legacy_hash
    FROM operator_actions ORDER BY seq"""


def chain_rows(conn: Connection) -> Generator[LogRow, None, None]:
    """Every row in seq order, through a server-side cursor (the log can be long) in a
    transaction or savepoint of its own: close() the generator when stopping early."""
    with conn.transaction(), conn.cursor(name="fsar_log_verify") as cur:
        cur.itersize = 5000
        cur.execute(CHAIN_SQL)
        for row in cur:
            yield LogRow(*row)


def has_head_table(conn: Connection) -> bool:
    present: bool = one(conn.execute("SELECT to_regclass('public.operator_log_head') IS NOT NULL").fetchone())[0]
    return present


def head(conn: Connection) -> tuple[int, str] | None:
    """(seq, hash) the chain trigger last wrote to operator_log_head; None if the row is gone."""
    row = conn.execute("SELECT seq, hash FROM operator_log_head").fetchone()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class Encoding:
    """Where an encoding of the chain starts (operator_log_encodings, written by 0019)."""

    encoding: int
    first_seq: int
    rechained_upto: int
    legacy_head_hash: str | None
    old_chain_broken_at: int | None
    at: datetime


def encodings(conn: Connection) -> list[Encoding]:
    cur = conn.cursor(row_factory=class_row(Encoding))
    return cur.execute(
        "SELECT encoding, first_seq, rechained_upto, legacy_head_hash, old_chain_broken_at, at "
        "FROM operator_log_encodings ORDER BY encoding"
    ).fetchall()


def legacy_hash_at(conn: Connection, seq: int) -> str | None:
    row = conn.execute("SELECT legacy_hash FROM operator_actions WHERE seq = %s", (seq,)).fetchone()
    return row[0] if row else None


def last_change(conn: Connection, target: str) -> tuple[str, str, datetime] | None:
    """(who, action, at) of the newest log row about `target`: who is the authenticated
    role, with the OS user the client claimed beside it when there is one."""
    row = conn.execute(
        "SELECT actor, claimed_os_user, action, at FROM operator_actions WHERE target = %s ORDER BY seq DESC LIMIT 1",
        (target,),
    ).fetchone()
    if row is None:
        return None
    actor, claimed, action, at = row
    return describe_actor(actor, claimed), action, at


def describe_actor(actor: str, claimed: str | None) -> str:
    return f"{actor} (OS user {claimed}, unverified)" if claimed and claimed != actor else actor


def database_verdict_sync(conn: Connection) -> int | None:
    """The database's own check: the first broken seq, or None.

    One statement over the whole log whose time grows with it (~0.7 ms a row here: 67 s
    for 100,000 rows), so it runs without the statement timeout — but with the statement
    timeout in force as its lock_timeout: it never waits for a lock on the log longer than
    any other statement would (a session holding the log locked fails it in that time,
    "lock timeout"). Both settings are back as they were afterwards."""
    with conn.transaction():
        before = one(
            conn.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')").fetchone()
        )
        conn.execute(
            "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', '0', true)", (before[0],)
        )
        broken_at: int | None = one(conn.execute("SELECT fsar_operator_actions_verify()").fetchone())[0]
        conn.execute(
            "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)", tuple(before)
        )
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
    claimed_os_user: str | None = None  # what the client said of itself: not authenticated


LIST_SQL = """
    SELECT seq, at, actor, db_role, action, target, reason, claimed_os_user FROM operator_actions
    WHERE (%(actor)s::text IS NULL OR actor = %(actor)s OR claimed_os_user = %(actor)s)
      AND (%(action)s::text IS NULL OR action = %(action)s)
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
