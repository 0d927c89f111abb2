"""WAL positions of a primary and its streaming replica: how far the replica has replayed,
where the primary is, and where an own write ended (the read-your-writes mark).

LSNs come back as integers (bytes into the WAL: `lsn - '0/0'` is numeric), the pure
arithmetic on them is fsar_tui/domain/replica_lag.py.

The write mark is the primary's insert position, read right after the write's COMMIT.
It is server-wide and only grows, so it does not matter which server connection reads
it, as long as it is one of the same server and comes after the COMMIT: behind PgBouncer
in transaction mode the statement after the COMMIT may land on another server connection
of the pool, and the position it reads is still at or past the COMMIT's record. (Read
before the COMMIT, inside the write's transaction, it would be too early: the commit
record is inserted by the COMMIT itself.) It is the insert position, not the flushed
one: with `synchronous_commit = off` the COMMIT returns before its record is flushed.

Identity (`identity`): the cluster's system identifier (`pg_control_system()`, the same
on a primary and every physical replica made from it) and the database's name — what
tells a replica OF this database from another database or another cluster's standby.
A role that may not call `pg_control_system()` (EXECUTE revoked) gets '' for it, which
the routing takes as "cannot be checked": reads then stay on the primary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from fsar_tui.db.rows import one
from fsar_tui.domain.replica_lag import record_end

REPLAY_SQL = """
    SELECT pg_is_in_recovery(),
           (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::numeric,
           extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8,
           CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END
"""

# What a replica can have: the primary's flushed WAL (a walsender sends nothing further).
PRIMARY_SQL = "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::numeric"

WRITE_MARK_SQL = """
    SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::numeric,
           current_setting('wal_block_size')::int,
           pg_size_bytes(current_setting('wal_segment_size'))
"""


IDENTITY_SQL = "SELECT (SELECT system_identifier FROM pg_control_system())::text, current_database()"
DATABASE_SQL = "SELECT current_database()"


@dataclass(frozen=True)
class ReplayPosition:
    """A replica's answer: whether it is one (in recovery), how far it has replayed, how
    old its last replayed transaction is (the replica's clock minus the primary's commit
    time: loopback or NTP-synced clocks assumed), and whether replay is paused."""

    in_recovery: bool
    replay_lsn: int | None
    replay_age_s: float | None
    paused: bool


async def replay_position(conn: psycopg.AsyncConnection) -> ReplayPosition:
    cur = await conn.execute(REPLAY_SQL)
    in_recovery, lsn, age, paused = one(await cur.fetchone())
    return ReplayPosition(bool(in_recovery), None if lsn is None else int(lsn), age, bool(paused))


async def primary_lsn(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute(PRIMARY_SQL)
    return int(one(await cur.fetchone())[0])


def _mark(row: tuple[Any, ...]) -> int:
    lsn, block_size, segment_size = row
    return record_end(int(lsn), block_size=int(block_size), segment_size=int(segment_size))


def write_mark(conn: psycopg.Connection) -> int:
    """The position an own write's COMMIT reached: call right after it (see the docstring)."""
    return _mark(one(conn.execute(WRITE_MARK_SQL).fetchone()))


async def awrite_mark(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute(WRITE_MARK_SQL)
    return _mark(one(await cur.fetchone()))


async def identity(conn: psycopg.AsyncConnection) -> tuple[str, str]:
    """(system identifier, database name); ('', name) when pg_control_system() is refused."""
    try:
        async with conn.transaction():  # a refusal rolls back to here, the connection stays usable
            cur = await conn.execute(IDENTITY_SQL)
            system, name = one(await cur.fetchone())
        return str(system), str(name)
    except psycopg.errors.InsufficientPrivilege:
        cur = await conn.execute(DATABASE_SQL)
        return "", str(one(await cur.fetchone())[0])


def sync_identity(conn: psycopg.Connection) -> tuple[str, str]:
    try:
        with conn.transaction():
            system, name = one(conn.execute(IDENTITY_SQL).fetchone())
        return str(system), str(name)
    except psycopg.errors.InsufficientPrivilege:
        return "", str(one(conn.execute(DATABASE_SQL).fetchone())[0])


def sync_primary_lsn(conn: psycopg.Connection) -> int:
    return int(one(conn.execute(PRIMARY_SQL).fetchone())[0])


def sync_replay_position(conn: psycopg.Connection) -> ReplayPosition:
    in_recovery, lsn, age, paused = one(conn.execute(REPLAY_SQL).fetchone())
    return ReplayPosition(bool(in_recovery), None if lsn is None else int(lsn), age, bool(paused))
