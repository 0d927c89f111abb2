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

    listed = run_cli("tasks", "list", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert new not in {t["id"] for t in json.loads(listed.stdout)} and len(json.loads(listed.stdout)) == 3
    shown = run_cli("tasks", "show", str(new), env=env)
    assert shown.returncode == 1 and "does not exist" in shown.stderr, (shown.stdout, shown.stderr)
    # Without a read DSN the same command reads the primary, where it is.
    assert run_cli("tasks", "show", str(new), env={**env, "FSAR_READ_DSN": ""}).returncode == 0

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
