"""What the screens hold of the database: the pool, the role's privileges, the health
state, and the two doors every screen goes through — `read()` (a db/ read on a pooled
async connection) and `write()` (a db/ change, sync, one transaction of its own, on a
short-lived connection in a thread, so the UI never waits on it).

Health: `state` is "connecting", "connected", "reconnecting" (the server went away or
is too slow: the screens keep their data and the header says how old it is) or
"unreachable: why" (the first connection failed). A successful read or write makes it
"connected" again, so recovery needs nothing but the cause going away.

Recovery does not wait on the pool. psycopg_pool retries a lost connection with an
uncapped exponential backoff (1, 2, 4 … 32 s and on), so after a server restart the
screens' reads kept timing out — the header said RECONNECTING 30–40 s after the live
source was back. So: once the session turns "reconnecting" it opens a fresh pool
itself, at once and then at most RECONNECT_CAP_S apart, and swaps it in for the failing
one; and whatever else reaches the database — the live source (re)connecting
(`live_service()` wires it), a write's own connection — calls `database_answered()`:
the session is "connected" at that moment (the header follows on its next 1 s sync)
and the fresh pool is opened right then. A read that failed on the replaced pool runs
again on the new one.

Replica: with a `read_dsn` that is not `dsn`, `read()` goes to that streaming replica
unless read_routing.py says the primary (the replica unreachable, too far behind, not
a replica, or an own write not replayed there yet: read-your-writes by WAL position,
taken after every `write()` and `awrite()`, and `wrote_elsewhere()` after the app's
writes on connections of their own). A failed read on the replica runs again on the
primary at once, and so does a replica read during which an own write was made (it may
show the state before it). A read that decides what a write will do — the scope of a
bulk action, what a confirmation says will change — goes to the primary:
`read_for_write()`. A write whose position cannot be read after its COMMIT is still
done: it is never reported as failed for that (the position is taken at the next
check). The health state above stays the primary's: replica reads never change it
(only `fresh_at`), and the replica's state is its own (`reads_shown()`, in the header).
Writes, `read_sync()` and the live source stay on the primary — the live source
because NOTIFY is not replicated: a replica's LISTEN hears nothing of the primary's.

`describe_failure()` turns any exception a screen's worker can meet into one line for
the operator — "permission denied for table task_counts", "relation "task_counts" does
not exist", "statement timeout (5000 ms)" — never a traceback, passwords masked.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from fsar_tui.config import Settings
from fsar_tui.db.connect import UNAVAILABLE_ERRORS, configure_pooler
from fsar_tui.db.replica import awrite_mark, write_mark
from fsar_tui.domain.backoff import backoff_delay
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import ConnectionFailed, FsarError, UsageError, first_line
from fsar_tui.read_routing import ReplicaReads

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from fsar_tui.db.governance import Privileges
    from fsar_tui.db.pooler import FsarAsyncConnection
    from fsar_tui.live.service import LiveService

T = TypeVar("T")
log = logging.getLogger(__name__)


async def _rollback_quietly(conn: FsarAsyncConnection) -> None:
    try:
        await conn.rollback()
    except psycopg.Error:
        pass  # the pool checks the connection when it comes back


OUTAGE_PROBE_S = 10.0  # how often an outage's cause is probed again with a direct connection
# Between two attempts to open a fresh pool while "reconnecting": capped backoff with full
# jitter (domain/backoff.py), the live sources' policy (live/reconnect.py).
RECONNECT_BASE_S = 0.2
RECONNECT_CAP_S = 5.0


# Errors that are the server's answer, not its absence: a statement or lock timeout.
ANSWERS = (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)


class NotConnected(FsarError):
    """A read or write before the pool is open (or after it closed)."""


def describe_failure(exc: BaseException, *, statement_timeout_ms: int | None = None) -> str:
    """One line saying what failed, in words."""
    if isinstance(exc, FsarError):
        return mask_dsn(first_line(exc)) if not exc.message else mask_dsn(exc.message.splitlines()[0])
    if isinstance(exc, psycopg.errors.QueryCanceled):
        limit = f" ({statement_timeout_ms} ms)" if statement_timeout_ms else ""
        return f"statement timeout{limit}: the query took too long (the server is slow or overloaded)"
    if isinstance(exc, PoolTimeout | psycopg.OperationalError):
        return f"database unreachable: {mask_dsn(first_line(exc))}"
    if isinstance(exc, psycopg.Error):
        return mask_dsn(first_line(exc))  # permission denied for table …, relation … does not exist
    return f"{type(exc).__name__}: {mask_dsn(first_line(exc))}"


def same_target(a: str, b: str) -> bool:
    """Whether two DSNs say the same server, database and user (then there is no replica)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        da, db = conninfo_to_dict(a), conninfo_to_dict(b)
    except psycopg.ProgrammingError:
        return a == b
    keys = ("host", "hostaddr", "port", "dbname", "user")
    return all(str(da.get(k) or "") == str(db.get(k) or "") for k in keys)


