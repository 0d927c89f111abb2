"""The real `fsar-tui` command: bad input gets one line and the documented exit code."""

from __future__ import annotations

import json

import psycopg
import pytest

from fsar_tui.db.migrations import head_revision


def assert_one_line_error(proc, code, *needles):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("fsar-tui: ")
    for needle in needles:
        assert needle in err, err


def test_version_and_help(run_cli):
    assert run_cli("--version").stdout.strip().startswith("fsar-tui ")
    helped = run_cli("--help")
    assert helped.returncode == 0 and "migrate" in helped.stdout and "exit codes" in helped.stdout
    assert "--dsn" in run_cli("migrate", "--help").stdout
    assert "--dsn" in run_cli("db", "status", "--help").stdout


def test_migrate_and_status_with_dsn_after_subcommand(run_cli, empty_dsn):
    first = run_cli("migrate", "--dsn", empty_dsn)
    assert first.returncode == 0, first.stderr
    assert f"to {head_revision()}" in first.stdout
    again = run_cli("migrate", "--dsn", empty_dsn)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    status = run_cli("db", "status", "--dsn", empty_dsn, "--format", "json")
    info = json.loads(status.stdout)
    assert info["current"] == info["head"] == head_revision() and info["pending"] == []
    assert info["embedded"] is False and info["server_version"]


def test_dsn_before_subcommand_and_env(run_cli, empty_dsn, isolated_env):
    assert run_cli("--dsn", empty_dsn, "migrate", "--to", "0002").returncode == 0
    env = {**isolated_env, "FSAR_DSN": empty_dsn}
    status = run_cli("db", "status", "--check", env=env)
    assert status.returncode == 1  # pending migrations fail --check
    assert "0002_add_ai_model" in status.stdout and "0003_task_lifecycle" in status.stdout


def test_downgrade_via_cli(run_cli, db_dsn):
    refused = run_cli("migrate", "--downgrade", "0002_add_ai_model", "--dsn", db_dsn)
    assert refused.returncode == 2 and "add --yes" in refused.stderr and refused.stderr.count("\n") == 1
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] != "0002_add_ai_model"
    proc = run_cli("migrate", "--downgrade", "0002_add_ai_model", "--yes", "--dsn", db_dsn)
    assert proc.returncode == 0 and "downgraded" in proc.stdout
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0002_add_ai_model"


def test_password_is_masked_in_output(run_cli, empty_dsn):
    # The test server ignores the password (trust auth locally), so it reaches our output paths.
    dsn = psycopg.conninfo.make_conninfo(empty_dsn, password="Sup3rS3cret")
    for proc in (run_cli("migrate", "--dsn", dsn), run_cli("db", "status", "--dsn", dsn)):
        assert "Sup3rS3cret" not in proc.stdout + proc.stderr
    assert "****" in run_cli("db", "status", "--dsn", dsn).stdout


def test_legacy_refusal_exit_1_lists_rows(run_cli, legacy_dsn):
    with psycopg.connect(legacy_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO execution_tasks (task_type, status) VALUES ('implement_idea', 'done')")
    proc = run_cli("migrate", "--dsn", legacy_dsn)
    assert proc.returncode == 1
    assert "violate" in proc.stderr and "id=5: status 'done'" in proc.stderr and "Traceback" not in proc.stderr


def test_legacy_adoption_via_cli(run_cli, legacy_dsn):
    proc = run_cli("migrate", "--dsn", legacy_dsn)
    assert proc.returncode == 0 and "adopted legacy execution_tasks" in proc.stdout
    with psycopg.connect(legacy_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM execution_tasks").fetchone()[0] == 4


def test_refused_port(run_cli):
    proc = run_cli("db", "status", "--dsn", "postgresql://postgres:pw@127.0.0.1:1/fsar")
    assert_one_line_error(proc, 2, "127.0.0.1:1/fsar", "connection refused")
    assert "pw@" not in proc.stderr


def test_unknown_host(run_cli):
    proc = run_cli("migrate", "--dsn", "postgresql://postgres:pw@no-such-host.invalid:5432/fsar")
    assert_one_line_error(proc, 2, "no-such-host.invalid:5432/fsar", "unknown host")


def test_unresponsive_host_times_out(run_cli):
    # A socket that accepts TCP but never speaks: libpq gives up at connect_timeout,
    # as it does for a firewalled host (this sandbox refuses unrouted addresses at once).
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        proc = run_cli("db", "status", "--dsn", f"postgresql://postgres@127.0.0.1:{port}/fsar?connect_timeout=2")
    assert_one_line_error(proc, 2, f"127.0.0.1:{port}/fsar", "timed out")


def test_missing_database(run_cli, server_dsn):
    dsn = psycopg.conninfo.make_conninfo(server_dsn, dbname="fsar_no_such_db")
    proc = run_cli("migrate", "--dsn", dsn)
    assert_one_line_error(proc, 2, "/fsar_no_such_db", "database fsar_no_such_db does not exist")


@pytest.fixture(scope="module")
def password_server():
    from support.pgcluster import Cluster

    cluster = Cluster(password="right-password").start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def test_wrong_password(run_cli, password_server):
    proc = run_cli("db", "status", "--dsn", password_server.dsn(password="wrong-password"))
    assert_one_line_error(proc, 2, f"127.0.0.1:{password_server.port}/postgres", "password authentication failed")
    assert "wrong-password" not in proc.stderr
    ok = run_cli("db", "status", "--dsn", password_server.dsn(password="right-password"))
    assert ok.returncode == 0 and "right-password" not in ok.stdout and "****" in ok.stdout


def test_unknown_revision_exit_2(run_cli, db_dsn):
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'abc123_from_the_future'")
    for args in (("migrate",), ("db", "status")):
        proc = run_cli(*args, "--dsn", db_dsn)
        assert_one_line_error(proc, 2, "abc123_from_the_future")


@pytest.mark.parametrize(
    "args,needle",
    [
        (("--no-such-flag",), "unrecognized arguments"),
        (("migrate", "--to", "nonexistent"), "unknown revision"),
        (("migrate", "--to", "0002", "--downgrade", "0001"), "not allowed with"),
        (("db",), "required"),
        (("frobnicate",), "invalid choice"),
        (("db", "status", "--statement-timeout-ms", "soon"), "invalid int"),
        (("db", "status", "--config", "/nonexistent/config.toml"), "config file not found"),
        (("db", "status", "--dsn", "host=h port='unterminated"), "invalid DSN"),
    ],
)
def test_usage_errors_exit_2(run_cli, args, needle, server_dsn):
    extra = () if "--dsn" in args else ("--dsn", server_dsn)
    # Usage errors must be reported before any database work.
    proc = run_cli(*args, *extra) if args[0] != "frobnicate" and args != ("db",) else run_cli(*args)
    assert_one_line_error(proc, 2, needle)


def test_upgrade_target_below_current_is_usage_error(run_cli, db_dsn):
    proc = run_cli("migrate", "--to", "0002", "--dsn", db_dsn)
    assert_one_line_error(proc, 2, "--downgrade")
