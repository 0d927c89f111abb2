"""fsar-tui through a real PgBouncer in transaction mode with its default configuration
(support/pgbouncer.py) — the production Neon setup has one.

Before: every command but `migrate` was refused ("unsupported startup parameter:
options"); with the options ignored, psycopg's automatic prepared statements collided on
shared server connections (DuplicatePreparedStatement "_pg3_0") and statement_timeout
was silently 0. Here: the controls first (this PgBouncer does refuse options, and plain
psycopg does collide on it), then the CLI, the statement timeout, the simulator, the
audit pass and the app under Pilot, all through it. PgBouncer missing is a failure
(support/pgbouncer.py), not a skip.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import psycopg
import pytest

from fsar_tui.config import Settings
from fsar_tui.db import pooler
from fsar_tui.db.connect import UNAVAILABLE_ERRORS, aconnect, connect, open_pool
from fsar_tui.errors import ConnectionFailed
from fsar_tui.live.service import LiveService
from fsar_tui.session import Session
from support.pgbouncer import PgBouncer
from support.sql import q, x

# Enough runs of one statement to cross psycopg's prepare threshold (5) several times.
REPEATS = 3 * 5


@pytest.fixture(scope="module")
def bouncer(server_dsn):
    b = PgBouncer(server_dsn).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def pooled(bouncer, db_dsn):
    """The test's fresh database, through PgBouncer."""
    return bouncer.dsn(db_dsn)


def test_pooler_setting_from_flags_environment_and_file(tmp_path):
    from fsar_tui.config import load_settings
    from fsar_tui.errors import UsageError

    assert load_settings(env={}, config_path=None).pooler == "auto"
    config = tmp_path / "config.toml"
    config.write_text('pooler = "none"\n')
    assert load_settings(env={}, config_path=config).pooler == "none"
    assert load_settings(env={"FSAR_POOLER": "pgbouncer"}, config_path=config).pooler == "pgbouncer"
    assert load_settings(flags={"pooler": "auto"}, env={"FSAR_POOLER": "pgbouncer"}).pooler == "auto"
    with pytest.raises(UsageError, match="pooler must be one of auto, pgbouncer, none"):
        load_settings(env={"FSAR_POOLER": "odyssey"})


def test_neon_pooled_host_names_are_known_without_a_probe():
    assert pooler.known("postgresql://u@ep-cool-1234-pooler.us-east-2.aws.neon.tech/neondb") is True
    assert pooler.known("postgresql://u@ep-cool-1234.us-east-2.aws.neon.tech/neondb") is None
    assert pooler.known("postgresql://u@ep-cool-1234-pooler.aws.neon.tech/db", "none") is False


def test_kept_settings_intercept_session_sets_and_leave_the_rest():
    kept = pooler.KeptSettings()
    kept.enable({"statement_timeout": "5000", "jit": "off"})
    assert kept.session_change("SET statement_timeout = 0") is not None and kept.settings["statement_timeout"] == "0"
    assert kept.session_change("set session lock_timeout to '2s';") is not None
    assert kept.settings["lock_timeout"] == "2s"
    kept.session_change("RESET statement_timeout")
    assert kept.settings == {"statement_timeout": "5000", "jit": "off", "lock_timeout": "2s"}
    kept.session_change("RESET lock_timeout")
    assert "lock_timeout" not in kept.settings
    for other in ("SET LOCAL statement_timeout = 0", "SET search_path = x", "SELECT 'SET statement_timeout = 0'"):
        assert kept.session_change(other) is None
    assert kept.wraps("SELECT 1") and kept.wraps("  insert into t values (1)")
    for alone in ("", "VACUUM ANALYZE t", "create index concurrently i on t (a)", "COMMIT", "CREATE DATABASE d"):
        assert not kept.wraps(alone), alone


def add_tasks(dsn: str, n: int = 40) -> None:
    x(
        dsn,
        """INSERT INTO execution_tasks (task_type, ai_model)
           SELECT (ARRAY['implement_idea','self_improvement'])[1 + g %% 2], 'gpt-4o' FROM generate_series(1, %s) g""",
        (n,),
    )


