"""Schema migrations: Alembic driven from code, with legacy adoption.

`migrate(dsn, to)` runs in ONE transaction holding an advisory lock:
  1. read the state: alembic_version (known revision?), execution_tasks present?
  2. a legacy database (execution_tasks, no alembic_version) must have the legacy
     columns; it is stamped at 0001_legacy_execution_tasks, the revision that matches
     its shape, so the remaining revisions apply to it exactly as to a fresh database;
  3. preflight: objects of the customer's a pending revision cannot carry (a view on a
     column whose type changes, db/migrate_preflight.py) stop everything with exit 2;
     rows violating constraints a pending revision adds (db/preflight.py), with exit 1;
  4. Alembic upgrades to the target; commit.
If anything fails, PostgreSQL's transactional DDL leaves the database as it was.

The scripts ship inside the wheel as fsar_tui/_alembic; in a source checkout they are
the top-level alembic/ directory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import psycopg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from fsar_tui.db import migrate_preflight, preflight
from fsar_tui.db.connect import connect
from fsar_tui.db.rows import one
from fsar_tui.errors import CheckFailed, UnknownRevision, UsageError, first_line

LEGACY_REVISION = "0001_legacy_execution_tasks"
LEGACY_COLUMNS = frozenset(
    {
        "id",
        "task_type",
        "status",
        "payload",
        "result",
        "error",
        "worker_id",
        "created_at",
        "started_at",
        "finished_at",
    }
)
MIGRATION_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('fsar.migrate'))"
# Long ALTERs must not queue behind a busy executor forever, nor block it forever.
MIGRATION_LOCK_TIMEOUT = "10s"


def script_location() -> Path:
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_alembic", package_dir.parent / "alembic"):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("fsar-tui's migration scripts are missing from this installation")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    return cfg


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    if head is None:  # the scripts ship inside the package: none found is a broken install
        raise CheckFailed(f"no migration scripts in {script_location()}")
    return head


def known_revisions() -> list[str]:
    """Every revision this build knows, base first."""
    return [s.revision for s in reversed(list(script_directory().walk_revisions()))]


def sqlalchemy_engine(dsn: str, raw: psycopg.Connection | None = None) -> Engine:
    """SQLAlchemy only as Alembic's engine, over psycopg, one connection, no pool."""
    conn = raw if raw is not None else connect(dsn)
    return create_engine("postgresql+psycopg://", creator=lambda: conn, poolclass=NullPool)


def revision_module(here: str, filename: str) -> ModuleType:
    """A sibling revision script as a module, for revisions that build on an earlier one's
    SQL (scripts are loaded by path: alembic/versions is not a package)."""
    import importlib.util

    path = Path(here).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"fsar_revision_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load revision script {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class DbState:
    current: str | None
    has_version_table: bool
    has_tasks_table: bool
    task_columns: set[str] = field(default_factory=set)

    @property
    def legacy(self) -> bool:
        return not self.has_version_table and self.has_tasks_table


def read_state(conn: psycopg.Connection) -> DbState:
    has_version = one(conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone())[0]
    has_tasks = one(conn.execute("SELECT to_regclass('execution_tasks') IS NOT NULL").fetchone())[0]
    current = None
    if has_version:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        if len(rows) > 1:
            raise UnknownRevision(
                f"alembic_version holds several revisions ({', '.join(r[0] for r in rows)}); "
                "fsar-tui has one line of history"
            )
        current = rows[0][0] if rows else None
    columns: set[str] = set()
    if has_tasks:
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'execution_tasks'::regclass "
                "AND attnum > 0 AND NOT attisdropped"
            ).fetchall()
        }
    return DbState(current, bool(has_version), bool(has_tasks), columns)


def check_known(state: DbState) -> None:
    if state.current is not None and state.current not in known_revisions():
        raise UnknownRevision(
            f"database is at schema revision {state.current!r}, which this fsar-tui build does not know "
            f"(newest known: {head_revision()}); upgrade fsar-tui"
        )


def pending_revisions(current: str | None, target: str) -> list[str]:
    """Revisions an upgrade from `current` to `target` would apply, in order."""
    revs = known_revisions()
    start = revs.index(current) + 1 if current else 0
    end = revs.index(target) + 1
    return revs[start:end]


def resolve_target(target: str) -> str:
    if target == "head":
        return head_revision()
    if target == "base":
        return "base"
    matches = [r for r in known_revisions() if r == target or r.startswith(target)]
    if len(matches) != 1:
        raise UsageError(f"unknown revision {target!r}; known: {', '.join(known_revisions())}")
    return matches[0]


@dataclass
class MigrateResult:
    before: str | None
    after: str | None
    applied: list[str]
    adopted: bool
    notes: list[str] = field(default_factory=list)  # what revisions said (NOTES_LOGGER)


# A revision says what it did to existing rows (what it could and could not recompute)
# through this logger; `fsar-tui migrate` prints each line.
NOTES_LOGGER = "fsar_tui.migration_notes"