class Session:
    """The app's database session, shared by every screen (the app owns it)."""

    def __init__(self, dsn: str, settings: Settings) -> None:
        # Every connection this process opens to dsn (the pool, writes, the live sources)
        # follows the configured `pooler` setting; "auto" detects it (db/pooler.py).
        configure_pooler(dsn, settings.pooler)
        configure_pooler(settings.read_dsn, settings.pooler)
        self.dsn = dsn
        self.settings = settings
        self.pool: AsyncConnectionPool[FsarAsyncConnection] | None = None
        self.privileges: Privileges | None = None
        self.read_only = settings.read_only
        self.state = "connecting"
        self.fresh_at: float | None = None  # monotonic time of the last successful query
        self._outage: tuple[float, str] | None = None  # (when probed, why) — outage_cause()
        self._pool_failing = False  # a read on the pool failed as unavailable; none has worked since
        self._recovery: asyncio.Task | None = None  # _recover(), while the pool is failing
        self._attempt: asyncio.Future | None = None  # its attempt in flight, done once it ends
        self._wake: asyncio.Event | None = None  # database_answered(): try now, not after the backoff
        self._rng = random.Random()
        self.replica: ReplicaReads | None = None  # reads on read_dsn (read_routing.py), when it is another server
        if settings.read_dsn and not same_target(settings.read_dsn, dsn):
            self.replica = ReplicaReads(
                settings.read_dsn, statement_timeout_ms=settings.statement_timeout_ms, primary_read=self._read_primary
            )

    @property
    def ready(self) -> bool:
        return self.pool is not None

    @property
    def reachable(self) -> bool:
        return self.state == "connected"

    def can(self, power: str) -> bool:
        """'act', 'override', 'reveal', 'anonymize': the role has it (and, for actions, the
        session is not read-only)."""
        if self.privileges is None or (self.read_only and power != "reveal"):
            return False
        return bool(getattr(self.privileges, power))

    def adopt_privileges(self, fresh: Privileges) -> tuple[bool, str | None]:
        """The role's privileges as read again: (whether they changed, what to tell the
        operator). A role that lost its grants becomes read-only, one that got them back
        may act again — unless --read-only was asked for, which stays whatever the grants."""
        before, self.privileges = self.privileges, fresh
        note = None
        if not self.settings.read_only:
            if not fresh.act and not self.read_only:
                self.read_only, note = True, f"role {fresh.role} may only read now: actions are hidden"
            elif fresh.act and self.read_only:
                self.read_only, note = False, f"role {fresh.role} may act again"
        return fresh != before, note

    def live_service(self) -> LiveService:
        """The live source for this session's database (settings.live, settings.mqtt_url): a
        database source (notify, poll) that (re)connects tells the session at once."""
        from fsar_tui.live.service import LiveService

        return LiveService(
            self.dsn, mode=self.settings.live, mqtt_url=self.settings.mqtt_url, on_database=self.database_answered
        )

    def mark_reachable(self) -> None:
        """A query on the pool worked."""
        self.state = "connected"
        self.fresh_at = time.monotonic()
        self._pool_failing = False

    def mark_unreachable(self) -> None:
        if self.pool is not None:
            self.state = "reconnecting"
            self._pool_failing = True
            self._start_recovery()

    def database_answered(self) -> None:
        """A connection of its own reached the database (the live source connected, a write
        went through): "connected" now, and a failing pool is replaced now."""
        if self.pool is None:
            return  # the app's first connection (app.connect) is still to be made
        self.state = "connected"
        if self._pool_failing:
            self._start_recovery(now=True)

    def _start_recovery(self, *, now: bool = False) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop: the next read on one tries again
        if self._wake is None:
            self._wake = asyncio.Event()
        if now:
            self._next_attempt(loop)  # pending from now on: a read failing meanwhile waits for it
            self._wake.set()
        if self._recovery is None or self._recovery.done():
            self._recovery = loop.create_task(self._recover(), name="session-recovery")

    async def _recover(self) -> None:
        """While the pool is failing: open a fresh one (at once when woken) and swap it in."""
        assert self._wake is not None
        failures = 0
        while self.pool is not None and self._pool_failing:
            self._wake.clear()
            attempt = self._next_attempt(asyncio.get_running_loop())
            try:
                failing = await self._swap_in_fresh_pool()
            finally:
                attempt.set_result(None)  # reads waiting for it go on, whatever happened
            if failing is not None:
                await failing.close()  # reads waiting on it get PoolClosed, and run again on the fresh one
                return
            if self.pool is None or not self._pool_failing:
                return  # closed, or a read on the failing pool worked after all
            self.state = "reconnecting"  # if something said it answered, it is gone again
            failures += 1
            delay = backoff_delay(failures, self._rng, base=RECONNECT_BASE_S, cap=RECONNECT_CAP_S)
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _next_attempt(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """The future of the recovery's next (or current) attempt, done when it ends."""
        if self._attempt is None or self._attempt.done():
            self._attempt = loop.create_future()
        return self._attempt

    async def _swap_in_fresh_pool(self) -> AsyncConnectionPool[FsarAsyncConnection] | None:
        """A fresh pool in place of the failing one, which is returned (None: no pool opened,
        or the session closed meanwhile). Opened as the app opens its first (app.connect)."""
        from fsar_tui.db.connect import open_pool

        try:
            fresh = await open_pool(
                self.dsn, statement_timeout_ms=self.settings.statement_timeout_ms, read_only=self.settings.read_only
            )
        except (FsarError, psycopg.Error, OSError):
            return None
        failing, self.pool = self.pool, fresh
        if failing is None:  # closed meanwhile
            self.pool = None
            await fresh.close()
            return None
        self.state, self._pool_failing = "connected", False
        return failing

    async def _replaced(self, pool: AsyncConnectionPool[FsarAsyncConnection]) -> bool:
        """Whether the pool a read failed on is replaced by now: swapped already, or being
        swapped (the database answered elsewhere and a fresh pool is opening: wait for it)."""
        attempt = self._attempt
        if self.pool is pool and self.state == "connected" and attempt is not None and not attempt.done():
            await asyncio.wait({attempt})
        return self.pool is not None and self.pool is not pool

    def note(self, exc: BaseException) -> None:
        """Keep the health state true to a failure: only an unavailable server changes it.
        A statement timeout or lock timeout is an answer — the server is there, one query
        was too slow (a lock on one table): the screen that met it says so on its problem
        line, and the other screens, whose reads work, are not told "reconnecting"."""
        if isinstance(exc, ANSWERS):
            return
        if isinstance(exc, UNAVAILABLE_ERRORS):
            self.mark_unreachable()

    async def read(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """fn(conn, *args, **kwargs) from db/ on a pooled connection — the replica's when
        reads go there now, else the primary's. Raises what it meets (the screen's worker
        handler shows it); marks the state either way."""
        replica = self.replica
        if replica is not None and self.pool is not None:
            replica.start()
            pool = replica.pool_for_reads()
            if pool is not None:
                generation, lag = replica.generation, replica.lag_s
                try:
                    async with pool.connection() as conn:
                        result = await fn(conn, *args, **kwargs)
                except psycopg.errors.ReadOnlySqlTransaction:
                    return await self.awrite(fn, *args, **kwargs)  # a change that came through read()
                except BaseException as exc:
                    if not replica.failed(exc):
                        raise
                else:
                    if replica.generation == generation:
                        self.fresh_at = time.monotonic()
                        replica.read_done(True, lag)
                        return result
                    # An own write was made while this read ran on the replica: what it
                    # read may be from before it. Read again where the write is.
        result = await self._read_primary(fn, *args, **kwargs)
        if replica is not None:
            replica.read_done(False, None)
        return result

    async def read_for_write(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """read() on the primary whatever the replica: for a read that decides what a write
        does (a bulk action's scope), which a lagging replica would get wrong silently."""
        return await self._read_primary(fn, *args, **kwargs)

    def wrote_elsewhere(self) -> None:
        """The app wrote on a connection of its own (the audit pass, --ingest-live, the
        --reveal log row): reads go to the primary until the replica has replayed it (its
        position: the primary's at the next check, at or past it). From the event loop."""
        if self.replica is not None:
            self.replica.wrote(None)

    async def awrite(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """fn(conn, *args, **kwargs) — an async db/ change (the queue's actions) — on the
        primary's pool, committed; with a replica, its WAL position opens a
        read-your-writes window."""
        replica = self.replica
        if replica is None:
            return await self._read_primary(fn, *args, **kwargs)

        async def and_mark(conn: FsarAsyncConnection) -> tuple[T, int | None]:
            result = await fn(conn, *args, **kwargs)
            await conn.commit()
            try:
                return result, await awrite_mark(conn)  # after the COMMIT (db/replica.py)
            except psycopg.Error as exc:
                # Committed all the same: never said "NOT applied" for the mark (the
                # function refused by a managed service, …). The position is read at the
                # next check; reads stay on the primary until the replica passes it.
                await _rollback_quietly(conn)
                log.warning("write done, its WAL position not read (%s): read from the primary", type(exc).__name__)
                return result, None

        try:
            result, lsn = await self._read_primary(and_mark)
        except BaseException as exc:
            if self.outcome_unknown(exc):
                replica.wrote(None)
            raise
        replica.wrote(lsn)
        return result

    def reads_shown(self) -> tuple[str, str]:
        """Where reads come from and how stale they are, for the header ('' without a replica)."""
        if self.replica is None:
            return "", ""
        return self.replica.shown(self.settings.replica_stale_s)

    async def _read_primary(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """read() on the primary's pool: the health state follows what it meets."""
        pool = self.pool
        if pool is None:
            raise NotConnected("not connected to the database yet")
        try:
            async with pool.connection() as conn:
                result = await fn(conn, *args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, ANSWERS):
                if await self._replaced(pool):
                    return await self._read_primary(fn, *args, **kwargs)  # once more, on the fresh pool
            if isinstance(exc, PoolTimeout):
                # "couldn't get a connection after 5.00 sec" says nothing of why: ask libpq.
                self.mark_unreachable()
                raise ConnectionFailed(f"database unreachable: {await self.outage_cause()}") from exc
            self.note(exc)
            raise
        if self.pool is pool:
            self.mark_reachable()
        else:  # a pool being replaced answered after all: the session is connected, the swap goes on
            self.state, self.fresh_at = "connected", time.monotonic()
        return result

    async def outage_cause(self) -> str:
        """Why no connection can be had, in words ("connection refused (is the server
        running…)", "timed out after 5s"), from one direct attempt — at most one every
        OUTAGE_PROBE_S, however many screens ask; the pool keeps reconnecting meanwhile."""
        from fsar_tui.db.connect import aconnect

        now = time.monotonic()
        if self._outage is not None and now - self._outage[0] < OUTAGE_PROBE_S:
            return self._outage[1]
        self._outage = (now, "no connection within the pool's wait (probing why…)")
        try:
            conn = await aconnect(self.dsn)
        except ConnectionFailed as failed:
            cause = failed.message.split(": ", 1)[-1]
        except Exception as exc:  # the probe must not replace the failure it explains
            cause = first_line(exc) or type(exc).__name__
        else:
            await conn.close()
            cause = "the pool had no free connection in time (the server answers a direct connection)"
        self._outage = (time.monotonic(), mask_dsn(cause))
        return self._outage[1]

    async def read_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(conn, *args, **kwargs) — a sync read from db/ or services/ (e.g. the log's
        integrity check) — on a short-lived read-only connection in a thread."""
        return await self._in_thread(True, fn, args, kwargs)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(conn, *args, **kwargs) — a db/ write path, sync, one transaction of its own — on a
        short-lived autocommit connection in a thread. Refused in read-only mode (--read-only,
        `fsar-tui serve` without --allow-writes): the screens hide their write keys, and this
        is the layer that holds if one forgets."""
        if self.settings.read_only:
            raise UsageError("read-only: nothing was written (--read-only, or a browser without --allow-writes)")
        return await self._in_thread(False, fn, args, kwargs)

    async def _in_thread(self, read_only: bool, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        from fsar_tui.db.connect import connect

        marks = self.replica is not None and not read_only

        def call() -> tuple[T, int | None]:
            # A read runs in a READ ONLY transaction (psycopg's read_only applies to the
            # transactions it begins: not to autocommit statements, which wrote freely).
            with connect(
                self.dsn, autocommit=not read_only, statement_timeout_ms=self.settings.statement_timeout_ms
            ) as conn:
                conn.read_only = read_only
                result = fn(conn, *args, **kwargs)
                if not marks:
                    return result, None
                try:  # autocommit: fn's transaction is committed by now (db/replica.py)
                    return result, write_mark(conn)
                except psycopg.Error as exc:  # done, position unknown: the next check reads one past it
                    log.warning("write done, its WAL position not read (%s): read from the primary", type(exc).__name__)
                    return result, None

        try:
            result, lsn = await asyncio.to_thread(call)
        except ConnectionFailed:
            self.mark_unreachable()
            raise
        except BaseException as exc:
            if marks and self.replica is not None and self.outcome_unknown(exc):
                self.replica.wrote(None)
            self.note(exc)
            raise
        if marks and self.replica is not None:
            self.replica.wrote(lsn)
        self.fresh_at = time.monotonic()
        self.database_answered()
        return result

    @staticmethod
    def outcome_unknown(exc: BaseException) -> bool:
        """Whether a failed write may have applied all the same: the connection broke
        after it was open (the COMMIT's reply, not the COMMIT, may be what was lost). A
        connection that never opened, a refusal, a timeout or a check failure: it did not."""
        if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
            return False
        return isinstance(exc, psycopg.OperationalError)

    def describe(self, exc: BaseException) -> str:
        return describe_failure(exc, statement_timeout_ms=self.settings.statement_timeout_ms)

    async def close(self) -> None:
        if self.replica is not None:
            await self.replica.close()
        recovery, self._recovery = self._recovery, None
        if recovery is not None:
            recovery.cancel()
            await asyncio.gather(recovery, return_exceptions=True)
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()
