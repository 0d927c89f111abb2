"""Revision 0034: a task whose times are ±infinity cannot stop the rollups, the writers or
the commands that fold.

Before it, one finished task at finished_at = 'infinity' (or '-infinity') queued a sample
every later fold failed on ("cannot convert infinity to integer"), so the samples never
folded again and `fsar-tui retention run` and `profile --backfill` failed on every run;
a non-finite time next to a started_at failed the finishing write itself ("cannot
subtract infinite timestamps"), the lease reaper's whole batch included; and the bulk
path (db/bulk_rollups.py) failed on such a task. Each test below fails on 0033."""

from __future__ import annotations

import json
import math

import psycopg
import pytest

from fsar_tui.db import executor
from fsar_tui.db import profiles as profile_queries
from fsar_tui.db.bulk_rollups import add_loaded_rollups
from fsar_tui.db.migrations import downgrade, migrate
from support.sql import q, x

BEFORE = "0033_count_delta_order"
NOW = "now() - interval '1 hour'"
EARLIER = "now() - interval '2 hours'"

# (label, status, created_at, queued_at, started_at, finished_at) as SQL expressions.
TASKS = [
    ("the repro", "cancelled", "'-infinity'", "'-infinity'", "NULL", "'infinity'"),
    ("finished at -infinity", "failed", EARLIER, EARLIER, "NULL", "'-infinity'"),
    ("ran, finished at infinity", "succeeded", EARLIER, EARLIER, EARLIER, "'infinity'"),
    ("started at -infinity", "succeeded", EARLIER, EARLIER, "'-infinity'", NOW),
    ("started at infinity", "failed", EARLIER, EARLIER, "'infinity'", NOW),
    ("queued at -infinity", "succeeded", "'-infinity'", "'-infinity'", EARLIER, NOW),
    ("queued at infinity", "succeeded", EARLIER, "'infinity'", EARLIER, NOW),
    ("finished in year 20000", "succeeded", EARLIER, EARLIER, EARLIER, "'20000-01-01 00:00+00'"),
    ("all in 4713 BC", "failed", "'4713-01-01 BC'", "'4713-01-01 BC'", "'4713-01-01 BC'", "'4713-01-02 BC'"),
    ("ordinary", "succeeded", EARLIER, EARLIER, EARLIER, NOW),
]
FINITE_FINISH = len(TASKS) - 3  # every task but the first three
RAN = {  # tasks whose run time (finished − started) and queue wait (started − queued) are finite
    "run": {"queued at -infinity", "queued at infinity", "finished in year 20000", "all in 4713 BC", "ordinary"},
    "wait": {"finished in year 20000", "all in 4713 BC", "ordinary"},
}


def insert_tasks(dsn: str, tasks=TASKS, *, bulk: bool = False) -> list[int]:
    """The tasks as the executing side writes them (row triggers on, unless `bulk`)."""
    with psycopg.connect(dsn) as conn:
        if bulk:  # as the seeder loads: the triggers skip the rows (the test runs as the owner)
            conn.execute("SET LOCAL fsar.bulk_load = 'on'")
        return [
            conn.execute(
                "INSERT INTO execution_tasks (task_type, status, created_at, queued_at, started_at, finished_at, "
                f"ai_model, attempt) VALUES ('infinite', %s, {created}, {queued}, {started}, {finished}, 'm', 1) "
                "RETURNING id",
                (status,),
            ).fetchone()[0]
            for _, status, created, queued, started, finished in tasks
        ]


def fold(dsn: str) -> None:
    x(dsn, "SELECT fsar_fold_duration_samples()")


