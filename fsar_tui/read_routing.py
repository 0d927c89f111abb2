"""Reads on a streaming replica (`read_dsn`), and when they go to the primary instead.

The session (session.py) asks `pool_for_reads()` before each read: the replica's pool,
or None — the primary then, for as long as

- the replica is unreachable (a read on it failed as unavailable, or the check below
  could not reach it): "reads: primary (replica unreachable)";
- the read DSN has not answered yet, or is not a replica (not in recovery), or is not a
  replica OF this database: its system identifier (pg_control_system()) or database
  name differs from the primary's — another database on the replica, another cluster's
  standby. A role refused pg_control_system() cannot be checked: reads stay on the
  primary and the header says so (db/replica.py `identity`);
- read-your-writes: an own write (`wrote()`, after each session.write / awrite, and the
  app's own writes on connections of their own: the audit pass, --ingest-live, the
  --reveal log row) whose WAL position the replica has not replayed yet — so an
  operator's action never seems not to have happened. The position is the primary's,
  read right after the COMMIT (db/replica.py); a write whose outcome is unknown (the
  connection broke), or whose position could not be read after its COMMIT (the
  function refused), pends too, with the primary's position as of the next check,
  which is at or past it. With the primary not answering, a pending write no longer
  keeps reads off the replica (the one server left): the header says the data may not
  show it;
- the replica is further behind than `max_lag_s` (MAX_LAG_S): its data would mislead
  more than the primary's extra reads cost.

The check (`check()`: a task every CHECK_EVERY_S while the session is open — every
STEADY_CHECK_EVERY_S while nothing needs watching: reads on the replica, no own write
pending, lag under a second (next_check_in) — never one per read): the primary's flushed
position first, through the session's own read door (`primary_read`, so it counts for
the primary's health like any read), then the replica's replay position on a connection
of its own — so an unreachable replica is noticed and its return seen at once, without
the read pool's reconnect backoff, which grows without bound (session.py). A replica
that answers again gets a fresh pool. Lag is worked out in domain/replica_lag.py.

A read on the replica that began before an own write and returns after it may show the
state before it: `generation` counts the writes, and the session reads again on the
primary when it moved during a replica read (session.read).

Closing never waits on a frozen replica more than CLOSE_WAIT_S.

Limits: one replica behind `read_dsn` (the replay position checked must be the one the
reads meet: not a load balancer over several), and clocks in sync between primary and
replica (the age of the last replayed transaction is the replica's clock minus the
primary's commit time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import PoolClosed, PoolTimeout

from fsar_tui.db.replica import ReplayPosition, awrite_mark, identity, primary_lsn, replay_position
from fsar_tui.domain.replica_lag import MAX_LAG_S, lag_seconds, primary_reason, reads_label, same_database, stale_note
from fsar_tui.domain.sanitize import first_line
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import FsarError

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from fsar_tui.db.pooler import FsarAsyncConnection

CHECK_EVERY_S = 1.0
# While nothing needs watching (reads on the replica, no own write pending, lag under a
# second) the check runs this far apart: each check is a query on the primary, and an idle
# panel's budget is one query a second in all (issue 18, point 4).
STEADY_CHECK_EVERY_S = 5.0


def next_check_in(*, reads_on_primary: bool, write_pending: bool, lag_s: float | None) -> float:
    """Seconds to the next check: every CHECK_EVERY_S while a write is pending, reads are on
    the primary (down, behind, not yet known) or the replica lags; else STEADY_CHECK_EVERY_S."""
    steady = not reads_on_primary and not write_pending and lag_s is not None and lag_s < 1.0
    return STEADY_CHECK_EVERY_S if steady else CHECK_EVERY_S


CHECK_TIMEOUT_S = 15.0  # a replica that stops answering mid-check (keepalives end it in ~11 s)
CLOSE_WAIT_S = 1.0  # closing the replica's pool and probe: a frozen replica is not waited for
log = logging.getLogger(__name__)


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
        self._primary_identity: tuple[str, str] | None = None  # (system identifier, database)
        self._replica_identity: tuple[str, str] | None = None  # the probe connection's
        self.generation = 0  # own writes so far: a replica read spanning one is read again
        self.read_lag: float | None = None  # the lag as of the last read, None: it was the primary's

    # -- what the session asks ------------------------------------------------------------

    @property
    def reason(self) -> str | None:
        """Why reads go to the primary now; None: to the replica."""
        position = self.position
        return primary_reason(
            down=self.down is not None,
            why_down=self.down or "",
            not_same=same_database(self._primary_identity, self._replica_identity),
            primary_answered=self._primary_answered,
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

    @property
    def write_pending(self) -> bool:
        return self.pending is not None or self._pending_unknown

    def shown(self, stale_s: float) -> tuple[str, str]:
        """The header's words: where reads come from, and the stale-data note ('' if none).
        The note is the age of the data the last read got (the replica's lag then), not
        the replica's lag now: a read that went to the primary since clears it, and data
        read from a replica 75 s behind stays marked after reads moved to the primary."""
        reason = self.reason
        paused = self.position is not None and self.position.paused
        pending = reason is None and self.write_pending
        label = reads_label(reason, self.lag_s, paused=paused, pending=pending)
        return label, stale_note(None, self.read_lag, stale_s)

    def read_done(self, on_replica: bool, lag_s: float | None) -> None:
        """A read returned: from the replica (`lag_s`: its lag when the read began) or the primary."""
        self.read_lag = lag_s if on_replica else None

    def wrote(self, lsn: int | None) -> None:
        """An own write reached `lsn` on the primary (None: it may have, position unknown).
        Reads go to the primary from now until a check sees the replica past it."""
        self.generation += 1
        if lsn is None:
            self._pending_unknown = True
        else:
            self._pend(lsn)

    def _pend(self, lsn: int) -> None:
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
            self._mark_down(cause(exc))
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
            delay = next_check_in(
                reads_on_primary=self.reason is not None, write_pending=self.write_pending, lag_s=self.lag_s
            )
            await asyncio.sleep(self.check_every_s if delay == CHECK_EVERY_S else max(self.check_every_s, delay))

    async def check(self) -> None:
        """Where the primary is, where the replica is, and so where reads go."""
        unknown_write = False  # an own write whose position is the primary's flushed one below
        if self._pending_unknown:
            self._pending_unknown = False  # cleared first: a write failing meanwhile sets it again
            try:
                self._pend(await self._primary_read(awrite_mark))
            except psycopg.errors.InsufficientPrivilege:
                # pg_current_wal_insert_lsn() refused (some managed services): the flushed
                # position below, read after the write returned, is at or past it (unless
                # synchronous_commit = off: README, Read replicas).
                unknown_write = True
            except Exception:
                self._pending_unknown = True
        asked = time.monotonic()
        try:
            primary: int | None = await self._primary_read(primary_lsn)
        except Exception:
            primary = None  # the primary's health says why; the lag keeps its time bounds
        self._primary_answered = primary is not None
        if unknown_write:
            if primary is None:
                self._pending_unknown = True
            else:
                self._pend(primary)
        if primary is not None and self._primary_identity is None:
            try:
                self._primary_identity = await self._primary_read(identity)
            except Exception:
                pass  # checked again at the next check; reads stay on the primary meanwhile
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                position = await self._replay_position()
                if self.pool is None:
                    self.pool = await self._open_pool()
        except (FsarError, psycopg.Error, OSError, TimeoutError) as exc:
            self._mark_down(cause(exc))
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
            self._replica_identity = None
            self._probe = conn = await aconnect(self.dsn, statement_timeout_ms=self.statement_timeout_ms)
        try:
            if self._replica_identity is None:  # each new connection: a DNS name may now say another server
                self._replica_identity = await identity(conn)
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
            task = asyncio.get_running_loop().create_task(pool.close(timeout=CLOSE_WAIT_S))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Stop the checks and close the pool and probe, waiting CLOSE_WAIT_S at most for
        each: a frozen replica (SIGSTOP, a dead link without RST) never holds up a quit."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await _within(asyncio.gather(task, return_exceptions=True))
        probe, self._probe = self._probe, None
        if probe is not None:
            await _within(probe.close())
        pool, self.pool = self.pool, None
        if pool is not None:
            await _within(pool.close(timeout=CLOSE_WAIT_S))
        if self._closing:
            await _within(asyncio.gather(*self._closing, return_exceptions=True))


async def _within(aw: Awaitable[Any]) -> None:
    """Await `aw` for CLOSE_WAIT_S at most; whatever it raises or leaves undone is let go."""
    try:
        async with asyncio.timeout(CLOSE_WAIT_S):
            await aw
    except (TimeoutError, Exception) as exc:
        log.info("replica close: %s", type(exc).__name__)


def cause(exc: BaseException) -> str:
    """Why the replica cannot be read, in a few words, masked: 'password authentication
    failed for user "x"', 'database "y" does not exist' — not 'connection failed' for all."""
    if isinstance(exc, FsarError) and exc.message:
        text = exc.message.splitlines()[0]
        text = text.split(": ", 1)[-1] if text.startswith("cannot ") else text
    else:
        text = first_line(str(exc), type(exc).__name__)
    return mask_dsn(text)
