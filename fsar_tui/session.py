"""What the screens hold of the database: the pool, the role's privileges, the health
state, and the two doors every screen goes through — `read()` (a db/ read on a pooled
async connection) and `write()` (a db/ change, sync, one transaction of its own, on a
short-lived connection in a thread, so the UI never waits on it).

Health: `state` is "connecting", "connected", "reconnecting" (the server went away or
is too slow: the screens keep their data and the header says how old it is) or
"unreachable: why" (the first connection failed). A successful read or write makes it
"connected" again, so recovery needs nothing but the cause going away.

`describe_failure()` turns any exception a screen's worker can meet into one line for
the operator — "permission denied for table task_counts", "relation "task_counts" does
not exist", "statement timeout (5000 ms)" — never a traceback, passwords masked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from fsar_tui.config import Settings
from fsar_tui.db.connect import UNAVAILABLE_ERRORS, configure_pooler
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import ConnectionFailed, FsarError, first_line

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from fsar_tui.db.governance import Privileges
    from fsar_tui.db.pooler import FsarAsyncConnection

T = TypeVar("T")


OUTAGE_PROBE_S = 10.0  # how often an outage's cause is probed again with a direct connection


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

    def mark_reachable(self) -> None:
        self.state = "connected"
        self.fresh_at = time.monotonic()

    def mark_unreachable(self) -> None:
        if self.pool is not None:
            self.state = "reconnecting"

    def note(self, exc: BaseException) -> None:
        """Keep the health state true to a failure: only an unavailable server changes it.
        A statement timeout or lock timeout is an answer — the server is there, one query
        was too slow (a lock on one table): the screen that met it says so on its problem
        line, and the other screens, whose reads work, are not told "reconnecting"."""
        if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
            return
        if isinstance(exc, UNAVAILABLE_ERRORS):
            self.mark_unreachable()

    async def read(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """fn(conn, *args, **kwargs) from db/ on a pooled connection. Raises what it meets
        (the screen's worker handler shows it); marks the state either way."""
        pool = self.pool
        if pool is None:
            raise NotConnected("not connected to the database yet")
        try:
            async with pool.connection() as conn:
                result = await fn(conn, *args, **kwargs)
        except PoolTimeout as exc:
            # "couldn't get a connection after 5.00 sec" says nothing of why: ask libpq.
            self.mark_unreachable()
            raise ConnectionFailed(f"database unreachable: {await self.outage_cause()}") from exc
        except BaseException as exc:
            self.note(exc)
            raise
        self.mark_reachable()
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
        short-lived autocommit connection in a thread."""
        return await self._in_thread(False, fn, args, kwargs)

    async def _in_thread(self, read_only: bool, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        from fsar_tui.db.connect import connect

        def call() -> T:
            with connect(self.dsn, autocommit=True, statement_timeout_ms=self.settings.statement_timeout_ms) as conn:
                conn.read_only = read_only
                return fn(conn, *args, **kwargs)

        try:
            result = await asyncio.to_thread(call)
        except ConnectionFailed:
            self.mark_unreachable()
            raise
        except BaseException as exc:
            self.note(exc)
            raise
        self.mark_reachable()
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
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()
