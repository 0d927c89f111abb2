"""Shared fixtures: a real PostgreSQL for every test, one database per test.

The server is FSAR_TEST_DSN when set (CI: this machine's server), else a throwaway
cluster the suite starts once (tests/support/pgcluster.py). A template database is
migrated to head once per session; each test that asks for `db_dsn` gets a fresh
database cloned from it, dropped afterwards. `empty_dsn` gives an empty database.
Everything the suite creates carries the run's prefix and is dropped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from support.sql import x

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUN_PREFIX = f"fsar_t{uuid.uuid4().hex[:8]}"


def with_dbname(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """DSN of a maintenance database on the test server."""
    from support.pgcluster import server_or_cluster

    with server_or_cluster("FSAR_TEST_DSN") as dsn:
        yield dsn


def _admin(server_dsn: str) -> psycopg.Connection:
    return psycopg.connect(server_dsn, autocommit=True)


def create_database(server_dsn: str, name: str, template: str | None = None) -> str:
    with _admin(server_dsn) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        conn.execute(stmt)
    return with_dbname(server_dsn, name)


def drop_database(server_dsn: str, name: str) -> None:
    with _admin(server_dsn) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_db(server_dsn: str) -> Iterator[str]:
    from fsar_tui.db.migrations import migrate

    name = f"{RUN_PREFIX}_template"
    dsn = create_database(server_dsn, name)
    migrate(dsn)
    try:
        yield name
    finally:
        with _admin(server_dsn) as conn:
            leftovers = [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{RUN_PREFIX}%",)).fetchall()]
        for db in leftovers:
            drop_database(server_dsn, db)


def _unique_name() -> str:
    return f"{RUN_PREFIX}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def db_dsn(server_dsn: str, template_db: str) -> Iterator[str]:
    """A database of this test's own, at head."""
    name = _unique_name()
    dsn = create_database(server_dsn, name, template=template_db)
    try:
        yield dsn
    finally:
        drop_database(server_dsn, name)


@pytest.fixture
def empty_dsn(server_dsn: str, template_db: str) -> Iterator[str]:
    """An empty database of this test's own (depends on template_db for cleanup)."""
    name = _unique_name()
    dsn = create_database(server_dsn, name)
    try:
        yield dsn
    finally:
        drop_database(server_dsn, name)


@pytest.fixture
def legacy_dsn(empty_dsn: str) -> str:
    """An empty database holding the production legacy table and its rows."""
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute((FIXTURES / "legacy_schema.sql").read_text())
    return empty_dsn


@pytest.fixture
def own_cluster():
    """A PostgreSQL server of this test's own, which it may stop and start."""
    from support.pgcluster import Cluster

    cluster = Cluster().start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """A real MQTT broker: FSAR_TEST_MQTT_URL, else one the suite starts."""
    given = os.environ.get("FSAR_TEST_MQTT_URL")
    if given:
        yield given
        return
    from support.broker import Broker

    broker = Broker()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the CLI: no FSAR_* settings, private config/data dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSAR_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture
def run_cli(isolated_env: dict[str, str], tmp_path: Path):
    """Run the real `fsar-tui` (python -m fsar_tui) from a neutral directory."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 120):
        return subprocess.run(
            [sys.executable, "-m", "fsar_tui", *args],
            capture_output=True, text=True, env=env or isolated_env, cwd=tmp_path, input=input, timeout=timeout)

    return run


@pytest.fixture
def login(db_dsn):
    """login('fsar_operator') → the DSN of a new LOGIN role granted it (dropped afterwards)."""
    made: list[str] = []

    def make(*roles: str) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        x(db_dsn, f"CREATE ROLE {name} LOGIN")
        for role in roles:
            x(db_dsn, f"GRANT {role} TO {name}")
        made.append(name)
        return make_conninfo(db_dsn, user=name)

    yield make
    for name in made:
        x(db_dsn, f"DROP ROLE {name}")
