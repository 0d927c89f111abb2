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
