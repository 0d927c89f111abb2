"""Shared fixtures: a real PostgreSQL for every test, one database per test.

The server is FSAR_TEST_DSN when set (CI: this machine's server), else a throwaway
cluster started once per run (tests/support/pgcluster.py) by the first process that
needs it and shared by every xdist worker; the MQTT broker likewise (FSAR_TEST_MQTT_URL,
else tests/support/broker.py). The controlling process removes both when the run ends.
A template database is migrated to head once per session (per worker); each test that
asks for `db_dsn` gets a fresh database cloned from it, dropped afterwards. `empty_dsn`
gives an empty database. Everything a worker creates carries its RUN_PREFIX and is
dropped when its session ends, so workers never drop each other's databases.

Tiers: every test whose fixtures reach a server (SERVICE_FIXTURES, transitively), that
is marked `slow` (processes, clusters), or whose module is marked `services` (tmux) is
marked `services`; `make test-fast` runs `-m "not services"` with FSAR_TEST_FAST=1 and
no servers configured, and then any test that reaches for a server, a cluster, a broker
or the embedded PostgreSQL after all fails saying so instead of starting one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from psycopg import sql
from psycopg.conninfo import make_conninfo

from support.db_reaper import Reaper
from support.sql import x
from support.tiers import refuse_in_fast_tier

# Hypothesis's per-example deadline (200 ms) is a wall-clock threshold: on this 2-core
# machine under load an example that takes longer is not a failure of the property.
hypothesis_settings.register_profile("fsar", deadline=None)
hypothesis_settings.load_profile("fsar")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUN_PREFIX = f"fsar_t{uuid.uuid4().hex[:8]}"  # one per process: each xdist worker its own
FAST = os.environ.get("FSAR_TEST_FAST") == "1"

# Fixtures that reach a PostgreSQL server or an MQTT broker. A test needing any of them,
# directly or through other fixtures, is in the `services` tier.
SERVICE_FIXTURES = frozenset(
    {
        "server_dsn",
        "template_db",
        "db_dsn",
        "empty_dsn",
        "legacy_dsn",
        "login",
        "rollout_db",
        "own_cluster",
        "mqtt_url",
        "password_server",  # test_cli.py: a cluster of its own
    }
)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        # An xdist worker: the controller set the run up — but the fast tier's refusal is
        # set here, in the worker, for the processes its tests start: had the controller put
        # the shim on PYTHONPATH, the workers themselves would have started with the stub,
        # and test modules importing the package's submodules failed at collection.
        if FAST:
            _refuse_embedded_postgres()
        return
    # One directory per run, inherited by the xdist workers through the environment:
    # where the shared cluster and broker are recorded (and locked) when the suite
    # starts its own.
    os.environ["FSAR_TEST_RUN_DIR"] = tempfile.mkdtemp(prefix="fsar-testrun-")
    # The app keeps `:` command history in the XDG state dir: the suite's goes to the run's.
    os.environ["XDG_STATE_HOME"] = os.path.join(os.environ["FSAR_TEST_RUN_DIR"], "state")
    _share_bytecode(Path(os.environ["FSAR_TEST_RUN_DIR"]))
    if FAST and not getattr(config.option, "numprocesses", None):
        _refuse_embedded_postgres()  # one process: here (with -n, each worker does it)


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or "FSAR_TEST_RUN_DIR" not in os.environ:
        return
    from support.broker import stop_shared
    from support.pgcluster import destroy_shared

    run_dir = Path(os.environ.pop("FSAR_TEST_RUN_DIR"))
    if os.environ.get("PYTHONPYCACHEPREFIX") == str(run_dir / "pycache"):  # set by _share_bytecode: undo it
        del os.environ["PYTHONPYCACHEPREFIX"]
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    stop_shared(run_dir)
    destroy_shared(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())) or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.services)


def _share_bytecode(run_dir: Path) -> None:
    """With PYTHONDONTWRITEBYTECODE set (and no __pycache__ in the tree), every process a
    test starts — hundreds of `fsar-tui` CLI runs, simulators, apps — compiled each module
    it imports from source again (~20 % of a CLI run's CPU). The run's processes share a
    bytecode cache in the run directory instead: the first to import a module writes it,
    the others read it; nothing is written into the working tree, and the cache goes
    with the run directory. The xdist workers, started after this, inherit it."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return  # bytecode is written next to the sources as usual, or already goes elsewhere
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = str(run_dir / "pycache")


def _refuse_embedded_postgres() -> None:
    """The fast tier: `fsar-tui` with no DSN would start the embedded PostgreSQL. Refuse
    it here and in the processes the tests start (support/fast_tier/sitecustomize.py)."""
    import fsar_tui.embedded

    def refused(*args, **kwargs):
        refuse_in_fast_tier("the embedded PostgreSQL")

    fsar_tui.embedded.start_embedded = refused
    shim = Path(__file__).resolve().parent / "support" / "fast_tier"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))


