"""What changes behind a transaction pooler (PgBouncer in `pool_mode = transaction`,
Neon's pooled endpoint), and how fsar-tui knows it is behind one.

A transaction pooler hands each transaction to whichever server connection is free, so
nothing that lives in a server session survives from one transaction to the next:

- Startup `options` are refused ("unsupported startup parameter: options") unless the
  pooler is told to ignore them, and then they are silently dropped: conninfo() sends
  none behind a pooler.
- psycopg prepares a statement it has run 5 times (`_pg3_0`, …) on the server connection
  of that moment; the next transaction may run elsewhere ("prepared statement does not
  exist") or another client's `_pg3_0` may already be there (DuplicatePreparedStatement).
  Behind a pooler `prepare_threshold` is None: never prepare.
- A session-level `SET` lands on one server connection and stays there for other clients.
  So the connection keeps its session settings (statement_timeout, jit, lock_timeout)
  itself and applies them at the start of every transaction with `set_config(…, true)`,
  i.e. `SET LOCAL` (`FsarConnection`). A statement run in autocommit is wrapped in a
  transaction of its own for that (BEGIN, settings, statement, COMMIT — three more round
  trips, behind a pooler only), except the few that cannot run in one (VACUUM, CREATE
  DATABASE, … CONCURRENTLY). A `SET statement_timeout = …` / `RESET …` the code runs at
  session level is kept by the connection instead of being sent, so it holds for this
  connection's later transactions and leaks to nobody.
- LISTEN is accepted but nothing is delivered: the live pipeline polls instead, without
  trying when the pooler is known, else after a probe NOTIFY never arrived (live/).

Detection (`pooler = "auto"`, the default): a hostname with "-pooler." (Neon's pooled
endpoints), a startup refused for its `options`, or a backend pid that the server does not
know as ours — libpq's pid comes from the BackendKeyData the pooler itself sent, while
`pg_backend_pid()` is the real server process. Remembered per server and database for the
life of the process. `pooler = "pgbouncer"` or `"none"` skips detection. A pooler in
session mode is found the same way and treated the same: harmless (it only costs a
round trip per transaction), and `pooler = "none"` keeps the startup options there.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Self, cast

import psycopg
from psycopg import sql
from psycopg.abc import Params, Query, QueryNoTemplate
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import Row
from psycopg.transaction import AsyncTransaction, Transaction

# The session settings a connection keeps itself behind a pooler (SET / RESET of these
# is intercepted); any other session-level SET would still reach one server connection.
KEPT_SETTINGS = ("statement_timeout", "lock_timeout", "jit")

_SESSION_SET = re.compile(
    r"\s*(?:SET\s+(?:SESSION\s+)?(?P<name>{names})\s*(?:=|\s+TO\s+)\s*(?P<value>'[^']*'|[\w.]+)"
    r"|RESET\s+(?P<reset>{names}))\s*;?\s*".format(names="|".join(KEPT_SETTINGS)),
    re.IGNORECASE,
)
# Statements that must not be wrapped in a transaction: those PostgreSQL refuses inside
# one, and transaction control itself.
_NO_WRAP = re.compile(
    r"\s*(?:$|(?:VACUUM|(?:CREATE|DROP)\s+(?:DATABASE|TABLESPACE)|ALTER\s+SYSTEM|CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY"
    r"|DROP\s+INDEX\s+CONCURRENTLY|REINDEX\b.*\bCONCURRENTLY|BEGIN|START\s+TRANSACTION|COMMIT|ROLLBACK|END|ABORT"
    r"|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b)",
    re.IGNORECASE | re.DOTALL,
)
_NEON_POOLER_HOST = re.compile(r"-pooler\.")

IDLE = TransactionStatus.IDLE
PID_SQL = "SELECT pg_backend_pid()"

# Server and database → behind a transaction pooler, for this process (see the docstring).
_known: dict[tuple[str, str, str, str], bool] = {}


def _params(dsn: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:  # conninfo() says what is wrong with it, as a usage error
        return {"host": dsn}


def _target(dsn: str) -> tuple[str, str, str, str]:
    params = _params(dsn)
    return tuple(str(params.get(k, "")) for k in ("host", "hostaddr", "port", "dbname"))  # type: ignore[return-value]


def known(dsn: str, mode: str = "auto") -> bool | None:
    """True/False when the mode says or it was found before; None: not known yet."""
    if mode == "pgbouncer":
        return True
    if mode == "none":
        return False
    found = _known.get(_target(dsn))
    if found is None and _NEON_POOLER_HOST.search(str(_params(dsn).get("host", ""))):
        return True
    return found


def remember(dsn: str, pooled: bool) -> None:
    _known[_target(dsn)] = pooled


def forget_all() -> None:
    """For tests: forget what was found."""
    _known.clear()


def refused_options(exc: BaseException) -> bool:
    """The startup was refused for its `options` (PgBouncer's default configuration)."""
    return "unsupported startup parameter" in str(exc)


def _text(query: Query, conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> str | None:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode(errors="replace")
    if isinstance(query, sql.Composable):
        try:
            return query.as_string(conn)
        except psycopg.Error:
            return None
    return None


def settings_sql(settings: dict[str, str]) -> sql.Composed:
    """One statement applying `settings` to the current transaction only (SET LOCAL)."""
    return sql.SQL("SELECT {}").format(
        sql.SQL(", ").join(
            sql.SQL("set_config({}, {}, true)").format(sql.Literal(k), sql.Literal(v)) for k, v in settings.items()
        )
    )


class KeptSettings:
    """The settings a pooled connection keeps for itself, and how a statement meets them."""

    def __init__(self) -> None:
        self.pooled = False
        self.defaults: dict[str, str] = {}
        self.settings: dict[str, str] = {}

    def enable(self, defaults: dict[str, str]) -> None:
        self.pooled = True
        self.defaults = dict(defaults)
        self.settings = dict(defaults)

    def session_change(self, text: str | None) -> sql.Composed | None:
        """For a session-level SET/RESET of a kept setting: remember it, and return what
        applies it to the rest of the current transaction. None for any other statement."""
        m = _SESSION_SET.fullmatch(text) if text is not None else None
        if m is None:
            return None
        name = (m.group("name") or m.group("reset")).lower()
        value = m.group("value")
        if value is not None and value.lower() != "default":
            self.settings[name] = value.strip("'")
        elif name in self.defaults:
            self.settings[name] = self.defaults[name]
        else:
            self.settings.pop(name, None)
            return sql.SQL("SET LOCAL {} TO DEFAULT").format(sql.Identifier(name))
        return settings_sql({name: self.settings[name]})

    def wraps(self, text: str | None) -> bool:
        return bool(self.settings) and (text is None or _NO_WRAP.match(text) is None)


class FsarCursor(psycopg.Cursor[Row]):
    """Behind a pooler: the connection's kept settings apply to every transaction."""

    def execute(  # type: ignore[override]
        self,
        query: QueryNoTemplate,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        conn = cast(FsarConnection, self.connection)
        kept = conn.kept
        if not kept.pooled:
            return super().execute(query, params, prepare=prepare, binary=binary)
        text = _text(query, conn)
        change = kept.session_change(text) if params is None else None
        if change is not None:
            if conn.info.transaction_status != IDLE:
                super().execute(change, prepare=False)
            return self
        if conn.info.transaction_status == IDLE and kept.wraps(text):
            if conn.autocommit:
                with conn.transaction():  # applies the settings (FsarConnection.transaction)
                    return super().execute(query, params, prepare=prepare, binary=binary)
            super().execute(settings_sql(kept.settings), prepare=False)  # BEGINs the transaction
        return super().execute(query, params, prepare=prepare, binary=binary)

    def executemany(self, query: Query, params_seq: Iterable[Params], *, returning: bool = False) -> None:
        conn = cast(FsarConnection, self.connection)
        if conn.kept.pooled and conn.info.transaction_status == IDLE and conn.kept.wraps(_text(query, conn)):
            if conn.autocommit:
                with conn.transaction():
                    return super().executemany(query, params_seq, returning=returning)
            super().execute(settings_sql(conn.kept.settings), prepare=False)
        return super().executemany(query, params_seq, returning=returning)


class FsarConnection(psycopg.Connection[Row]):
    """Every fsar-tui connection; `use_pooler()` switches on what a pooler needs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept = KeptSettings()
        self.cursor_factory = FsarCursor

    @property
    def pooled(self) -> bool:
        return self.kept.pooled

    def use_pooler(self, settings: dict[str, str]) -> None:
        self.prepare_threshold = None
        self.kept.enable(settings)

    @contextmanager
    def transaction(self, savepoint_name: str | None = None, force_rollback: bool = False) -> Iterator[Transaction]:
        outer = self.info.transaction_status == IDLE
        with super().transaction(savepoint_name, force_rollback) as tx:
            if outer and self.kept.pooled and self.kept.settings:
                psycopg.Cursor(self).execute(settings_sql(self.kept.settings), prepare=False)
            yield tx


class FsarAsyncCursor(psycopg.AsyncCursor[Row]):
    """FsarCursor for asyncio."""

    async def execute(  # type: ignore[override]
        self,
        query: QueryNoTemplate,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        conn = cast(FsarAsyncConnection, self.connection)
        kept = conn.kept
        if not kept.pooled:
            return await super().execute(query, params, prepare=prepare, binary=binary)
        text = _text(query, conn)
        change = kept.session_change(text) if params is None else None
        if change is not None:
            if conn.info.transaction_status != IDLE:
                await super().execute(change, prepare=False)
            return self
        if conn.info.transaction_status == IDLE and kept.wraps(text):
            if conn.autocommit:
                async with conn.transaction():
                    return await super().execute(query, params, prepare=prepare, binary=binary)
            await super().execute(settings_sql(kept.settings), prepare=False)
        return await super().execute(query, params, prepare=prepare, binary=binary)

    async def executemany(self, query: Query, params_seq: Iterable[Params], *, returning: bool = False) -> None:
        conn = cast(FsarAsyncConnection, self.connection)
        if conn.kept.pooled and conn.info.transaction_status == IDLE and conn.kept.wraps(_text(query, conn)):
            if conn.autocommit:
                async with conn.transaction():
                    return await super().executemany(query, params_seq, returning=returning)
            await super().execute(settings_sql(conn.kept.settings), prepare=False)
        return await super().executemany(query, params_seq, returning=returning)


class FsarAsyncConnection(psycopg.AsyncConnection[Row]):
    """FsarConnection for asyncio (the app's pool, the live sources, the simulator)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept = KeptSettings()
        self.cursor_factory = FsarAsyncCursor

    @property
    def pooled(self) -> bool:
        return self.kept.pooled

    def use_pooler(self, settings: dict[str, str]) -> None:
        self.prepare_threshold = None
        self.kept.enable(settings)

    @asynccontextmanager
    async def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AsyncIterator[AsyncTransaction]:
        outer = self.info.transaction_status == IDLE
        async with super().transaction(savepoint_name, force_rollback) as tx:
            if outer and self.kept.pooled and self.kept.settings:
                await psycopg.AsyncCursor(self).execute(settings_sql(self.kept.settings), prepare=False)
            yield tx


def probe(conn: psycopg.Connection[Any]) -> bool:
    """Behind a pooler: the pid libpq was given is not the server process's."""
    row = psycopg.Cursor(conn).execute(PID_SQL, prepare=False).fetchone()
    if not conn.autocommit:
        conn.rollback()
    return row is None or row[0] != conn.info.backend_pid


async def aprobe(conn: psycopg.AsyncConnection[Any]) -> bool:
    cur = await psycopg.AsyncCursor(conn).execute(PID_SQL, prepare=False)
    row = await cur.fetchone()
    if not conn.autocommit:
        await conn.rollback()
    return row is None or row[0] != conn.info.backend_pid
