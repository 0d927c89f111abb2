"""Rollups of a bulk-loaded id range, computed in bulk (used by `fsar-tui seed`).

Row by row, each finished task becomes a sample (task_duration_samples, revision 0013)
that `fsar_fold_duration_samples()` later folds into cost_rollups and duration_rollups
(detailed rows per revision and outcome, the compact kind across revisions, hourly
rows for the last 4 days, and 2–32-day blocks that have closed), noting the closed
blocks whose sketches (revision 0015) need rebuilding. Folding a million samples that
way took ~40 s on this 2-core machine, most of it aggregating six rows per task. Here
the same rows come from the tasks directly: each metric grouped on its own (one row
per task, not six), the compact kind and the closed blocks added up from the daily
rows, and every row inserted in index order. The figures are the fold's: counts
exactly, totals (float sums) to rounding — tests/test_seed_rollups.py compares the two
paths and the drift checks of db/profiles.py hold after a seed.

The buckets come from fsar_duration_bucket(), the database's own definition, so the
bulk path cannot bucket a duration differently from the trigger's.

Times that are not finite count as revision 0034 has the trigger's path count them: a
task finished at ±infinity adds nothing (no day, no hour to file it under), and a run
time or queue wait needs both of its times finite.
"""

from __future__ import annotations

from psycopg import Connection

# The finished tasks of the range as samples, with their UTC day number (= the fold's
# floor(epoch / 86400)) — read once. The columns are fsar_task_sample()'s expressions
# written out (called per row, the function is not inlined: 3× slower here); the drift
# checks compare them with the function's after every seed in the tests. Only finite finishes are
# read (a task at ±infinity adds nothing), so a run time needs only a finite start.
_SAMPLES = """
    s AS MATERIALIZED (
        SELECT finished_at, (finished_at AT TIME ZONE 'UTC')::date - date '1970-01-01' AS day,
               task_type::text AS task_type, coalesce(ai_model, '') AS ai_model,
               coalesce(rollout_revision_id, 0) AS rollout_revision_id, status::text AS outcome,
               CASE WHEN isfinite(started_at)
                    THEN greatest(0, extract(epoch FROM finished_at - started_at) * 1000)::float8 END AS run_ms,
               CASE WHEN isfinite(started_at) AND isfinite(queued_at)
                    THEN greatest(0, extract(epoch FROM started_at - queued_at) * 1000)::float8 END AS wait_ms,
               cost_minor, coalesce(currency, '') AS currency, idea_id, compute_cost_minor, waste_minor,
               unpriced_attempts
        FROM execution_tasks
        WHERE id BETWEEN %(first)s AND %(last)s AND status IN ('succeeded', 'failed', 'cancelled')
          AND isfinite(finished_at))"""

# fsar_sample_metrics() per metric: run (0) and wait (1) bucketed, cost (2) one bucket
# per currency; each grouped over the tasks by `key` (a day number or an hour).
_METRICS = """
    SELECT {key} AS k, task_type, ai_model, rollout_revision_id AS rev, outcome, 0::smallint AS metric,
           fsar_duration_bucket(run_ms) AS bucket, ''::text AS currency, count(*) AS n, sum(run_ms) AS total
    FROM s WHERE run_ms IS NOT NULL {filter} GROUP BY 1, 2, 3, 4, 5, 7
    UNION ALL
    SELECT {key}, task_type, ai_model, rollout_revision_id, outcome, 1::smallint,
           fsar_duration_bucket(wait_ms), '', count(*), sum(wait_ms)
    FROM s WHERE wait_ms IS NOT NULL {filter} GROUP BY 1, 2, 3, 4, 5, 7
    UNION ALL
    SELECT {key}, task_type, ai_model, rollout_revision_id, outcome, 2::smallint, 0::smallint, currency,
           count(*), sum(coalesce(cost_minor, 0)::float8)
    FROM s WHERE true {filter} GROUP BY 1, 2, 3, 4, 5, 8"""

# Detailed rows plus the compact kind (all revisions as -1; run and wait over the
# outcomes that ran, cost per outcome), as the fold's both_kinds.
_BOTH_KINDS = """
    SELECT * FROM {src}
    UNION ALL
    SELECT k, task_type, ai_model, -1, CASE WHEN metric = 2 THEN outcome ELSE '*' END, metric, bucket, currency,
           sum(n), sum(total)
    FROM {src} WHERE metric = 2 OR outcome IN ('succeeded', 'failed')
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"""

