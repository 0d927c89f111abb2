"""The seeder's bulk path (issue 18, point 3): the tasks' row triggers stay silent while it
loads, and the rollups it computes in bulk (db/bulk_rollups.py) are the ones folding
every loaded task's sample row by row gives — counts exactly, totals to rounding — on a
fresh database and on one that already holds rollups (a second seed)."""

from __future__ import annotations

import math
import time

import psycopg

from fsar_tui.db import profiles as profile_queries
from fsar_tui.sim.seed import seed_history
from support.sql import q, x

ROLLUP_KEY = "grain, start, rollout_revision_id, task_type, ai_model, outcome, metric, bucket, currency"
COST_KEY = "day, task_type, ai_model, rollout_revision_id, idea_id, currency"


def rollups(conn: psycopg.Connection) -> dict[str, dict[tuple, tuple]]:
    """The rollup tables keyed by their keys. Hourly rows from the hour the 4-day window
    begins are left out: the two computations run a moment apart, and that hour's rows
    depend on exactly when."""
    duration = {
        r[:9]: r[9:]
        for r in conn.execute(
            f"SELECT {ROLLUP_KEY}, n, total FROM duration_rollups "
            "WHERE n <> 0 AND (grain >= 0 OR start > now() - interval '4 days')"
        ).fetchall()
    }
    cost = {
        r[:6]: r[6:]
        for r in conn.execute(
            f"SELECT {COST_KEY}, tasks_succeeded, tasks_failed, tasks_cancelled, model_cost_minor, "
            "compute_cost_minor, failed_cost_minor, waste_minor, unpriced_attempts FROM cost_rollups"
        ).fetchall()
    }
    sketches = {
        r[:7]: r[7:]
        for r in conn.execute(
            "SELECT grain, start, task_type, ai_model, outcome, metric, currency, buckets, counts, total "
            "FROM duration_sketches"
        ).fetchall()
    }
    return {"duration": duration, "cost": cost, "sketches": sketches}


def folded_row_by_row(dsn: str) -> dict[str, dict[tuple, tuple]]:
    """What the trigger's path gives for the same tasks: every finished task's sample
    folded (profiles.count_loaded), from empty rollups; rolled back after reading."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET statement_timeout = 0")
        conn.execute("TRUNCATE duration_rollups, cost_rollups, duration_sketches, duration_sketch_dirty")
        low, high = conn.execute("SELECT min(id), max(id) FROM execution_tasks").fetchone()
        profile_queries.count_loaded(conn, low, high)
        folded = rollups(conn)
        conn.rollback()
    return folded


def assert_same(bulk: dict[str, dict[tuple, tuple]], folded: dict[str, dict[tuple, tuple]]) -> None:
    for table in ("duration", "cost", "sketches"):
        assert bulk[table].keys() == folded[table].keys(), table
        for key, values in bulk[table].items():
            for a, b in zip(values, folded[table][key], strict=True):
                if isinstance(a, float):  # a sum of floats: the order of adding differs
                    assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), (table, key, a, b)
                else:
                    assert a == b, (table, key, a, b)
    assert len(bulk["duration"]) > 1000 and bulk["sketches"]  # the comparison compared something


def row_trigger_calls(dsn: str) -> dict[str, int]:
    rows = q(
        dsn,
        "SELECT funcname::text, calls FROM pg_stat_user_functions WHERE funcname IN "
        "('fsar_task_status_changed', 'fsar_task_counts_changed', 'fsar_task_rollups_changed', 'fsar_price_attempt')",
    )
    return dict(rows)


def test_seed_calls_no_row_trigger_and_leaves_them_enabled(db_dsn):
    # Function call counts (superuser setting; the test server's role is one).
    dbname = q(db_dsn, "SELECT current_database()")[0][0]
    x(db_dsn, f'ALTER DATABASE "{dbname}" SET track_functions = pl')
    x(db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('implement_idea', 'gpt-4o')")
    deadline = time.monotonic() + 30
    while "fsar_task_status_changed" not in row_trigger_calls(db_dsn):  # the statistics are flushed
        assert time.monotonic() < deadline, "function statistics never arrived"
        time.sleep(0.2)
    before = row_trigger_calls(db_dsn)
    seed_history(db_dsn, days=3, tasks=2_000, seed=3)
    time.sleep(1.5)  # a backend flushes its statistics at most once a second, and at exit
    assert row_trigger_calls(db_dsn) == before
    enabled = q(
        db_dsn,
        "SELECT DISTINCT tgenabled FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgrelid IN (SELECT 'execution_tasks'::regclass UNION SELECT inhrelid FROM pg_inherits "
        "WHERE inhparent = 'execution_tasks'::regclass)",
    )
    assert enabled == [("O",)]
    assert q(
        db_dsn,
        "SELECT DISTINCT tgenabled FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgrelid IN ('ledger_entries'::regclass, 'stripe_events'::regclass)",
    ) == [("O",)]
    # And they fire again afterwards: one more task is one more event and one more count.
    events = q(db_dsn, "SELECT count(*) FROM task_events")[0][0]
    x(db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('implement_idea', 'gpt-4o')")
    assert q(db_dsn, "SELECT count(*) FROM task_events")[0][0] == events + 1


def test_bulk_rollups_are_the_folds_on_a_fresh_database_and_over_existing_ones(db_dsn):
    seed_history(db_dsn, days=10, tasks=3_000, seed=5)
    with psycopg.connect(db_dsn) as conn:
        first = rollups(conn)
    assert_same(first, folded_row_by_row(db_dsn))
    # A second seed adds to the rollups the first one wrote (ON CONFLICT … n + n).
    seed_history(db_dsn, days=10, tasks=2_000, seed=6)
    with psycopg.connect(db_dsn) as conn:
        second = rollups(conn)
    assert_same(second, folded_row_by_row(db_dsn))
    assert sum(n for n, _ in second["duration"].values()) > sum(n for n, _ in first["duration"].values())


def test_the_payment_funnel_counted_in_bulk_is_the_triggers(db_dsn):
    seed_history(db_dsn, days=5, tasks=3_000, seed=7)
    funnel = "SELECT day, stage, currency, reason, n FROM payment_funnel_daily WHERE n <> 0 ORDER BY 1, 2, 3, 4"
    bulk = q(db_dsn, funnel)
    assert {row[1] for row in bulk} == {"created", "succeeded", "failed"}
    with psycopg.connect(db_dsn) as conn:  # the same events through the trigger, one by one; rolled back
        conn.execute("TRUNCATE payment_funnel_daily")
        conn.execute("CREATE TEMP TABLE loaded AS SELECT * FROM stripe_events")
        conn.execute("DELETE FROM stripe_events")
        conn.execute("INSERT INTO stripe_events SELECT * FROM loaded")
        by_trigger = conn.execute(funnel).fetchall()
        conn.rollback()
    assert bulk == by_trigger
