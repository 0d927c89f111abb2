"""Opening connections (sync and the async pool) and explaining why one failed.

Every connection fsar-tui opens goes through `conninfo()`, which adds a connect
timeout, an application_name (so operators can find us in pg_stat_activity) and a
statement_timeout, so no query can hang the app — with JIT off in the same options:
every query here reads a few thousand rollup rows, and when a rough estimate crosses
jit_above_cost, compiling takes longer (up to a second) than the query itself. Driver errors become
`ConnectionFailed("cannot connect to host:port/db: cause")`, one line, password-free.
"""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from fsar_tui.domain.sanitize import first_line
from fsar_tui.dsn import describe_target, mask_dsn
from fsar_tui.errors import ConnectionFailed, UsageError

# What a screen's query can meet while the server is away or slow: it keeps its data,
# says so in the header and tries again on its next tick.
UNAVAILABLE_ERRORS = (psycopg.OperationalError, PoolTimeout, psycopg.errors.QueryCanceled)

CONNECT_TIMEOUT_S = 5
APPLICATION_NAME = "fsar-tui"


def conninfo(dsn: str, *, statement_timeout_ms: int | None = None, application_name: str = APPLICATION_NAME) -> str:
    """The DSN with our defaults; the user's own values win where they set them."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        given = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"invalid DSN {mask_dsn(dsn)!r}: {first_line(str(exc), 'unknown error')}") from None
    extra: dict[str, str | int] = {}
    if "connect_timeout" not in given:
        extra["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" not in given:
        extra["application_name"] = application_name
    if statement_timeout_ms is not None:
        options = str(given.get("options", ""))
        extra["options"] = f"{options} -c statement_timeout={int(statement_timeout_ms)} -c jit=off".strip()
    return make_conninfo(dsn, **extra)


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


def connect(dsn: str, *, autocommit: bool = False, statement_timeout_ms: int | None = None) -> psycopg.Connection:
    """A sync connection (used by migrations and the CLI), errors translated."""
    info = conninfo(dsn, statement_timeout_ms=statement_timeout_ms)
    try:
        return psycopg.connect(info, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise connection_failed(dsn, exc) from None


async def aconnect(
    dsn: str, *, autocommit: bool = True, statement_timeout_ms: int | None = None
) -> psycopg.AsyncConnection:
    """A dedicated async connection (LISTEN needs one of its own)."""
    info = conninfo(dsn, statement_timeout_ms=statement_timeout_ms)
    try:
        return await psycopg.AsyncConnection.connect(info, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise connection_failed(dsn, exc) from None


async def open_pool(
    dsn: str,
    *,
    statement_timeout_ms: int,
    min_size: int = 1,
    max_size: int = 4,
    read_only: bool = False,
    wait_timeout: float = CONNECT_TIMEOUT_S,
) -> AsyncConnectionPool:
    """An opened AsyncConnectionPool; fails fast with a one-line error when unreachable.

    `read_only` makes every pooled connection default to read-only transactions, so
    Postgres itself refuses writes even if a code path forgot to check.
    """

    async def configure(conn: psycopg.AsyncConnection) -> None:
        if read_only:
            await conn.set_read_only(True)

    pool = AsyncConnectionPool(
        conninfo(dsn, statement_timeout_ms=statement_timeout_ms),
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
        # The pool's own timeout hides the cause: ask libpq directly for it.
        try:
            conn = await aconnect(dsn)
        except ConnectionFailed as failed:
            raise failed from None
        await conn.close()
        cause = first_line(str(exc), "unknown error")
        raise ConnectionFailed(f"cannot open a connection pool to {describe_target(dsn)}: {cause}") from None
    return pool