def test_tasks_at_infinity_are_written_and_folded_nothing_counted_without_a_time(db_dsn):
    insert_tasks(db_dsn)  # 0033: the fourth row's write fails ("cannot subtract infinite timestamps")
    fold(db_dsn)
    assert q(db_dsn, "SELECT count(*) FROM task_duration_samples") == [(0,)]
    # Counts and costs: every task with a finish time, on its day; none on an infinite day.
    assert q(db_dsn, "SELECT count(*) FROM cost_rollups WHERE NOT isfinite(day)") == [(0,)]
    assert q(db_dsn, "SELECT sum(tasks_succeeded + tasks_failed + tasks_cancelled)::int FROM cost_rollups") == [
        (FINITE_FINISH,)
    ]
    # Durations: only those whose two times are finite (compact rows: all outcomes that ran).
    per_metric = dict(
        q(
            db_dsn,
            "SELECT metric, sum(n)::int FROM duration_rollups WHERE grain = 0 AND rollout_revision_id = -1 GROUP BY 1",
        )
    )
    assert per_metric == {0: len(RAN["run"]), 1: len(RAN["wait"]), 2: FINITE_FINISH}
    assert q(db_dsn, "SELECT count(*) FROM duration_rollups WHERE NOT isfinite(start) OR total <> total") == [(0,)]
    assert q(db_dsn, "SELECT count(*) FROM duration_rollups WHERE total = 'Infinity'") == [(0,)]
    # Far but finite times are filed under their own day.
    assert q(
        db_dsn,
        "SELECT sum(n)::int FROM duration_rollups WHERE grain = 0 AND metric = 2 "
        "AND rollout_revision_id = -1 AND start = '20000-01-01 00:00+00'",
    ) == [(1,)]
    # The recount from the tasks (through the same sample and metrics functions) agrees.
    assert q(db_dsn, profile_queries.ROLLUP_DRIFT_SQL) == []
    # A task moved from infinity to a finite finish takes out nothing it never put in.
    x(db_dsn, f"UPDATE execution_tasks SET finished_at = {NOW} WHERE finished_at = 'infinity' AND status = 'cancelled'")
    fold(db_dsn)
    assert q(db_dsn, "SELECT sum(tasks_cancelled)::int FROM cost_rollups") == [(1,)]
    assert q(db_dsn, profile_queries.ROLLUP_DRIFT_SQL) == []


def test_the_repro_row_leaves_the_fold_retention_and_the_backfill_working(db_dsn, run_cli, tmp_path):
    repro = TASKS[:1]
    insert_tasks(db_dsn, repro)
    archive = tmp_path / "archive"
    archive.mkdir(mode=0o700)
    # `retention run` folds before anything else: 0033 fails there, on every run.
    for _ in range(2):
        run = run_cli("retention", "run", "--dsn", db_dsn, "--archive", str(archive), "--tasks", "90d")
        assert run.returncode == 0, run.stderr
    assert q(db_dsn, "SELECT count(*) FROM task_duration_samples") == [(0,)]
    # History older than the rollups holding such a task: the backfill folds it in its batch.
    (finished_early,) = insert_tasks(db_dsn, TASKS[1:2])
    fold(db_dsn)
    behind = (finished_early, finished_early - 1)
    x(db_dsn, "UPDATE rollup_state SET backfill_target = %s, backfilled_upto = %s", behind)
    run = run_cli("profile", "--dsn", db_dsn, "--backfill", "--window", "24h", "--format", "json")
    assert run.returncode == 0, run.stderr
    assert q(db_dsn, "SELECT backfilled_upto FROM rollup_state") == [(finished_early,)]
    # The fold goes on counting: the next ordinary task is in the profile.
    insert_tasks(db_dsn, TASKS[-1:])
    fold(db_dsn)
    run = run_cli("profile", "--dsn", db_dsn, "--window", "24h", "--format", "json")
    assert run.returncode == 0, run.stderr
    (group,) = json.loads(run.stdout)["groups"]
    assert (group["type"], group["n"]) == ("infinite", 1)