def test_the_pgbouncer_is_transaction_mode_and_defaults_and_reproduces_both_failures(bouncer, pooled):
    config = bouncer.config()
    assert config["pool_mode"] == "transaction"
    assert config["ignore_startup_parameters"] == ""
    # What fsar-tui sent before, refused:
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter: options"):
        psycopg.connect(pooled, options="-c statement_timeout=5000").close()
    # Plain psycopg (prepare_threshold 5) on two clients sharing server connections: the
    # sixth run prepares "_pg3_0" where the other client already did.
    conns = [psycopg.connect(pooled, autocommit=True) for _ in range(2)]
    try:
        with pytest.raises(psycopg.Error, match="prepared statement"):
            for i in range(REPEATS):
                for conn in conns:
                    conn.execute("SELECT %s::int", (i,)).fetchone()
    finally:
        for conn in conns:
            conn.close()


def test_connections_detect_the_pooler_and_never_prepare(pooled, db_dsn):
    conns = [connect(pooled, autocommit=True, statement_timeout_ms=5000), connect(pooled, statement_timeout_ms=5000)]
    try:
        assert [c.pooled for c in conns] == [True, True]
        assert all(c.prepare_threshold is None for c in conns)
        for i in range(REPEATS):
            for conn in conns:
                assert conn.execute("SELECT %s::int", (i,)).fetchone() == (i,)
        conns[1].commit()
    finally:
        for conn in conns:
            conn.close()
    with connect(db_dsn, statement_timeout_ms=5000) as direct:
        assert not direct.pooled and direct.prepare_threshold == 5


def test_pooler_none_sends_options_and_is_refused_with_one_line(pooled):
    pooler.forget_all()
    with pytest.raises(ConnectionFailed, match="unsupported startup parameter: options"):
        connect(pooled, statement_timeout_ms=5000, pooler_mode="none")
    pooler.forget_all()


def test_pooler_pgbouncer_configured_skips_detection(pooled, db_dsn):
    # Configured even on a direct connection: it works the same, settings per transaction.
    with connect(db_dsn, autocommit=True, statement_timeout_ms=300, pooler_mode="pgbouncer") as conn:
        assert conn.pooled
        assert conn.execute("SHOW statement_timeout").fetchone() == ("300ms",)
    pooler.forget_all()


@pytest.mark.parametrize("autocommit", [True, False])
def test_statement_timeout_and_jit_are_in_force_per_transaction(pooled, autocommit):
    with connect(pooled, autocommit=autocommit, statement_timeout_ms=200) as conn:
        for _ in range(REPEATS):
            cur = conn.execute("SELECT current_setting('statement_timeout'), current_setting('jit'), 1")
            assert cur.fetchone() == ("200ms", "off", 1)
        if not autocommit:
            conn.commit()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(2)")
        if not autocommit:
            conn.rollback()
        with conn.transaction():  # an explicit transaction gets them too
            assert conn.execute("SHOW statement_timeout").fetchone() == ("200ms",)
        # A session-level SET (anonymize, profile --backfill) is kept by the connection:
        # it holds for this connection's next transactions ...
        conn.execute("SET statement_timeout = 0")
        started = time.monotonic()
        conn.execute("SELECT pg_sleep(0.4)")
        assert time.monotonic() - started >= 0.4
        conn.execute("RESET statement_timeout")
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(2)")
        if not autocommit:
            conn.rollback()
    # ... and never reached a server connection other clients get.
    for _ in range(4):
        with connect(pooled, autocommit=True) as plain:
            assert plain.execute("SHOW statement_timeout").fetchone() == ("0",)
            assert plain.execute("SHOW jit").fetchone() != ("off",) or q(pooled, "SHOW jit") == [("off",)]


