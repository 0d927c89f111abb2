"""Opening connections (sync and the async pool) and explaining why one failed.

Every connection fsar-tui opens goes through `conninfo()` and is an `FsarConnection`
(db/pooler.py). conninfo() adds:

- a connect timeout and an application_name (so operators can find us in pg_stat_activity);
- TCP keepalives and a TCP user timeout (KEEPALIVES): a server (or pooler) that stops
  answering — a black hole, packets dropped, no RST — is detected by the kernel in ~11 s,
  and the read waiting on it fails with an OperationalError the session counts as
  "unavailable". Without them a read whose query was acknowledged waits for an answer
  forever, and one whose query was not, for TCP's retransmissions to give up (~15 min),
  while the header says "connected" over frozen data. Idle: a probe after 5 s, then every
  2 s; in flight: data unacknowledged for 10 s ends the connection. A long COPY or
  pipelined batch the server stops reading for over 10 s is cut too; a DSN that sets
  `tcp_user_timeout=0` (or any of these) wins;
- a statement_timeout, so no query can hang the app, with JIT off: every query here reads
  a few thousand rollup rows, and when a rough estimate crosses jit_above_cost, compiling
  takes longer (up to a second) than the query itself.

How the last two travel depends on what is in between. Straight to PostgreSQL: in the
startup packet's `options` (`-c statement_timeout=… -c jit=off`), free. Behind a
transaction pooler (PgBouncer in transaction mode, Neon's pooled endpoint) there is no
session to hold them: PgBouncer refuses startup `options` by default, a session `SET`
would land on one server connection of the pool, and `ALTER ROLE … SET` would be a
deployment step and one value for every client of the role. So the connection applies
them to each transaction itself — `set_config(…, true)`, i.e. `SET LOCAL`, right after
BEGIN, a statement run in autocommit being wrapped in a transaction of its own — and
never prepares statements (`prepare_threshold=None`). Whether a pooler is there is
configured (`pooler = "pgbouncer"` / `"none"`) or detected (`"auto"`); see db/pooler.py.
A role- or database-level `ALTER … SET statement_timeout` on the server remains a good
floor for clients that are not fsar-tui.

Driver errors become `ConnectionFailed("cannot connect to host:port/db: cause")`, one
line, password-free.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Self, cast

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from fsar_tui.db import pooler, time_adapters
from fsar_tui.db.pooler import FsarAsyncConnection, FsarConnection
from fsar_tui.domain.sanitize import first_line
from fsar_tui.dsn import describe_target, mask_dsn
from fsar_tui.errors import ConnectionFailed, UsageError

# A time outside Python's years 1-9999 ('infinity', year 10000, BC) loads clamped rather
# than failing the read: see db/time_adapters.py.
time_adapters.install()

# What a screen's query can meet while the server is away or slow: it keeps its data,
# says so in the header and tries again on its next tick.
UNAVAILABLE_ERRORS = (psycopg.OperationalError, PoolTimeout, psycopg.errors.QueryCanceled)

CONNECT_TIMEOUT_S = 5
APPLICATION_NAME = "fsar-tui"
# libpq's TCP settings (seconds, and milliseconds for tcp_user_timeout): see the docstring.
KEEPALIVES: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


def session_settings(statement_timeout_ms: int | None) -> dict[str, str]:
    """What every transaction of a connection runs with (none without a timeout: as before)."""
    if statement_timeout_ms is None:
        return {}
    return {"statement_timeout": str(int(statement_timeout_ms)), "jit": "off"}


def conninfo(
    dsn: str,
    *,
    statement_timeout_ms: int | None = None,
    application_name: str = APPLICATION_NAME,
    pooled: bool = False,
) -> str:
    """The DSN with our defaults; the user's own values win where they set them. `pooled`:
    behind a transaction pooler, so no startup `options` (the settings go per transaction)."""
    try:
        given = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"invalid DSN {mask_dsn(dsn)!r}: {first_line(str(exc), 'unknown error')}") from None
    extra: dict[str, str | int] = {}
    if "connect_timeout" not in given:
        extra["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" not in given:
        extra["application_name"] = application_name
    extra.update({k: v for k, v in KEEPALIVES.items() if k not in given})
    settings = session_settings(statement_timeout_ms)
    if settings and not pooled:
        options = str(given.get("options", ""))
        extra["options"] = " ".join([options, *(f"-c {k}={v}" for k, v in settings.items())]).strip()
    return make_conninfo(dsn, **extra)


def configure_pooler(dsn: str | None, mode: str) -> None:
    """The configured `pooler` setting for `dsn`, for every connection this process opens to
    it (the simulator and the live sources connect without the settings at hand)."""
    if dsn and mode != "auto":
        pooler.remember(dsn, mode == "pgbouncer")


_CAUSES = [
    (
        re.compile(r"password authentication failed for user \"([^\"]*)\""),
        "password authentication failed for user {0}",
    ),
    (re.compile(r"no password supplied"), "the server asks for a password and none was given"),
    (re.compile(r"database \"([^\"]*)\" does not exist"), "database {0} does not exist"),
    (re.compile(r"role \"([^\"]*)\" does not exist"), "role {0} does not exist"),
    (re.compile(r"Connection refused"), "connection refused (is the server running and listening there?)"),
    (re.compile(r"could not translate host name \"([^\"]*)\""), "unknown host {0}"),
    (re.compile(r"failed to resolve host '([^']*)'"), "unknown host {0}"),
    (re.compile(r"timeout expired"), "timed out after {timeout}s (host unreachable or firewalled?)"),
    (re.compile(r"No route to host"), "no route to host"),
    (re.compile(r"Network is unreachable"), "network is unreachable"),
    (re.compile(r"No such file or directory"), "no server socket there (is the server running?)"),
    (re.compile(r"too many connections|too many clients"), "the server has no free connection slots"),
    (re.compile(r"the database system is (starting up|shutting down|in recovery mode)"), "the database system is {0}"),
    (re.compile(r"SSL"), "TLS negotiation failed"),
]


def explain_connect_error(exc: BaseException) -> str:
    """The cause of a failed connection in a few words, never the whole libpq dump."""
    text = str(exc)
    for pattern, template in _CAUSES:
        m = pattern.search(text)
        if m:
            return template.format(*m.groups(), timeout=CONNECT_TIMEOUT_S)
    # libpq prefixes "connection to server at …, port … failed: " — keep what follows.
    tail = text.rsplit("failed: ", 1)[-1]
    return first_line(mask_dsn(tail), "unknown error")


def connection_failed(dsn: str, exc: BaseException) -> ConnectionFailed:
    return ConnectionFailed(f"cannot connect to {describe_target(dsn)}: {explain_connect_error(exc)}")


def connect(
    dsn: str,
    *,
    autocommit: bool = False,
    statement_timeout_ms: int | None = None,
    pooler_mode: str = "auto",
    application_name: str = APPLICATION_NAME,
) -> FsarConnection:
    """A sync connection (used by migrations and the CLI), errors translated."""
    pooled = pooler.known(dsn, pooler_mode)

    def attempt(pooled: bool | None) -> FsarConnection:
        info = conninfo(
            dsn, statement_timeout_ms=statement_timeout_ms, application_name=application_name, pooled=bool(pooled)
        )
        return FsarConnection.connect(info, autocommit=autocommit, prepare_threshold=None if pooled else 5)

    try:
        try:
            conn = attempt(pooled)
        except psycopg.OperationalError as exc:
            if pooled is not None or not pooler.refused_options(exc):
                raise
            pooled = True
            conn = attempt(pooled)
        if pooled is None:
            try:
                pooled = pooler.probe(conn)
            except BaseException:
                conn.close()
                raise
    except psycopg.OperationalError as exc:
        raise connection_failed(dsn, exc) from None
    pooler.remember(dsn, pooled)
    if pooled:
        conn.use_pooler(session_settings(statement_timeout_ms))
    return conn


def sync_pool(
    dsn: str,
    *,
    statement_timeout_ms: int,
    max_size: int,
    min_size: int = 1,
    wait_timeout: float = CONNECT_TIMEOUT_S,
    autocommit: bool = True,
    application_name: str = APPLICATION_NAME,
    pooler_mode: str = "auto",
    name: str = "fsar-tui",
    on_connect: Callable[[ConnectionFailed | None], None] | None = None,
) -> ConnectionPool[Any]:
    """A bounded pool of sync connections, not opened yet: `open(wait=False)` needs no server
    (a thread server answers 503 meanwhile); `connection()` waits up to `wait_timeout` for
    a free one, then raises PoolTimeout. At most `max_size` connections, ever.

    Every connection is made by connect() above — conninfo()'s defaults and the
    application_name, the pooler detected (or configured) and remembered, and behind one
    the settings per transaction with no prepared statements — so a pooled connection is
    like any other fsar-tui connection. `on_connect` hears of every attempt: the
    ConnectionFailed, or None when it succeeded."""

    class PoolConnection(FsarConnection):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
            try:
                conn = connect(
                    dsn,
                    autocommit=autocommit,
                    statement_timeout_ms=statement_timeout_ms,
                    pooler_mode=pooler_mode,
                    application_name=application_name,
                )
            except ConnectionFailed as exc:
                if on_connect is not None:
                    on_connect(exc)
                raise
            if on_connect is not None:
                on_connect(None)
            return cast(Self, conn)

    return ConnectionPool(
        # Not used to connect (PoolConnection.connect is); built now so a bad DSN is a usage error here.
        conninfo(dsn, statement_timeout_ms=statement_timeout_ms, application_name=application_name),
        connection_class=PoolConnection,
        min_size=min_size,
        max_size=max_size,
        open=False,
        # Verify a pooled connection before handing it out (a restarted server leaves dead ones).
        check=ConnectionPool.check_connection,
        timeout=wait_timeout,
        name=name,
    )


async def aconnect(
    dsn: str, *, autocommit: bool = True, statement_timeout_ms: int | None = None, pooler_mode: str = "auto"
) -> FsarAsyncConnection:
    """A dedicated async connection (LISTEN needs one of its own)."""
    pooled = pooler.known(dsn, pooler_mode)

    async def attempt(pooled: bool | None) -> FsarAsyncConnection:
        info = conninfo(dsn, statement_timeout_ms=statement_timeout_ms, pooled=bool(pooled))
        return await FsarAsyncConnection.connect(info, autocommit=autocommit, prepare_threshold=None if pooled else 5)

    try:
        try:
            conn = await attempt(pooled)
        except psycopg.OperationalError as exc:
            if pooled is not None or not pooler.refused_options(exc):
                raise
            pooled = True
            conn = await attempt(pooled)
        if pooled is None:
            try:
                pooled = await pooler.aprobe(conn)
            except BaseException:
                await conn.close()
                raise
    except psycopg.OperationalError as exc:
        raise connection_failed(dsn, exc) from None
    pooler.remember(dsn, pooled)
    if pooled:
        conn.use_pooler(session_settings(statement_timeout_ms))
    return conn


async def open_pool(
    dsn: str,
    *,
    statement_timeout_ms: int,
    min_size: int = 1,
    max_size: int = 4,
    read_only: bool = False,
    wait_timeout: float = CONNECT_TIMEOUT_S,
    pooler_mode: str = "auto",
) -> AsyncConnectionPool[FsarAsyncConnection]:
    """An opened AsyncConnectionPool; fails fast with a one-line error when unreachable.

    `read_only` makes every pooled connection default to read-only transactions, so
    Postgres itself refuses writes even if a code path forgot to check (`BEGIN READ
    ONLY`: per transaction, so it holds behind a transaction pooler too).
    """
    # One connection first: the cause in one line when the server is unreachable (the
    # pool's own timeout hides it), and whether a transaction pooler is in between.
    first = await aconnect(dsn, statement_timeout_ms=statement_timeout_ms, pooler_mode=pooler_mode)
    pooled = first.pooled
    await first.close()
    settings = session_settings(statement_timeout_ms)

    async def configure(conn: FsarAsyncConnection) -> None:
        if pooled:
            conn.use_pooler(settings)
        if read_only:
            await conn.set_read_only(True)

    pool = AsyncConnectionPool(
        conninfo(dsn, statement_timeout_ms=statement_timeout_ms, pooled=pooled),
        connection_class=FsarAsyncConnection,
        kwargs={"prepare_threshold": None} if pooled else None,
        min_size=min_size,
        max_size=max_size,
        open=False,
        configure=configure,
        # Verify a pooled connection before handing it out (a restarted server leaves
        # dead ones behind), and give up waiting quickly so the screen can say so.
        check=AsyncConnectionPool.check_connection,
        timeout=wait_timeout,
        reconnect_timeout=365 * 24 * 3600.0,  # keep trying; the UI shows the state meanwhile
        name="fsar-tui",
    )
    try:
        await pool.open(wait=True, timeout=wait_timeout)
    except Exception as exc:
        await pool.close()
        try:  # the server may have gone in between: say why, if libpq can
            conn = await aconnect(dsn, pooler_mode=pooler_mode)
        except ConnectionFailed as failed:
            raise failed from None
        await conn.close()
        cause = first_line(str(exc), "unknown error")
        raise ConnectionFailed(f"cannot open a connection pool to {describe_target(dsn)}: {cause}") from None
    return pool
