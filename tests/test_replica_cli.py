"""The CLI with a read replica: commands that only read connect to `--read-dsn` /
FSAR_READ_DSN (commands/base.py `read_connect`), commands that write to `--dsn`.

Replay paused on the replica: a task inserted on the primary is not what `tasks list` or
`tasks show` see, `tasks cancel` of it works (the primary), and the operator-log entry
it made is not in `log list` until the replica has replayed it. The other read-only
commands run on the hot standby as they are (a write among them would be refused there).
"""

from __future__ import annotations

import json

import pytest

from support.replica import replica_db_fixture, replica_pair_fixture  # noqa: F401 — fixtures
from support.sql import q, x

pytestmark = pytest.mark.services


def test_commands_that_only_read_use_the_read_dsn_and_writes_the_primary(replica_db, run_cli, isolated_env):
    primary = replica_db.primary
    x(primary, "INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, 3)")
    replica_db.wait_caught_up()
    replica_db.pause()
    ((new,),) = q(primary, "INSERT INTO execution_tasks (task_type) VALUES ('only_on_the_primary') RETURNING id")
    env = {**isolated_env, "FSAR_DSN": primary, "FSAR_READ_DSN": replica_db.replica}

    listed = run_cli("tasks", "list", "--format", "json", env={**env, "FSAR_REPLICA_STALE_S": "0.001"})
    assert listed.returncode == 0, listed.stderr
    assert new not in {t["id"] for t in json.loads(listed.stdout)} and len(json.loads(listed.stdout)) == 3
    # The data came from a replica behind: one stderr line says so.
    assert listed.stderr.count("read from a replica") == 1 and " behind" in listed.stderr, listed.stderr
    # "does not exist" on a replica behind is asked of the primary before it is said.
    shown = run_cli("tasks", "show", str(new), env=env)
    assert shown.returncode == 0 and "only_on_the_primary" in shown.stdout, (shown.stdout, shown.stderr)
    assert run_cli("tasks", "show", "999999", env=env).returncode == 1

    cancelled = run_cli("tasks", "cancel", str(new), "--reason", "replica test", "--yes", env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert q(primary, "SELECT status FROM execution_tasks WHERE id = %s", (new,)) == [("cancelled",)]
    log = run_cli("log", "list", "--format", "json", env=env)
    assert log.returncode == 0, log.stderr
    assert json.loads(log.stdout) == []  # the cancel's log entry is on the primary only, so far

    # The other read-only commands, on the hot standby.
    readers = [("profile",), ("roi",), ("report",), ("audit", "gates"), ("alerts", "list"), ("rollouts", "list")]
    for args in [*readers, ("proposals", "list")]:
        proc = run_cli(*args, env=env)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)

    replica_db.resume()
    replica_db.wait_caught_up()
    log = run_cli("log", "list", "--format", "json", env=env)
    assert [entry["action"] for entry in json.loads(log.stdout)] == ["task.cancel"]
    listed = run_cli("tasks", "list", "--format", "json", env=env)
    assert {t["id"]: t["status"] for t in json.loads(listed.stdout)}[new] == "cancelled"


def test_a_read_dsn_that_is_down_or_not_this_databases_replica_falls_back_to_the_primary(
    replica_db, run_cli, isolated_env
):
    from psycopg.conninfo import make_conninfo

    from support.pgcluster import free_port

    primary = replica_db.primary
    x(primary, "INSERT INTO execution_tasks (task_type) VALUES ('on_the_primary')")
    for read_dsn, why in (
        (make_conninfo(replica_db.replica, port=str(free_port())), "reads: primary (replica unreachable: "),
        (replica_db.pair.replica_dsn("postgres"), "reads: primary (read DSN is not a replica of this database)"),
        (replica_db.pair.primary_dsn("postgres"), "reads: primary (read DSN is not a replica: not in recovery)"),
    ):
        env = {**isolated_env, "FSAR_DSN": primary, "FSAR_READ_DSN": read_dsn}
        listed = run_cli("tasks", "list", "--format", "json", env=env)
        assert listed.returncode == 0, listed.stderr
        assert [t["task_type"] for t in json.loads(listed.stdout)] == ["on_the_primary"]
        assert listed.stderr.count(why) == 1, (why, listed.stderr)
