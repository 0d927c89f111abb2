"""Long-running commands and an unreachable database (issue 18, point 6): at start, one
line and exit 2 before anything runs; lost for good mid-run, the run ends with one line
saying so and exit 2 — never a "claimed 0 …" summary with exit 0 as if it had worked."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from support.simulate import start_simulate
from support.sql import q

NOWHERE = "postgresql://postgres:secret@127.0.0.1:1/nowhere"


def run(env, *args, timeout=90):
    return subprocess.run(
        [sys.executable, "-m", "fsar_tui", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "args",
    [
        ("simulate", "--duration", "3"),
        ("simulate", "--duration", "3", "--processes", "2"),
        ("simulate", "--no-enqueue", "--until-idle"),
        ("webhook", "--port", "0"),
        ("seed", "--days", "1", "--tasks", "10"),
        ("audit", "run"),
    ],
    ids=lambda a: " ".join(a),
)
def test_unreachable_at_start_is_one_line_and_exit_2(isolated_env, args):
    if args[0] == "webhook":
        from support.pgcluster import free_port

        args = ("webhook", "--port", str(free_port()))
    done = run({**isolated_env, "FSAR_DSN": NOWHERE}, *args)
    assert done.returncode == 2, (done.returncode, done.stderr)
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fsar-tui: "), err
    assert "connection refused" in err and "secret" not in err and "Traceback" not in done.stderr
    assert "claimed" not in done.stderr


def test_a_database_lost_for_good_mid_run_ends_the_simulator_with_exit_2(own_cluster, isolated_env):
    from fsar_tui.db.migrations import migrate

    dsn = own_cluster.dsn()
    migrate(dsn)
    proc = start_simulate(
        dsn,
        isolated_env,
        "--rate",
        "50",
        "--workers",
        "2",
        "--processes",
        "2",
        "--time-scale",
        "0.01",
        "--outage-limit",
        "5",
    )
    try:
        deadline = time.monotonic() + 30
        while q(dsn, "SELECT count(*) FROM execution_tasks")[0][0] < 20:
            assert time.monotonic() < deadline and proc.poll() is None, "nothing enqueued"
            time.sleep(0.2)
        own_cluster.stop()
        _, err = proc.communicate(timeout=120)  # no --duration: only the lost database ends it
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert lines[-1].startswith("fsar-tui: simulator: database unreachable for "), lines
    assert "connection refused" in lines[-1], lines
    # The parent prints no summary as if it had run (a child stopped by it still reports its own).
    assert not any(line.startswith("simulator (pid") for line in lines), lines
    assert "Traceback" not in err
