"""The simulator fails loudly: an unreachable database or a role that may not run the
fleet is one line and exit 2 before any worker starts; the enqueuer outlives a database
restart like the workers do; and a part of the fleet that dies ends the run with exit 1."""

from __future__ import annotations

import signal
import time

from psycopg.conninfo import make_conninfo

from support.simulate import run_simulate as sim
from support.simulate import start_simulate
from support.sql import q


def test_an_unreachable_database_is_one_line_and_exit_2(isolated_env):
    done = sim("postgresql://postgres@127.0.0.1:1/nowhere", isolated_env, "--duration", "3")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "cannot connect" in done.stderr
    assert "claimed" not in done.stderr  # no pretend run


def test_a_viewer_cannot_run_the_fleet_and_is_told_once(db_dsn, login, isolated_env):
    viewer = login("fsar_viewer")
    done = sim(viewer, isolated_env, "--duration", "3", "--workers", "4")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "may not claim or finish tasks" in lines[0], lines
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks") == [(0,)]


def test_the_enqueuer_goes_on_after_a_database_restart(own_cluster, isolated_env):
    from fsar_tui.db.migrations import migrate

    dsn = own_cluster.dsn()
    migrate(dsn)
    proc = start_simulate(
        dsn, isolated_env, "--rate", "50", "--workers", "2", "--time-scale", "0.01", "--duration", "25"
    )
    try:
        deadline = time.monotonic() + 30
        while q(dsn, "SELECT count(*) FROM execution_tasks")[0][0] < 50:
            assert time.monotonic() < deadline, "nothing enqueued"
            time.sleep(0.2)
        own_cluster.restart()
        restarted = q(dsn, "SELECT now()")[0][0]
        deadline = time.monotonic() + 20
        while q(dsn, "SELECT count(*) FROM execution_tasks WHERE created_at > %s", (restarted,))[0][0] < 50:
            assert time.monotonic() < deadline, "the enqueuer did not come back after the restart"
            time.sleep(0.2)
    finally:
        # Proven: stop the run (the simulator's own clean stop) rather than wait out --duration.
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_a_fleet_part_that_dies_ends_the_run_with_exit_1(db_dsn, isolated_env):
    # The enqueuer meets a refusal that no reconnect cures (its INSERTs are forbidden
    # mid-run): the run must not carry on as if it were healthy.
    role = f"sim_{abs(hash(db_dsn)) % 10**8}"
    from support.sql import x

    x(db_dsn, f"CREATE ROLE {role} LOGIN")
    try:
        x(db_dsn, f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}")
        x(db_dsn, f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        x(db_dsn, f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role}")
        dsn = make_conninfo(db_dsn, user=role)
        proc = start_simulate(dsn, isolated_env, "--rate", "20", "--workers", "1", "--duration", "20")
        deadline = time.monotonic() + 20
        while q(db_dsn, "SELECT count(*) FROM execution_tasks")[0][0] < 5:
            assert time.monotonic() < deadline, "nothing enqueued"
            time.sleep(0.2)
        x(db_dsn, f"REVOKE INSERT ON execution_tasks FROM {role}")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "the enqueuer stopped" in err and "permission denied" in err and "Traceback" not in err
    finally:
        x(db_dsn, f"DROP OWNED BY {role}")
        x(db_dsn, f"DROP ROLE {role}")