def test_with_options_ignored_the_pid_gives_the_pooler_away_and_the_timeout_holds(server_dsn, db_dsn):
    # The second try: `ignore_startup_parameters = options` drops them silently.
    lax = PgBouncer(server_dsn, ignore_startup_parameters="options").start()
    try:
        with connect(lax.dsn(db_dsn), autocommit=True, statement_timeout_ms=150) as conn:
            assert conn.pooled
            assert conn.execute("SHOW statement_timeout").fetchone() == ("150ms",)
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT pg_sleep(2)")
    finally:
        lax.stop()


async def test_pooled_reads_of_the_app_session_repeat_and_time_out(pooled):
    session = Session(pooled, Settings(dsn=pooled, statement_timeout_ms=300))
    session.pool = await open_pool(pooled, statement_timeout_ms=300, max_size=3)

    async def settings(conn):
        cur = await conn.execute("SELECT current_setting('statement_timeout'), current_setting('jit')")
        return await cur.fetchone()

    async def sleep(conn):
        await conn.execute("SELECT pg_sleep(2)")

    try:
        # Concurrent reads on three pooled connections, far past the prepare threshold.
        results = await asyncio.gather(*(session.read(settings) for _ in range(3 * REPEATS)))
        assert set(results) == {("300ms", "off")}
        assert session.state == "connected"
        with pytest.raises(psycopg.errors.QueryCanceled) as err:
            await session.read(sleep)
        assert isinstance(err.value, UNAVAILABLE_ERRORS)
        assert "statement timeout (300 ms)" in session.describe(err.value)
    finally:
        await session.close()


async def test_listen_falls_back_to_polling_without_hanging(pooled):
    # A pooler nobody detected yet: LISTEN is tried, its probe NOTIFY never arrives.
    live = LiveService(pooled, mode="auto")
    try:
        assert await asyncio.wait_for(live.start(), timeout=30) == "poll"
        assert "delivers nothing" in (live.fallback_reason or "")
    finally:
        await live.stop()
    # Once a connection found the pooler (the app's pool opens before its live source),
    # LISTEN is not even tried.
    conn = await aconnect(pooled)
    assert conn.pooled
    await conn.close()
    live = LiveService(pooled, mode="auto")
    started = time.monotonic()
    try:
        assert await live.start() == "poll"
        assert "transaction pooler" in (live.fallback_reason or "")
        assert time.monotonic() - started < 1.5  # no probe waited for
    finally:
        await live.stop()


CLI = [
    ("db", "status"),
    ("tasks", "list"),
    ("tasks", "list", "--filter", "status:queued type:implement_idea"),
    ("tasks", "show", "1"),
    ("tasks", "cancel", "2", "--reason", "through pgbouncer", "--yes"),
    ("profile",),
    ("roi",),
    ("report",),
    ("audit", "run"),
    ("audit", "gates"),
    ("alerts", "list"),
    ("rollouts", "list"),
    ("proposals", "list"),
    ("log", "list"),
    ("log", "verify"),
]


def test_cli_commands_through_pgbouncer(run_cli, pooled, isolated_env):
    add_tasks(pooled)
    env = {**isolated_env, "FSAR_DSN": pooled}
    for args in CLI:
        proc = run_cli(*args, env=env)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        assert "prepared statement" not in proc.stderr and "startup parameter" not in proc.stderr, (args, proc.stderr)
    assert q(pooled, "SELECT status FROM execution_tasks WHERE id = 2") == [("cancelled",)]
    # Configured instead of detected: the same, without the probe.
    proc = run_cli("tasks", "list", env={**env, "FSAR_POOLER": "pgbouncer"})
    assert proc.returncode == 0, proc.stderr
    # And told there is none: the old refusal, as a one-line connection error.
    proc = run_cli("tasks", "list", env={**env, "FSAR_POOLER": "none"})
    assert proc.returncode == 2 and "unsupported startup parameter: options" in proc.stderr, proc.stderr


