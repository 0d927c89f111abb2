"""Issue 16 point 7: the demo's simulator keeps up with what it enqueues. The demo's rate
defaults to what its workers sustain (sim/profiles.sustainable_rate), and a real
simulator run at that rate — scaled down so the test is short — drains its queue:
priority-0 tasks, and retried ones (which re-enter at their priority), run too."""

from __future__ import annotations

import pytest

from fsar_tui.commands.fleet import DEMO_TIME_SCALE, DEMO_WORKERS
from fsar_tui.sim.profiles import sustainable_rate
from support.sql import q

pytestmark = pytest.mark.services


def test_the_demo_default_moves_visibly():
    assert sustainable_rate(DEMO_WORKERS, DEMO_TIME_SCALE) >= 1.0  # at least a task a second


@pytest.mark.slow
def test_a_fleet_at_its_sustainable_rate_leaves_no_priority_waiting(db_dsn, run_cli):
    workers, scale = 4, 0.005
    rate = sustainable_rate(workers, scale)
    done = run_cli(
        "simulate", "--workers", str(workers), "--time-scale", str(scale), "--rate", f"{rate:.2f}",
        "--duration", "20", "--lease", "5", "--dsn", db_dsn, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ((enqueued, by_low, retried_ran),) = q(
        db_dsn,
        """SELECT count(*), count(*) FILTER (WHERE priority = 0 AND status <> 'queued'),
                  count(*) FILTER (WHERE attempt >= 2)
           FROM execution_tasks""",
    )
    ((waiting,),) = q(
        db_dsn,
        "SELECT count(*) FROM execution_tasks WHERE status = 'queued' AND queued_at < now() - interval '10 seconds'",
    )
    assert enqueued >= rate * 10  # it really ran at that rate
    assert by_low > 0 and retried_ran > 0  # low priorities and retries got workers
    assert waiting <= workers, waiting  # nothing left waiting long: the queue keeps draining