_COSTS = """
    costs AS (
        INSERT INTO cost_rollups AS c (day, task_type, ai_model, rollout_revision_id, idea_id, currency,
                                       tasks_succeeded, tasks_failed, tasks_cancelled,
                                       model_cost_minor, compute_cost_minor, failed_cost_minor,
                                       waste_minor, unpriced_attempts)
        SELECT (finished_at AT TIME ZONE 'UTC')::date, task_type, ai_model, rollout_revision_id,
               coalesce(idea_id, ''), currency,
               count(*) FILTER (WHERE outcome = 'succeeded'),
               count(*) FILTER (WHERE outcome = 'failed'),
               count(*) FILTER (WHERE outcome = 'cancelled'),
               sum(coalesce(cost_minor, 0)), sum(coalesce(compute_cost_minor, 0)),
               coalesce(sum(coalesce(cost_minor, 0) + coalesce(compute_cost_minor, 0))
                        FILTER (WHERE outcome <> 'succeeded'), 0),
               sum(coalesce(waste_minor, 0)), sum(coalesce(unpriced_attempts, 0))
        FROM s
        GROUP BY 1, 2, 3, 4, 5, 6
        ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (day, task_type, ai_model, rollout_revision_id, idea_id, currency) DO UPDATE SET
            tasks_succeeded = c.tasks_succeeded + EXCLUDED.tasks_succeeded,
            tasks_failed = c.tasks_failed + EXCLUDED.tasks_failed,
            tasks_cancelled = c.tasks_cancelled + EXCLUDED.tasks_cancelled,
            model_cost_minor = c.model_cost_minor + EXCLUDED.model_cost_minor,
            compute_cost_minor = c.compute_cost_minor + EXCLUDED.compute_cost_minor,
            failed_cost_minor = c.failed_cost_minor + EXCLUDED.failed_cost_minor,
            waste_minor = c.waste_minor + EXCLUDED.waste_minor,
            unpriced_attempts = c.unpriced_attempts + EXCLUDED.unpriced_attempts
        RETURNING 1)"""


ROLLUPS_SQL = f"""
    WITH {_SAMPLES},
    {_COSTS},
    st AS (SELECT sketched_until - date '1970-01-01' AS until FROM rollup_state),
    day_detail AS MATERIALIZED ({_METRICS.format(key="day", filter="")}),
    daily AS MATERIALIZED ({_BOTH_KINDS.format(src="day_detail")}),
    hour_detail AS MATERIALIZED ({
    _METRICS.format(key="date_trunc('hour', finished_at, 'UTC')", filter="AND finished_at >= now() - interval '4 days'")
}),
    hourly AS ({_BOTH_KINDS.format(src="hour_detail")}),
    dirty AS (
        -- Closed blocks (grains 0–5) the range added to: their sketches are rebuilt.
        INSERT INTO duration_sketch_dirty (grain, start, task_type, ai_model)
        SELECT DISTINCT g.grain,
               timestamptz '1970-01-01 00:00:00+00' + make_interval(days => d.day - d.day %% (1 << g.grain)),
               d.task_type, d.ai_model
        FROM (SELECT DISTINCT day, task_type, ai_model FROM s) d CROSS JOIN generate_series(0, 5) AS g(grain)
        WHERE d.day - d.day %% (1 << g.grain) + (1 << g.grain) <= (SELECT until FROM st)
        RETURNING 1)
    INSERT INTO duration_rollups AS r (grain, start, task_type, ai_model, rollout_revision_id, outcome,
                                       metric, bucket, currency, n, total)
    SELECT * FROM (
        SELECT -1::smallint AS grain, k AS start, task_type, ai_model, rev, outcome, metric, bucket, currency, n, total
        FROM hourly
        UNION ALL
        SELECT g.grain, timestamptz '1970-01-01 00:00:00+00' + make_interval(days => d.k - d.k %% (1 << g.grain)),
               d.task_type, d.ai_model, d.rev, d.outcome, d.metric, d.bucket, d.currency, sum(d.n), sum(d.total)
        FROM daily d CROSS JOIN generate_series(0, 5) AS g(grain)
        WHERE g.grain = 0 OR d.k - d.k %% (1 << g.grain) + (1 << g.grain) <= (SELECT until FROM st)
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9) x
    -- By the index's leading (non-text) columns: each block's rows land together, without
    -- sorting 900 k rows on text (3.5 s of the 17 s here when sorted on the whole key).
    ORDER BY grain, start, rev"""
# Onto rollups that may hold rows of these keys (a second seed); an empty table (the
# first seed) takes the plain INSERT: no conflict check per row.
UPSERT = """
    ON CONFLICT (grain, start, rollout_revision_id, task_type, ai_model, outcome, metric, bucket, currency)
    DO UPDATE SET n = r.n + EXCLUDED.n, total = r.total + EXCLUDED.total"""


def add_loaded_rollups(conn: Connection, first_id: int, last_id: int) -> None:
    """Count the finished tasks of ids first..last (new, loaded with the triggers off) into
    cost_rollups, duration_rollups and the sketches, as folding their samples would.

    Inside the loader's transaction. Takes the fold's lock (exclusively, as a fold that
    closes blocks does): a concurrent fold waits rather than interleaving."""
    conn.execute("SELECT pg_advisory_xact_lock(727001)")
    # Any samples already waiting (written before the load) are folded first, so the
    # closed-blocks bookkeeping below starts from the state the fold leaves.
    conn.execute("SELECT fsar_fold_duration_samples()")
    params = {"first": first_id, "last": last_id}
    empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM duration_rollups)").fetchone()
    conn.execute(ROLLUPS_SQL if empty and empty[0] else ROLLUPS_SQL + UPSERT, params)
    conn.execute("SELECT fsar_rebuild_sketches()")
