"""The drift bound (issue 16 point 4): drift alerts and gates see every finished task, folded
into the hour rollups or not, so one audit pass after an hour closes judges it — however
quiet the system is afterwards.

The row trigger folds samples into the rollups on about one change in 256. The tests
write their newest tasks through every trigger with that fold made a no-op (and check
afterwards that nothing was folded), which is the state a quiet system stays in: samples
pending, no hour rows for them, and no later traffic to fold them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fsar_tui.db import drift
from fsar_tui.db.connect import connect
from fsar_tui.services.audit_pass import scheduled_check
from support.sql import q, x

FOLD = "fsar_fold_duration_samples()"
SCOPE = {"task_type": "implement_idea", "ai_model": "gpt-4o"}

TASKS_SQL = """
    INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, finished_at,
                                 result, input_tokens, output_tokens, cost_minor, currency)
    SELECT %(type)s, 'gpt-4o', CASE WHEN i <= %(failed)s THEN 'failed' ELSE 'succeeded' END,
           1, at - interval '2 minutes', at - make_interval(secs => 20 + i %% 7), at, '{"ok": 1}', 50, 50, 3, 'USD'
    FROM generate_series(%(first)s::int, %(last)s::int) h, generate_series(1, %(per)s::int) i,
         LATERAL (SELECT date_trunc('hour', now()) - make_interval(hours => h)
                         + make_interval(secs => i * 3000.0 / %(per)s::int) AS at) t"""


def write_hours(dsn, first, last, *, per, failed, task_type="implement_idea"):
    """`per` finished tasks (the first `failed` of them failed) in each complete hour from
    `first` to `last` hours back, inserted as a worker leaves them: every trigger runs."""
    x(dsn, TASKS_SQL, {"type": task_type, "first": first, "last": last, "per": per, "failed": failed})


@contextmanager
def no_random_fold(dsn) -> Iterator[None]:
    """While inside, the trigger's 1-in-256 fold does nothing (the other triggers run as
    ever); the fold's own definition is put back afterwards."""
    definition = q(dsn, f"SELECT pg_get_functiondef('{FOLD}'::regprocedure)")[0][0]
    x(dsn, f"CREATE OR REPLACE FUNCTION {FOLD} RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$")
    try:
        yield
    finally:
        x(dsn, definition)


def quiet_system_with_new_failures(dsn):
    """60 hours of history (40 tasks an hour, 1–3 failed: ~5 %), folded; then the issue's
    case: 240 failures in the last six complete hours (40 of 240 an hour: 16.7 %), not
    folded, and nothing after them."""
    x(
        dsn,
        TASKS_SQL.replace("i <= %(failed)s", "i <= 1 + h %% 3"),
        {"type": "implement_idea", "first": 7, "last": 66, "per": 40, "failed": 0},
    )
    x(dsn, f"SELECT {FOLD}")
    with no_random_fold(dsn):
        write_hours(dsn, 1, 6, per=240, failed=40)
    assert_unfolded(dsn, hours=6, tasks=6 * 240)


def assert_unfolded(dsn, *, hours, tasks):
    """The newest hours' tasks are samples only: no hour rollup row holds them."""
    since = f"date_trunc('hour', now()) - interval '{hours} hours'"
    assert q(dsn, f"SELECT coalesce(sum(n), 0)::int FROM task_duration_samples WHERE finished_at >= {since}") == [
        (tasks,)
    ]
    assert q(dsn, f"SELECT count(*) FROM duration_rollups WHERE grain = -1 AND start >= {since}") == [(0,)]


def firing(dsn):
    return q(dsn, "SELECT indicator, scope, current::float8 FROM drift_alerts WHERE state = 'firing'")


def test_profile_sees_the_unfolded_failures(db_dsn, run_cli):
    quiet_system_with_new_failures(db_dsn)
    out = run_cli("profile", "--window", "6h", "--format", "json", "--dsn", db_dsn)
    assert out.returncode == 0, out.stderr
    (group,) = json.loads(out.stdout)["groups"]
    assert (group["n"], group["failure_rate"]) == (6 * 240, round(40 / 240, 4))


