"""Duration rollups against a real database: exact against a recount after every kind of
change, backfill of legacy history in resumable batches, and percentiles within the bound."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg

from fsar_tui.db import actions
from fsar_tui.db import profiles as profile_queries
from fsar_tui.db.connect import aconnect
from fsar_tui.db.migrations import migrate
from fsar_tui.db.profiles import BLOCK_DRIFT_SQL, ROLLUP_DRIFT_SQL, SKETCH_DRIFT_SQL
from fsar_tui.db.roi import COST_DRIFT_SQL
from fsar_tui.domain import profiles
from fsar_tui.domain.histogram import ALPHA
from support.sql import q, x


def finish_tasks(dsn, n, task_type="implement_idea", model="gpt-4o"):
    """n tasks through queued → running → succeeded/failed (an hour or two ago), run time id·137 ms."""
    x(
        dsn,
        """INSERT INTO execution_tasks (task_type, ai_model) SELECT %s, %s FROM generate_series(1, %s)""",
        (task_type, model, n),
    )
    x(
        dsn,
        "UPDATE execution_tasks SET status = 'running', attempt = 1, queued_at = queued_at - interval '2 hours', "
        "started_at = queued_at - interval '2 hours' + (id % 7) * interval '1 second' WHERE status = 'queued'",
    )
    x(
        dsn,
        """UPDATE execution_tasks SET status = CASE WHEN id % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
                     error = CASE WHEN id % 10 = 0 THEN 'boom' END,
                     finished_at = started_at + id * interval '137 milliseconds', cost_minor = id % 50, currency = 'USD'
              WHERE status = 'running'""",
    )


def drift(dsn):
    """Rows where the rollups, the sketches or the cost rollups differ from a recount."""
    return q(dsn, ROLLUP_DRIFT_SQL) + q(dsn, SKETCH_DRIFT_SQL) + q(dsn, BLOCK_DRIFT_SQL) + q(dsn, COST_DRIFT_SQL)


async def test_retries_cancels_edits_and_deletes_keep_rollups_exact(db_dsn):
    finish_tasks(db_dsn, 300)
    assert drift(db_dsn) == []
    conn = await aconnect(db_dsn)
    try:
        failed = await (
            await conn.execute("SELECT id, status FROM execution_tasks WHERE status = 'failed' LIMIT 5")
        ).fetchall()
        await actions.apply_action(conn, "retry", failed, "flaky model", scope="marked")
        await conn.commit()
    finally:
        await conn.close()
    assert drift(db_dsn) == []
    x(db_dsn, "SELECT fsar_fold_duration_samples()")
    x(db_dsn, "UPDATE execution_tasks SET ai_model = 'claude-3-5-sonnet' WHERE id % 3 = 0 AND status = 'succeeded'")
    x(
        db_dsn,
        "UPDATE execution_tasks SET finished_at = finished_at + interval '2 seconds' WHERE id % 5 = 1 "
        "AND status = 'succeeded'",
    )
    x(db_dsn, "DELETE FROM execution_tasks WHERE id % 11 = 0")
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, status, started_at, finished_at, queued_at, attempt) "
        "VALUES ('self_improvement', 'cancelled', NULL, now(), now(), 0)",
    )
    assert drift(db_dsn) == []
    x(db_dsn, "SELECT fsar_fold_duration_samples()")
    assert drift(db_dsn) == [] and q(db_dsn, "SELECT count(*) FROM task_duration_samples") == [(0,)]
    # The drift check itself can fail: a lost sample is seen. (A row that counts something:
    # edits and deletes leave rows netted to n = 0 behind, and losing one of those loses
    # nothing — which row comes first in ctid order depends on the server's storage.)
    x(
        db_dsn,
        "DELETE FROM duration_rollups WHERE ctid = "
        "(SELECT min(ctid) FROM duration_rollups WHERE grain = 0 AND metric = 0 AND n <> 0)",
    )
    assert drift(db_dsn) != []


async def test_profile_percentiles_match_exact_ones_within_the_bound(db_dsn):
    finish_tasks(db_dsn, 2000)
    finish_tasks(db_dsn, 700, "self_improvement", "claude-3-5-sonnet")
    now = datetime.now(UTC) + timedelta(hours=1)
    conn = await aconnect(db_dsn)
    try:
        rows = await profile_queries.profile_rows(conn, now - timedelta(days=1), now, now, ("type", "model"))
        sketched = await profile_queries.type_model_profiles(conn, now - timedelta(days=1), now, now)
    finally:
        await conn.close()
    got = {p.key: p for p in profiles.build(rows)}
    # The sketch path (revision 0015) reads the same histograms as the row path.
    assert [(p.key, p.n, p.run, p.wait, p.cost) for p in sketched] == [
        (p.key, p.n, p.run, p.wait, p.cost) for p in profiles.build(rows)
    ]
    exact = q(
        db_dsn,
        """
        SELECT task_type, ai_model, count(*),
               percentile_disc(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP
                   (ORDER BY extract(epoch FROM finished_at - started_at) * 1000)
        FROM execution_tasks WHERE status IN ('succeeded', 'failed') GROUP BY 1, 2""",
    )
    assert len(exact) == 2
    for task_type, model, n, (p50, p90, p99) in exact:
        p = got[(task_type, model)]
        assert p.samples == n
        for q_, want in ((0.5, p50), (0.9, p90), (0.99, p99)):
            assert abs(p.p(q_) - float(want)) / float(want) <= ALPHA * (1 + 1e-9)


def test_legacy_history_is_backfilled_in_resumable_batches_without_double_counting(legacy_dsn, run_cli):
    # 400 more finished legacy rows (the production table has no ai_model, no queued_at).
    x(
        legacy_dsn,
        """INSERT INTO execution_tasks (task_type, status, created_at, started_at, finished_at)
                     SELECT 'implement_idea', CASE WHEN g % 4 = 0 THEN 'failed' ELSE 'succeeded' END,
                            timestamp '2026-01-03 00:00' + g * interval '1 minute',
                            timestamp '2026-01-03 00:00:02' + g * interval '1 minute',
                            timestamp '2026-01-03 00:00:02' + g * interval '1 minute' + g * interval '1 second'
                     FROM generate_series(1, 400) g""",
    )
    migrate(legacy_dsn)
    finished = q(legacy_dsn, "SELECT count(*) FROM execution_tasks WHERE status IN ('succeeded', 'failed')")[0][0]
    assert finished == 402
    assert drift(legacy_dsn) == []  # nothing of the history is counted yet, and nothing claims to be
    # A legacy task retried before the backfill reached it: not counted, so nothing to take back.
    x(legacy_dsn, "UPDATE execution_tasks SET status = 'queued', finished_at = NULL, started_at = NULL WHERE id = 2")
    with psycopg.connect(legacy_dsn, autocommit=True) as conn:
        assert profile_queries.backfill_batch(conn, 150) == 150  # one batch, then "interrupted"
    assert drift(legacy_dsn) == []
    # A backfilled task retried: counted, so its sample is taken back.
    x(legacy_dsn, "UPDATE execution_tasks SET status = 'queued', finished_at = NULL, started_at = NULL WHERE id = 10")
    assert drift(legacy_dsn) == []
    proc = run_cli(
        "profile",
        "--backfill",
        "--batch-size",
        "100",
        "--window",
        "52w",
        "--format",
        "json",
        "--by",
        "type",
        "--dsn",
        legacy_dsn,
    )
    assert proc.returncode == 0, proc.stderr
    assert "counted task ids up to 404 of 404" in proc.stderr
    assert drift(legacy_dsn) == []
    report = json.loads(proc.stdout)
    assert {g["type"]: g["n"] for g in report["groups"]}["implement_idea"] == 400  # 401 finished, id 10 retried
    again = run_cli("profile", "--backfill", "--dsn", legacy_dsn)  # resumable: nothing left, nothing doubled
    assert again.returncode == 0 and "counted task ids" not in again.stderr
    assert drift(legacy_dsn) == []


def test_profile_cli_formats_and_bad_input(db_dsn, run_cli):
    finish_tasks(db_dsn, 50)
    table = run_cli("profile", "--dsn", db_dsn, "--window", "1d")
    assert table.returncode == 0, table.stderr
    assert "implement_idea" in table.stdout and "only 50 runs" in table.stdout
    csv_out = run_cli("profile", "--dsn", db_dsn, "--by", "model", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("model,n,mean_s,p50_s") and csv_out[1].startswith("gpt-4o,50,")
    for args, needle in (
        (("--by", "type,colour"), "--by takes"),
        (("--window", "soon"), "--window"),
        (("--by", "type,type"), "--by takes"),
        (("--batch-size", "0"), "--batch-size"),
    ):
        proc = run_cli("profile", "--dsn", db_dsn, *args)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def add_history(dsn, days=40, per_day=40):
    """Finished tasks spread over the last `days` days (late samples for closed blocks)."""
    x(
        dsn,
        """INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, finished_at,
                                           cost_minor, currency)
              SELECT (ARRAY['implement_idea', 'self_improvement'])[1 + g %% 2], 'gpt-4o',
                     CASE WHEN g %% 7 = 0 THEN 'failed' ELSE 'succeeded' END, 1,
                     now() - make_interval(hours => g * 24 / %(per_day)s + 1),
                     now() - make_interval(hours => g * 24 / %(per_day)s + 1) + interval '3 seconds',
                     now() - make_interval(hours => g * 24 / %(per_day)s + 1) + make_interval(secs => 5 + g %% 300),
                     g %% 40, 'USD'
              FROM generate_series(1, %(n)s) g""",
        {"per_day": per_day, "n": days * per_day},
    )


def both_paths(dsn, days):
    now = datetime.now(UTC)
    with psycopg.connect(dsn) as conn:
        sketched = profile_queries.type_model_profiles_sync(conn, now - timedelta(days=days), now, now)
        rows = profiles.build(
            profile_queries.profile_rows_sync(conn, now - timedelta(days=days), now, now, ("type", "model"))
        )
    return [(p.key, p.n, p.run, p.wait) for p in sketched], [(p.key, p.n, p.run, p.wait) for p in rows]


def test_blocks_close_and_sketches_rebuild_as_days_pass(db_dsn):
    add_history(db_dsn)
    x(db_dsn, "SELECT fsar_fold_duration_samples()")
    # Late samples only noted their blocks; the next exclusive fold (or this) rebuilds them.
    x(db_dsn, "SELECT fsar_rebuild_sketches()")
    assert drift(db_dsn) == [] and q(db_dsn, "SELECT count(*) FROM duration_sketch_dirty") == [(0,)]
    assert q(db_dsn, "SELECT count(*) > 0 FROM duration_sketches WHERE grain >= 3") == [(True,)]
    for days in (45, 30, 9, 1):
        sketched, rows = both_paths(db_dsn, days)
        assert sketched == rows and sketched
    # Three days without a single fold: blocks that closed meanwhile have only day rows
    # and no sketch; readers must still see every task, through the days.
    x(db_dsn, "UPDATE rollup_state SET sketched_until = sketched_until - 3")
    x(
        db_dsn,
        """DELETE FROM duration_rollups r USING rollup_state st WHERE r.grain >= 1
                 AND r.start + make_interval(days => 1 << r.grain) > st.sketched_until::timestamp AT TIME ZONE 'UTC'""",
    )
    x(
        db_dsn,
        """DELETE FROM duration_sketches k USING rollup_state st
                 WHERE k.start + make_interval(days => 1 << k.grain) > st.sketched_until::timestamp AT TIME ZONE
                     'UTC'""",
    )
    assert drift(db_dsn) == []
    for days in (45, 30, 9, 1):
        sketched, rows = both_paths(db_dsn, days)
        assert sketched == rows and sketched
    # A late change (a retry of an old task) marks its blocks; readers avoid those sketches.
    x(db_dsn, "UPDATE execution_tasks SET status = 'queued', finished_at = NULL WHERE id = 700")
    x(db_dsn, "SELECT fsar_fold_duration_samples()")  # the first fold of "today": exclusive, closes the days
    assert q(db_dsn, "SELECT sketched_until = (now() AT TIME ZONE 'UTC')::date FROM rollup_state") == [(True,)]
    assert drift(db_dsn) == []
    sketched, rows = both_paths(db_dsn, 45)
    assert sketched == rows
    # The check can fail: a sketch that lost a bucket is seen.
    x(
        db_dsn,
        "UPDATE duration_sketches SET buckets = buckets[2:], counts = counts[2:] "
        "WHERE ctid = (SELECT min(ctid) FROM duration_sketches WHERE cardinality(buckets) > 1)",
    )
    assert q(db_dsn, SKETCH_DRIFT_SQL) != []