def test_a_sample_queued_before_0034_is_removed_by_the_fold(db_dsn):
    downgrade(db_dsn, BEFORE)
    (task,) = insert_tasks(db_dsn, TASKS[:1], bulk=True)
    (ordinary,) = insert_tasks(db_dsn, TASKS[-1:], bulk=True)
    # Queued by 0033's own sample function, as its trigger did (not through the trigger,
    # which folds at random: the insert itself would then fail, one time in 256).
    x(
        db_dsn,
        "INSERT INTO task_duration_samples SELECT (fsar_task_sample(t, 1::smallint)).* FROM execution_tasks t "
        "WHERE id IN (%s, %s)",
        (task, ordinary),
    )
    # … and one with an infinite run time, as a role with INSERT on the samples can write.
    x(
        db_dsn,
        "INSERT INTO task_duration_samples (finished_at, task_type, ai_model, rollout_revision_id, outcome, "
        f"run_ms, currency, n) VALUES ({NOW}, 'infinite', 'm', 0, 'succeeded', 'Infinity', '', 1)",
    )
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        fold(db_dsn)  # 0033: "cannot convert infinity to integer"
    migrate(db_dsn)
    fold(db_dsn)
    assert q(db_dsn, "SELECT count(*) FROM task_duration_samples") == [(0,)]
    # The ordinary sample and the counted part of the other were folded; no infinite total.
    assert q(db_dsn, "SELECT sum(tasks_succeeded)::int, sum(tasks_cancelled)::int FROM cost_rollups") == [(2, 0)]
    assert q(
        db_dsn,
        "SELECT metric, sum(n)::int FROM duration_rollups WHERE grain = 0 AND rollout_revision_id = -1 "
        "GROUP BY 1 ORDER BY 1",
    ) == [(0, 1), (1, 1), (2, 2)]
    assert q(db_dsn, "SELECT count(*) FROM duration_rollups WHERE total = 'Infinity'") == [(0,)]


def test_an_attempt_without_finite_times_is_unpriced_and_the_reaper_reaps(db_dsn):
    x(db_dsn, "INSERT INTO compute_rates (currency, minor_per_hour, effective_from) VALUES ('USD', 7, '2000-01-01')")
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, status, queued_at, started_at, ai_model, attempt, max_attempts, "
        "currency, worker_id, lease_expires_at) VALUES "
        "('infinite', 'running', now(), 'infinity', 'm', 1, 3, 'USD', 'w1', now() - interval '1 minute'), "
        f"('infinite', 'running', now(), {EARLIER}, 'm', 1, 3, 'USD', 'w2', now() - interval '1 minute'), "
        f"('infinite', 'running', now(), {EARLIER}, 'm', 3, 3, 'USD', 'w3', now() - interval '1 minute')",
    )
    with psycopg.connect(db_dsn) as conn:  # 0033: the whole batch fails on the first task
        reaped = conn.execute(executor.REAP_SQL).fetchall()
    assert sorted(r[3] for r in reaped) == ["failed", "queued", "queued"]
    rows = q(
        db_dsn,
        "SELECT worker_id, unpriced_attempts, compute_cost_minor > 0 FROM execution_tasks "
        "WHERE worker_id IS NOT NULL ORDER BY worker_id",
    )
    assert rows == [("w1", 1, None), ("w2", 0, True), ("w3", 0, True)]
    # An executor finishing an attempt at infinity: written, its run time unpriced.
    x(
        db_dsn,
        f"UPDATE execution_tasks SET status = 'running', started_at = {EARLIER}, attempt = 2 WHERE worker_id = 'w2'",
    )
    x(db_dsn, "UPDATE execution_tasks SET status = 'succeeded', finished_at = 'infinity' WHERE worker_id = 'w2'")
    assert q(db_dsn, "SELECT unpriced_attempts FROM execution_tasks WHERE worker_id = 'w2'") == [(1,)]
    fold(db_dsn)
    assert q(db_dsn, profile_queries.ROLLUP_DRIFT_SQL) == []