class _Notes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def _collect_notes() -> Iterator[list[str]]:
    logger = logging.getLogger(NOTES_LOGGER)
    handler = _Notes()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


@contextmanager
def _locked_transaction(dsn: str) -> Iterator[tuple[Connection, psycopg.Connection]]:
    raw = connect(dsn)
    engine = sqlalchemy_engine(dsn, raw)
    try:
        with engine.begin() as sa_conn:
            raw.execute(MIGRATION_LOCK_SQL)
            raw.execute(f"SET LOCAL lock_timeout = '{MIGRATION_LOCK_TIMEOUT}'")
            raw.execute("SET LOCAL statement_timeout = 0")
            yield sa_conn, raw
    except psycopg.errors.LockNotAvailable:
        raise _lock_refused() from None
    except sqlalchemy.exc.DBAPIError as exc:
        # What alembic ran through SQLAlchemy arrives wrapped: give the CLI the driver's
        # error (a refused privilege, a lock timeout) to name, not "internal error".
        if isinstance(exc.orig, psycopg.errors.LockNotAvailable):
            raise _lock_refused() from None
        if isinstance(exc.orig, psycopg.Error):
            raise exc.orig from None
        raise
    finally:
        engine.dispose()
        raw.close()


def _lock_refused() -> CheckFailed:
    return CheckFailed(
        f"could not lock the tables within {MIGRATION_LOCK_TIMEOUT} (a long transaction holds them); nothing changed"
    )


def _run_alembic(sa_conn: Connection, fn: Callable[..., None], *args: object) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = sa_conn
    try:
        fn(cfg, *args)
    except CommandError as exc:
        raise UsageError(first_line(exc)) from None


def migrate(dsn: str, to: str = "head") -> MigrateResult:
    """Upgrade to `to` (adopting a legacy database first); see the module docstring."""
    target = resolve_target(to)
    if target == "base":
        raise UsageError("use --downgrade base to go to an empty schema")
    with _locked_transaction(dsn) as (sa_conn, raw):
        state = read_state(raw)
        check_known(state)
        adopted = False
        current = state.current
        if state.legacy:
            missing = LEGACY_COLUMNS - state.task_columns
            if missing:
                raise CheckFailed(
                    "execution_tasks exists without alembic_version but lacks legacy column(s) "
                    f"{', '.join(sorted(missing))}; refusing to adopt it; nothing changed"
                )
            _run_alembic(sa_conn, command.stamp, LEGACY_REVISION)
            current, adopted = LEGACY_REVISION, True
        revs = known_revisions()
        if current is not None and revs.index(target) < revs.index(current):
            raise UsageError(f"database is at {current}, above {target}; use --downgrade {target} --yes")
        pending = pending_revisions(current, target)
        # The customer's views (and the like) on a table a revision rewrites: named, not a raw
        # dependency error halfway through (db/migrate_preflight.py).
        in_the_way = migrate_preflight.dependents(raw, pending)
        if in_the_way:
            raise UsageError(migrate_preflight.refusal(in_the_way))
        # Rows exist only when the tasks table does (a fresh database has nothing to check).
        violations, total = preflight.find_violations(raw, set(pending)) if state.has_tasks_table else ([], 0)
        if total:
            more = f" (showing {len(violations)})" if total > len(violations) else ""
            raise CheckFailed(
                f"{total} existing row(s) violate constraints that {target} adds{more}; nothing changed",
                details=[str(v) for v in violations],
            )
        with _collect_notes() as notes:
            _run_alembic(sa_conn, command.upgrade, target)
        after = read_state(raw).current
    return MigrateResult(state.current, after, pending, adopted, notes)


def downgrade(dsn: str, to: str) -> MigrateResult:
    target = resolve_target(to)
    with _locked_transaction(dsn) as (sa_conn, raw):
        state = read_state(raw)
        check_known(state)
        if state.legacy or state.current is None:
            raise UsageError("database has no fsar-tui schema revision to downgrade from")
        revs = known_revisions()
        if target != "base" and revs.index(target) > revs.index(state.current):
            raise UsageError(f"database is at {state.current}, below {target}; use --to {target}")
        start = 0 if target == "base" else revs.index(target) + 1
        undone = list(reversed(revs[start : revs.index(state.current) + 1]))
        _run_alembic(sa_conn, command.downgrade, target)
        after = read_state(raw).current
    return MigrateResult(state.current, after, undone, False)


@dataclass
class SchemaStatus:
    current: str | None
    head: str
    pending: list[str]
    legacy: bool


def schema_status(conn: psycopg.Connection) -> SchemaStatus:
    state = read_state(conn)
    check_known(state)
    current = LEGACY_REVISION if state.legacy else state.current
    pending = pending_revisions(current, head_revision())
    return SchemaStatus(state.current, head_revision(), pending, state.legacy)
