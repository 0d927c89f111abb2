"""Drift alerts end to end: hourly indicators from the rollups, the detector, alerts that
open, refresh, are acknowledged with a reason, and resolve by themselves."""

from __future__ import annotations

from datetime import UTC, timedelta

from fsar_tui import clock
from fsar_tui.db import drift
from fsar_tui.db.connect import connect
from fsar_tui.domain.rollup_windows import floor_hour
from support.sql import q, x


def hourly_tasks(dsn, *, hours=66, per_hour=40, failing=range(12, 21)):
    """per_hour finished implement_idea tasks in each of the last `hours` complete hours;
    3–5 of them fail, except in the hours back listed in `failing`, where half fail."""
    x(
        dsn,
        """
        INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, finished_at,
                                     result, input_tokens, output_tokens, cost_minor, currency)
        SELECT 'implement_idea', 'gpt-4o',
               CASE WHEN i <= CASE WHEN h = ANY(%(failing)s) THEN %(per)s / 2 ELSE 3 + h %% 3 END
                    THEN 'failed' ELSE 'succeeded' END,
               1, at - interval '2 minutes', at - make_interval(secs => 20 + i %% 7), at, '{"ok": 1}', 50, 50, 3, 'USD'
        FROM generate_series(1, %(hours)s) h, generate_series(1, %(per)s) i,
             LATERAL (SELECT date_trunc('hour', now()) - make_interval(hours => h) + make_interval(secs => i * 60) AS
                 at) t
        """,
        {"hours": hours, "per": per_hour, "failing": list(failing)},
    )
    x(dsn, "SELECT fsar_fold_duration_samples()")


def run(dsn, now):
    with connect(dsn, autocommit=True) as conn:
        return drift.apply(conn, drift.detect_all(conn, now))


def test_step_in_failure_rate_opens_an_alert_that_resolves_itself(db_dsn, run_cli):
    hourly_tasks(db_dsn)
    now = clock.now()
    # Evaluated as if it were 12 hours ago, the failing hours are the newest: firing.
    firing, _ = run(db_dsn, floor_hour(now) - timedelta(hours=11))
    assert firing == 1
    alerts = q(
        db_dsn,
        "SELECT id, indicator, scope, state, baseline::float8, current::float8, details->>'direction' "
        "FROM drift_alerts",
    )
    ((alert_id, indicator, scope, state, baseline, current, direction),) = alerts
    assert (indicator, scope, state, direction) == (
        "failure_rate",
        {"task_type": "implement_idea", "ai_model": "gpt-4o"},
        "firing",
        "up",
    )
    assert baseline < 0.15 and current == 0.5
    # Run times and cost did not change: no alert for them. Running again refreshes, not duplicates.
    assert run(db_dsn, floor_hour(now) - timedelta(hours=11))[0] == 1
    assert q(db_dsn, "SELECT count(*) FROM drift_alerts") == [(1,)]

    listed = run_cli("alerts", "list", "--dsn", db_dsn)
    assert listed.returncode == 0 and f"#{alert_id} FIRING failure_rate" in listed.stdout
    assert run_cli("alerts", "ack", str(alert_id), "--dsn", db_dsn).returncode == 2  # a reason is required
    acked = run_cli("alerts", "ack", str(alert_id), "--reason", "deploy of new prompt, watching", "--dsn", db_dsn)
    assert acked.returncode == 0, acked.stderr
    assert q(db_dsn, "SELECT state, ack_reason FROM drift_alerts") == [("acked", "deploy of new prompt, watching")]
    assert q(db_dsn, "SELECT action, target FROM operator_actions") == [("alert_ack", f"alert:{alert_id}")]
    twice = run_cli("alerts", "ack", str(alert_id), "--reason", "again", "--dsn", db_dsn)
    assert twice.returncode == 1 and "not firing" in twice.stderr
    # Still shifted: an acked alert stays acked (refreshed, not reopened).
    run(db_dsn, floor_hour(now) - timedelta(hours=11))
    assert q(db_dsn, "SELECT state FROM drift_alerts") == [("acked",)]

    # Now: the failure rate has been back to normal for 12 hours: the alert resolves itself.
    _, resolved = run(db_dsn, now)
    assert resolved == 1
    assert q(db_dsn, "SELECT state, resolved_at IS NOT NULL FROM drift_alerts") == [("resolved", True)]


def test_stationary_history_raises_no_alert(db_dsn):
    hourly_tasks(db_dsn, failing=())
    firing, resolved = run(db_dsn, clock.now())
    assert (firing, resolved) == (0, 0)
    assert q(db_dsn, "SELECT count(*) FROM drift_alerts") == [(0,)]


def test_too_little_history_is_no_verdict(db_dsn):
    hourly_tasks(db_dsn, hours=20, failing=range(1, 8))
    with connect(db_dsn, autocommit=True) as conn:
        signals = drift.detect_all(conn)
    assert signals and all(s.verdict.insufficient and not s.verdict.firing for s in signals)


def test_hours_with_only_failures_or_only_successes_are_values_not_errors():
    from datetime import datetime

    h = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        (h, "t", "m", None, 25, 25, 100.0, None, None),  # every task failed, none ran to a run time row
        (h, "u", "m", 30, None, 30, None, 10, 30),
    ]  # no failures, no cost rows
    series = drift.hourly_series(rows, [h])
    assert series[("failure_rate", "t", "m")] == [1.0] and series[("cost_per_task", "t", "m")] == [4.0]
    assert series[("p90_run_time", "t", "m")] == [None]
    assert series[("failure_rate", "u", "m")] == [0.0] and series[("cost_per_task", "u", "m")] == [None]
