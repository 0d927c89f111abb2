"""Reads on a streaming replica (`read_dsn`), and when they go to the primary instead.

The session (session.py) asks `pool_for_reads()` before each read: the replica's pool,
or None — the primary then, for as long as

- the replica is unreachable (a read on it failed as unavailable, or the check below
  could not reach it): "reads: primary (replica unreachable)";
- the read DSN has not answered yet, or is not a replica (not in recovery);
- read-your-writes: an own write (`wrote()`, after each session.write / awrite) whose
  WAL position the replica has not replayed yet — so an operator's action never seems
  not to have happened. The position is the primary's, read right after the COMMIT
  (db/replica.py); a write whose outcome is unknown (the connection broke) pends too,
  with the primary's position as of the next check, which is at or past it;
- the replica is further behind than `max_lag_s` (MAX_LAG_S): its data would mislead
  more than the primary's extra reads cost.

The check (`check()`: a task every CHECK_EVERY_S while the session is open, never one
per read): the primary's flushed position first, through the session's own read door
(`primary_read`, so it counts for the primary's health like any read), then the
replica's replay position on a connection of its own — so an unreachable replica is
noticed and its return seen at once, without the read pool's reconnect backoff, which
grows without bound (session.py). A replica that answers again gets a fresh pool. Lag
is worked out in domain/replica_lag.py.

Limits: one replica behind `read_dsn` (the replay position checked must be the one the
reads meet: not a load balancer over several), and clocks in sync between primary and
replica (the age of the last replayed transaction is the replica's clock minus the
primary's commit time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import PoolClosed, PoolTimeout

from fsar_tui.db.replica import ReplayPosition, awrite_mark, primary_lsn, replay_position
from fsar_tui.domain.replica_lag import lag_seconds, primary_reason, reads_label, stale_note
from fsar_tui.domain.sanitize import first_line
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import FsarError

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from fsar_tui.db.pooler import FsarAsyncConnection

CHECK_EVERY_S = 1.0
MAX_LAG_S = 60.0  # beyond it reads go to the primary: twice PostgreSQL's max_standby_streaming_delay
CHECK_TIMEOUT_S = 15.0  # a replica that stops answering mid-check (keepalives end it in ~11 s)


class ReplicaReads:
    """The replica side of a session: its pool, its state, the check."""

    def __init__(self, dsn: str, *, statement_timeout_ms: int, primary_read: Callable[..., Awaitable[Any]]) -> None:
        self.dsn = dsn
        self.statement_timeout_ms = statement_timeout_ms
        self.max_lag_s = MAX_LAG_S
        self.check_every_s = CHECK_EVERY_S
        self._primary_read = primary_read
        self.pool: AsyncConnectionPool[FsarAsyncConnection] | None = None
        self.down: str | None = None  # why the replica is unreachable, while it is
        self.position: ReplayPosition | None = None  # its last answer
        self.lag_s: float | None = None
        self.pending: int | None = None  # an own write's WAL position, not replayed yet
        self._pending_unknown = False  # an own write's position is to be read at the next check
        self._caught_up_at: float | None = None  # monotonic: the primary's position then was replayed
        self._primary_answered = True  # at the last check
        self._probe: FsarAsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # -- what the session asks ------------------------------------------------------------

    @property
    def reason(self) -> str | None:
        """Why reads go to the primary now; None: to the replica."""
        position = self.position
        return primary_reason(
            down=self.down is not None,
            in_recovery=None if position is None else position.in_recovery,
            lag_s=self.lag_s,
            # The lag is an upper bound; while the primary does not answer it only grows
            # (nothing new is replayed) and the primary is no better place to read.
            max_lag_s=self.max_lag_s if self._primary_answered else float("inf"),
            pending=self.pending is not None or self._pending_unknown,
        )

    def pool_for_reads(self) -> AsyncConnectionPool[FsarAsyncConnection] | None:
        if self.pool is None or self.reason is not None:
            return None
        return self.pool

    def shown(self, stale_s: float) -> tuple[str, str]:
        """The header's words: where reads come from, and the stale-data note ('' if none)."""
        reason = self.reason
        paused = self.position is not None and self.position.paused
        return reads_label(reason, self.lag_s, paused=paused), stale_note(reason, self.lag_s, stale_s)

    def wrote(self, lsn: int | None) -> None:
        """An own write reached `lsn` on the primary (None: it may have, position unknown).
        Reads go to the primary from now until a check sees the replica past it."""
        if lsn is None:
            self._pending_unknown = True
        else:
            self.pending = lsn if self.pending is None else max(self.pending, lsn)

    def failed(self, exc: BaseException) -> bool:
        """A read on the replica raised `exc`: whether to run it on the primary instead.
        Unavailable (connection lost, refused, no connection in time): the replica is
        unreachable until the check reaches it again. A conflict with recovery (the
        replica cancelled the read to go on replaying, 40001): this read only. A statement
        or lock timeout is an answer, said by the screen as it would be from the primary."""
        if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
            return False
        if isinstance(exc, psycopg.errors.SerializationFailure):
            return True
        if isinstance(exc, psycopg.OperationalError | PoolTimeout | PoolClosed):
            self._mark_down(f"{type(exc).__name__}: {first_line(str(exc), 'no answer')}")
            return True
        return False

    # -- the check ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the check from now on (idempotent; from the event loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="replica-check")

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # a bug in one check must not end the checks
                self._mark_down(f"check failed: {type(exc).__name__}")
            await asyncio.sleep(self.check_every_s)

    async def check(self) -> None:
        """Where the primary is, where the replica is, and so where reads go."""
        if self._pending_unknown:
            self._pending_unknown = False  # cleared first: a write failing meanwhile sets it again
            try:
                self.wrote(await self._primary_read(awrite_mark))
            except Exception:
                self._pending_unknown = True
        asked = time.monotonic()
        try:
            primary: int | None = await self._primary_read(primary_lsn)
        except Exception:
            primary = None  # the primary's health says why; the lag keeps its time bounds
        self._primary_answered = primary is not None
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                position = await self._replay_position()
                if self.pool is None:
                    self.pool = await self._open_pool()
        except (FsarError, psycopg.Error, OSError, TimeoutError) as exc:
            self._mark_down(mask_dsn(first_line(str(exc), type(exc).__name__)))
            return
        self.down = None
        self.position = position
        replayed = position.replay_lsn
        if replayed is not None and self.pending is not None and replayed >= self.pending:
            self.pending = None
        if replayed is not None and primary is not None and replayed >= primary:
            self._caught_up_at = asked
        since = None if self._caught_up_at is None else time.monotonic() - self._caught_up_at
        self.lag_s = lag_seconds(
            primary_lsn=primary, replay_lsn=replayed, replay_age_s=position.replay_age_s, since_caught_up_s=since
        )

    async def _replay_position(self) -> ReplayPosition:
        from fsar_tui.db.connect import aconnect

        conn = self._probe
        if conn is None or conn.closed:
            self._probe = conn = await aconnect(self.dsn, statement_timeout_ms=self.statement_timeout_ms)
        try:
            return await replay_position(conn)
        except BaseException:
            self._probe = None
            await conn.close()
            raise

    async def _open_pool(self) -> AsyncConnectionPool[FsarAsyncConnection]:
        from fsar_tui.db.connect import open_pool

        # Read-only in Postgres too: a write that reached it by mistake is refused by the
        # replica anyway, and said so, rather than the replica being mistaken for a primary.
        return await open_pool(self.dsn, statement_timeout_ms=self.statement_timeout_ms, read_only=True)

    def _mark_down(self, why: str) -> None:
        self.down = why
        pool, self.pool = self.pool, None
        if pool is not None:  # reads waiting on it get PoolClosed, and run on the primary
            task = asyncio.get_running_loop().create_task(pool.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        probe, self._probe = self._probe, None
        if probe is not None:
            await probe.close()
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