def _run_dir() -> Path:
    return Path(os.environ["FSAR_TEST_RUN_DIR"])


def with_dbname(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


@pytest.fixture(scope="session")
def server_dsn() -> str:
    """DSN of a maintenance database on the test server."""
    refuse_in_fast_tier("PostgreSQL")
    if os.environ.get("FSAR_TEST_DSN"):
        return os.environ["FSAR_TEST_DSN"]
    from support.pgcluster import shared_cluster_dsn

    return shared_cluster_dsn(_run_dir())


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
    # The migrations create cluster-wide roles when none exists: two workers migrating
    # at once on a fresh server can both decide to create one, and one of them then
    # fails. One template migration at a time per server.
    with _admin(server_dsn) as lock:
        lock.execute("SELECT pg_advisory_lock(hashtext('fsar-tui tests: migrate the template'))")
        migrate(dsn)
    global _reaper
    _reaper = (server_dsn, Reaper(lambda db: drop_database(server_dsn, db)))
    try:
        yield name
    finally:
        _reaper[1].close()  # the tests' databases handed over (support/db_reaper.py), dropped
        _reaper = None
        with _admin(server_dsn) as conn:  # this process's databases only (RUN_PREFIX), not other workers'
            leftovers = [
                r[0]
                for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s", (RUN_PREFIX.replace("_", "\\_") + "\\_%",)
                ).fetchall()
            ]
        for db in leftovers:
            drop_database(server_dsn, db)


def _unique_name() -> str:
    return f"{RUN_PREFIX}_{uuid.uuid4().hex[:10]}"


# template_db's (server, reaper) while the session lasts: a test's database is dropped on
# the reaper's thread, so the test does not wait for the checkpoint a DROP DATABASE makes.
_reaper: tuple[str, Reaper] | None = None


def _drop_after_test(server_dsn: str, name: str) -> None:
    if _reaper is not None and _reaper[0] == server_dsn:
        _reaper[1].drop_later(name)
    else:
        drop_database(server_dsn, name)


@contextmanager
def database_copy(server_dsn: str, template: str) -> Iterator[str]:
    """A database of its own cloned from the database named `template`, dropped afterwards.
    Data that takes long to make is made once into a module- or session-scoped template;
    each test gets a fresh copy of it (a fraction of a second)."""
    name = _unique_name()
    dsn = create_database(server_dsn, name, template=template)
    try:
        yield dsn
    finally:
        _drop_after_test(server_dsn, name)


@pytest.fixture
def db_dsn(server_dsn: str, template_db: str) -> Iterator[str]:
    """A database of this test's own, at head."""
    with database_copy(server_dsn, template_db) as dsn:
        yield dsn


@pytest.fixture
def empty_dsn(server_dsn: str, template_db: str) -> Iterator[str]:
    """An empty database of this test's own (depends on template_db for cleanup)."""
    name = _unique_name()
    dsn = create_database(server_dsn, name)
    try:
        yield dsn
    finally:
        _drop_after_test(server_dsn, name)


@pytest.fixture
def legacy_dsn(empty_dsn: str) -> str:
    """An empty database holding the production legacy table and its rows."""
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute((FIXTURES / "legacy_schema.sql").read_text())
    return empty_dsn


@pytest.fixture
def rollout_db(db_dsn):
    """db_dsn with the rollout target prompt/implement_idea: revision 2 of 2 active (support/rollouts.py)."""
    from support.rollouts import insert_rollout

    insert_rollout(db_dsn)
    return db_dsn


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
def mqtt_url() -> str:
    """A real MQTT broker: FSAR_TEST_MQTT_URL, else the one the suite starts for the run."""
    refuse_in_fast_tier("an MQTT broker")
    if os.environ.get("FSAR_TEST_MQTT_URL"):
        return os.environ["FSAR_TEST_MQTT_URL"]
    from support.broker import shared_broker_url

    return shared_broker_url(_run_dir())


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the CLI: no FSAR_* settings, private config/data/state dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSAR_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture
def run_cli(isolated_env: dict[str, str], tmp_path: Path):
    """Run the real `fsar-tui` (python -m fsar_tui) from a neutral directory."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 120):
        return subprocess.run(
            [sys.executable, "-m", "fsar_tui", *args],
            capture_output=True,
            text=True,
            env=env or isolated_env,
            cwd=tmp_path,
            input=input,
            timeout=timeout,
        )

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