def test_migrate_through_pgbouncer(run_cli, bouncer, empty_dsn, isolated_env):
    # One transaction under a transaction-level lock: a transaction pooler is no obstacle.
    env = {**isolated_env, "FSAR_DSN": bouncer.dsn(empty_dsn)}
    proc = run_cli("migrate", env=env)
    assert proc.returncode == 0, proc.stderr
    status = run_cli("db", "status", env=env)
    assert status.returncode == 0 and "pending:   none" in status.stdout, (status.stdout, status.stderr)


def test_the_simulator_runs_through_pgbouncer(pooled, isolated_env):
    proc = subprocess.run(
        [sys.executable, "-m", "fsar_tui", "simulate", "--workers", "4", "--processes", "2", "--rate", "40"]
        + ["--time-scale", "0.002", "--duration", "8", "--lease", "5"],
        env={**isolated_env, "FSAR_DSN": pooled},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    assert "prepared statement" not in proc.stderr and "DuplicatePreparedStatement" not in proc.stderr, proc.stderr
    claimed = q(pooled, "SELECT count(*) FROM task_events WHERE to_status = 'running'")[0][0]
    finished = q(pooled, "SELECT count(*) FROM execution_tasks WHERE status IN ('succeeded', 'failed')")[0][0]
    assert claimed >= 100 and finished >= 80, (claimed, finished, proc.stderr)


def test_the_audit_pass_runs_through_pgbouncer(rollout_db, bouncer):
    from fsar_tui.services.audit_pass import scheduled_check

    pooled = bouncer.dsn(rollout_db)
    add_tasks(pooled)
    for _ in range(3):  # the app runs it every minute: more than once on the same pooler
        result = scheduled_check(pooled, read_only=False, statement_timeout_ms=5000)
        assert result.rehearsed and [t.target for t in result.targets] == ["prompt/implement_idea"]
        assert result.problems == {"prompt/implement_idea": None} or all(
            "prepared" not in (p or "") for p in result.problems.values()
        )
        assert result.gates_evaluated is not None and result.gates_evaluated > 0
    assert q(pooled, "SELECT count(*) FROM audit_runs")[0][0] >= 3 * result.gates_evaluated


async def test_the_app_under_pilot_through_pgbouncer_with_the_simulator_running(pooled, isolated_env):
    from fsar_tui.app import FsarApp
    from fsar_tui.screens.queue import QueueScreen
    from fsar_tui.widgets.status_header import StatusHeader
    from support.pilot import table, until

    add_tasks(pooled)
    sim = subprocess.Popen(
        [sys.executable, "-m", "fsar_tui", "simulate", "--workers", "3", "--rate", "15", "--time-scale", "0.05"],
        env={**isolated_env, "FSAR_DSN": pooled},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    app = FsarApp(settings=Settings(dsn=pooled, live="auto", statement_timeout_ms=2000), dsn=pooled)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) >= 40)
            assert await until(pilot, lambda: app.live is not None and app.live.source is not None, tries=400)
            assert app.live.source.name == "poll"  # LISTEN delivers nothing through the pooler
            seen = len(table(app).keys)
            # Several refresh cycles (queue REFRESH_S 5 s, live polls every 0.5 s), with the
            # fleet's events arriving: each repeats its statements far past the threshold.
            for _ in range(3):
                await pilot.press("2")
                await pilot.pause(2)
                await pilot.press("1")
                await pilot.pause(2.5)
            assert await until(pilot, lambda: len(table(app).keys) > seen, tries=400)
            assert app.is_running and app.session.state == "connected"
            assert app.screen.query_one(StatusHeader).problem == ""

            async def timeout_setting(conn):
                cur = await conn.execute("SHOW statement_timeout")
                return await cur.fetchone()

            assert await app.session.read(timeout_setting) == ("2s",)
    finally:
        sim.terminate()
        try:
            _, err = sim.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
            _, err = sim.communicate(timeout=30)
            pytest.fail(f"the simulator did not stop within 30 s of SIGTERM: {err}")
    assert sim.returncode == 0 and "prepared statement" not in err, (sim.returncode, err)