ROLLUP_KEY = "grain, start, rollout_revision_id, task_type, ai_model, outcome, metric, bucket, currency"
COST_KEY = "day, task_type, ai_model, rollout_revision_id, idea_id, currency"


def rollups(conn: psycopg.Connection) -> dict[str, dict[tuple, tuple]]:
    read = {
        "duration": f"SELECT {ROLLUP_KEY}, n, total FROM duration_rollups WHERE n <> 0",
        "cost": f"SELECT {COST_KEY}, tasks_succeeded, tasks_failed, tasks_cancelled, model_cost_minor, "
        "compute_cost_minor, waste_minor, unpriced_attempts FROM cost_rollups",
        "sketches": "SELECT grain, start, task_type, ai_model, outcome, metric, currency, buckets, counts, total "
        "FROM duration_sketches",
    }
    width = {"duration": 9, "cost": 6, "sketches": 7}
    # Days and starts as text: Python holds neither year 20000 nor 4713 BC as a date.
    conn.execute("SET TimeZone = 'UTC'")
    out = {}
    for table, sql in read.items():
        rows = conn.execute(f"SELECT row_to_json(r) FROM ({sql}) r").fetchall()
        out[table] = {}
        for (row,) in rows:
            values = list(row.values())
            out[table][tuple(map(str, values[: width[table]]))] = tuple(values[width[table] :])
    return out


def test_the_bulk_path_counts_what_the_fold_counts(db_dsn):
    ids = insert_tasks(db_dsn, bulk=True)
    low, high = min(ids), max(ids)
    computed = {}
    for path in ("bulk", "row by row"):
        with psycopg.connect(db_dsn) as conn:
            if path == "bulk":
                add_loaded_rollups(conn, low, high)  # 0033: "cannot subtract infinite dates"
            else:
                profile_queries.count_loaded(conn, low, high)
            computed[path] = rollups(conn)
            conn.rollback()
    bulk, folded = computed["bulk"], computed["row by row"]
    for table in ("duration", "cost", "sketches"):
        assert bulk[table].keys() == folded[table].keys(), table
        for key, values in bulk[table].items():
            for a, b in zip(values, folded[table][key], strict=True):
                if isinstance(a, int | float) and isinstance(b, int | float):  # float sums: any order
                    assert math.isclose(a, b, rel_tol=1e-9), (table, key, a, b)
                else:
                    assert a == b, (table, key, a, b)
    assert sum(v[0] for v in bulk["duration"].values()) > 0
    assert bulk["cost"] and all("infinity" not in key[0] for key in bulk["cost"])


FUNCTIONS = (
    "fsar_fold_duration_samples()",
    "fsar_task_sample(execution_tasks,smallint)",
    "fsar_sample_metrics(task_duration_samples)",
    "fsar_price_attempt()",
)


def definitions(dsn: str) -> dict[str, tuple]:
    return {
        fn: q(
            dsn,
            "SELECT prosrc, prosecdef, proconfig, proacl::text[], proowner::regrole::text, provolatile "
            "FROM pg_proc WHERE oid = %s::regprocedure",
            (fn,),
        )[0]
        for fn in FUNCTIONS
    }


def test_0034_down_and_up(db_dsn, empty_dsn):
    migrate(empty_dsn, BEFORE)
    as_0033, at_head = definitions(empty_dsn), definitions(db_dsn)
    for fn in FUNCTIONS:  # only the texts change: owner, grants, SECURITY DEFINER, settings kept
        assert at_head[fn][0] != as_0033[fn][0], fn
        assert at_head[fn][1:] == as_0033[fn][1:], fn
    # A sample the old fold cannot fold is removed on the way down.
    insert_tasks(db_dsn, TASKS[:1])
    downgrade(db_dsn, BEFORE)
    assert definitions(db_dsn) == as_0033
    assert q(db_dsn, "SELECT count(*) FROM task_duration_samples") == [(0,)]
    fold(db_dsn)
    migrate(db_dsn)
    assert definitions(db_dsn) == at_head