def test_one_scheduled_pass_as_an_operator_raises_the_alert(db_dsn, login):
    quiet_system_with_new_failures(db_dsn)
    assert firing(db_dsn) == []
    check = scheduled_check(login("fsar_operator"), read_only=False)  # as the app's pass runs in production
    assert check.alerts_firing == 1
    assert firing(db_dsn) == [("failure_rate", SCOPE, pytest.approx(40 / 240))]


def test_one_audit_run_as_an_operator_raises_the_alert(db_dsn, login, run_cli):
    quiet_system_with_new_failures(db_dsn)
    out = run_cli("audit", "run", "--dsn", login("fsar_operator"))
    assert out.returncode == 0, out.stderr
    assert "drift: 1 alert(s) firing" in out.stdout
    assert firing(db_dsn) == [("failure_rate", SCOPE, pytest.approx(40 / 240))]


def test_hourly_indicators_are_the_same_before_and_after_the_fold(db_dsn):
    """Pending samples are read as the fold would add them: every indicator of every hour
    (counts, failures, cost, the p90 bucket) is unchanged by folding — retries (samples
    of −1) and cancels included."""
    write_hours(db_dsn, 1, 30, per=30, failed=4)
    write_hours(db_dsn, 2, 5, per=25, failed=20, task_type="self_improvement")
    with no_random_fold(db_dsn):
        write_hours(db_dsn, 1, 3, per=50, failed=9, task_type="idea_implementation")
        x(db_dsn, "UPDATE execution_tasks SET status = 'queued', finished_at = NULL WHERE id % 11 = 0")
        x(db_dsn, "UPDATE execution_tasks SET status = 'cancelled' WHERE id % 13 = 0 AND status = 'succeeded'")
    assert q(db_dsn, "SELECT count(*) > 0 FROM task_duration_samples WHERE n < 0") == [(True,)]

    def hourly():
        with connect(db_dsn, autocommit=True) as conn:
            return drift.hourly_rows(conn)

    before = hourly()
    x(db_dsn, f"SELECT {FOLD}")
    assert q(db_dsn, "SELECT count(*) FROM task_duration_samples") == [(0,)]
    assert before == hourly() and len(before) == 30 + 4 + 3  # (hour, type) pairs


def test_a_failure_rate_gate_sees_the_unfolded_hour(db_dsn, login, run_cli):
    """Gates read the profiles (db/profiles.py), which add the pending samples in: a hard
    failure_rate gate over 1h fails — and blocks its scope — on the first pass."""
    x(
        db_dsn,
        "INSERT INTO audit_gates (name, metric, scope, time_window, comparator, threshold, hard, enabled) "
        "VALUES ('idea-failures', 'failure_rate', '{\"task_type\": \"idea_implementation\"}', '1 hour', '<', 0.2, "
        "true, true)",
    )
    with no_random_fold(db_dsn):
        write_hours(db_dsn, 1, 1, per=40, failed=20, task_type="idea_implementation")
    assert_unfolded(db_dsn, hours=1, tasks=40)
    operator = login("fsar_operator")
    check = scheduled_check(operator, read_only=False)
    assert check.failing_hard == ["idea-failures"]
    verdicts = "SELECT r.verdict, r.value::float8, r.sample_size FROM audit_runs r JOIN audit_gates g ON g.id = gate_id"
    assert q(db_dsn, verdicts + " WHERE g.name = 'idea-failures'") == [("fail", 0.5, 40)]
    assert q(db_dsn, "SELECT task_type FROM execution_blocks WHERE source = 'gate' AND ref = 'idea-failures'") == [
        ("idea_implementation",)
    ]
    out = run_cli("audit", "run", "--gate", "idea-failures", "--dsn", operator)
    assert out.returncode == 1 and out.stdout.startswith("FAIL"), out.stdout + out.stderr
