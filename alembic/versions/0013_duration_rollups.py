"""Duration rollups: log-bucketed histograms of run time and queue wait, kept by trigger.

Why: exact percentile_cont over 10 M tasks takes seconds; the profiles screen needs
p50/p90/p99 per type × model while it watches. The maths of the buckets is in
fsar_tui/domain/histogram.py (relative error ≤ 0.8 % on any percentile).

- `task_duration_samples` is append-only: the row trigger adds +1 for every task that
  becomes finished (succeeded, failed, cancelled) and −1 when a counted task stops being
  finished (an operator retry) or changes a rolled-up attribute, in the same
  transaction as the change, so the rollups can never drift from the tasks. Appending
  keeps concurrent workers off each other's row locks (a histogram row per type would
  serialise the fleet).
- `fsar_fold_duration_samples()` moves samples into `duration_rollups` (DELETE …
  RETURNING, so concurrent folds never count a sample twice): one row per (grain,
  start, task_type, ai_model, rollout revision, outcome, metric, bucket, currency) with
  the count and the sum of values, twice: detailed, and compact (rollout revision −1,
  outcome '*' for run and wait of tasks that ran, outcome kept for the count/cost
  metric) — the type × model profile reads only the compact rows, a third of the
  detailed ones. Grains: the hour (kept for four days) and aligned
  blocks of 1, 2, 4, 8, 16 and 32 UTC days (fsar_tui/domain/rollup_windows.py picks
  the fewest rows that tile a window). Metrics: 0 run time (finished − started, ms),
  1 queue wait (started − queued, ms), 2 one row per finished task with its cost
  (bucket 0; sum = cost in minor units of `currency`). The trigger folds on about one
  change in 256, so samples stay a few hundred rows with no daemon.
- History that predates this revision is counted by `fsar-tui profile --backfill` in
  resumable id batches. `rollup_state` says what is counted: a finished task is counted
  when its id is above `backfill_target` (the largest id at migration: created since),
  or it finished at or after `epoch` (the migration's time), or its id is at most
  `backfilled_upto`. The trigger applies the same rule to the row before and after
  each change, and the backfill (ids up to the target, finished before the epoch)
  locks the rows of its batch (FOR SHARE) while it advances the cursor, so a task is
  never counted twice nor un-counted without having been counted.
- The bulk loader (fsar.bulk_load = on) skips the trigger; its ids are new (above the
  target), so it adds one sample per finished task it loaded and folds them.

Revision ID: 0013_duration_rollups
Revises: 0012_task_counts
"""

from alembic import op

revision = "0013_duration_rollups"
down_revision = "0012_task_counts"
branch_labels = None
depends_on = None


# Module constants (not inline) because later revisions build on them: 0014 adds a
# CTE to the fold, two columns to the sample and the trigger, and restores all three on
# downgrade; 0015 extends the fold again.
FOLD = """
        CREATE FUNCTION fsar_fold_duration_samples() RETURNS void
        LANGUAGE sql AS $$
            WITH moved AS (DELETE FROM task_duration_samples RETURNING *),
                 metrics AS MATERIALIZED (
                    SELECT s.finished_at, s.task_type, s.ai_model, s.rollout_revision_id, s.outcome, s.n,
                           m.metric, m.bucket, m.currency, m.value
                    FROM moved s CROSS JOIN LATERAL fsar_sample_metrics(s::task_duration_samples) m),
                 both_kinds AS (
                    SELECT finished_at, task_type, ai_model, rollout_revision_id, outcome, metric, bucket,
                           currency, n, value
                    FROM metrics
                    UNION ALL  -- the compact kind: all revisions, and for run/wait all outcomes that ran
                    SELECT finished_at, task_type, ai_model, -1, CASE WHEN metric = 2 THEN outcome ELSE '*' END,
                           metric, bucket, currency, n, value
                    FROM metrics WHERE metric = 2 OR outcome IN ('succeeded', 'failed')),
                 daily AS (
                    SELECT floor(extract(epoch FROM finished_at) / 86400)::int AS day, task_type, ai_model,
                           rollout_revision_id, outcome, metric, bucket, currency,
                           sum(n) AS n, sum(n * value) AS total
                    FROM both_kinds GROUP BY 1, 2, 3, 4, 5, 6, 7, 8),
                 hourly AS (
                    SELECT date_trunc('hour', finished_at, 'UTC') AS start, task_type, ai_model,
                           rollout_revision_id, outcome, metric, bucket, currency,
                           sum(n) AS n, sum(n * value) AS total
                    FROM both_kinds WHERE finished_at >= now() - interval '4 days'
                    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8)
            INSERT INTO duration_rollups AS r (grain, start, task_type, ai_model, rollout_revision_id, outcome,
                                               metric, bucket, currency, n, total)
            SELECT -1::smallint, start, task_type, ai_model, rollout_revision_id, outcome, metric, bucket, currency,
                   n, total
            FROM hourly
            UNION ALL
            SELECT g.grain, timestamptz '1970-01-01 00:00:00+00' + make_interval(days => d.day - d.day % (1 << g.grain)),
                   d.task_type, d.ai_model, d.rollout_revision_id, d.outcome, d.metric, d.bucket, d.currency,
                   sum(d.n), sum(d.total)
            FROM daily d CROSS JOIN generate_series(0, 5) AS g(grain)
            GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
            -- Rows of one block land together on disk: a profile reads a handful of
            -- blocks, each from a few heap pages instead of one page per row.
            ORDER BY 1, 2
            ON CONFLICT (grain, start, rollout_revision_id, task_type, ai_model, outcome, metric, bucket, currency)
            DO UPDATE SET n = r.n + EXCLUDED.n, total = r.total + EXCLUDED.total;
            DELETE FROM duration_rollups WHERE grain = -1 AND start < now() - interval '4 days';
        $$
    """  # noqa: E501 - SQL of an applied revision, kept as it ran

TASK_SAMPLE = """
        CREATE FUNCTION fsar_task_sample(t execution_tasks, n smallint) RETURNS task_duration_samples
        LANGUAGE sql STABLE AS $$
            SELECT ROW(t.finished_at, t.task_type, coalesce(t.ai_model, ''), coalesce(t.rollout_revision_id, 0),
                       t.status,
                       CASE WHEN t.started_at IS NOT NULL
                            THEN greatest(0, extract(epoch FROM t.finished_at - t.started_at) * 1000)::float8 END,
                       CASE WHEN t.started_at IS NOT NULL
                            THEN greatest(0, extract(epoch FROM t.started_at - t.queued_at) * 1000)::float8 END,
                       t.cost_minor, coalesce(t.currency, ''), n)::task_duration_samples
        $$
    """

ROLLUPS_UPDATE_TRIGGER = """
        CREATE TRIGGER execution_tasks_rollups_update
        AFTER UPDATE OF status, finished_at, started_at, queued_at, task_type, ai_model, rollout_revision_id,
                        cost_minor, currency ON execution_tasks
        FOR EACH ROW WHEN (OLD.status IN ('succeeded', 'failed', 'cancelled')
                           OR NEW.status IN ('succeeded', 'failed', 'cancelled'))
        EXECUTE FUNCTION fsar_task_rollups_changed()
    """


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION fsar_duration_bucket(ms float8) RETURNS smallint
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN ms IS NULL THEN NULL
                        WHEN ms < 1 THEN 0
                        ELSE greatest(1, ceil(ln(ms) / ln(1.008::float8 / 0.992::float8)))::smallint END
        $$
    """)
    op.execute("""
        CREATE TABLE rollup_state (
            only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            epoch           timestamptz NOT NULL,
            backfill_target bigint NOT NULL,
            backfilled_upto bigint NOT NULL
        )
    """)
    op.execute("""
        CREATE TABLE task_duration_samples (
            finished_at         timestamptz NOT NULL,
            task_type           text NOT NULL,
            ai_model            text NOT NULL,
            rollout_revision_id bigint NOT NULL,
            outcome             text NOT NULL,
            run_ms              float8,
            wait_ms             float8,
            cost_minor          bigint,
            currency            text NOT NULL,
            n                   smallint NOT NULL
        )
    """)
    op.execute("CREATE INDEX task_duration_samples_finished_idx ON task_duration_samples (finished_at)")
    # Samples (like task_count_deltas) are inserted and soon deleted by a fold: vacuum
    # them by row count, not by table fraction, or readers wade through dead rows.
    for table in ("task_duration_samples", "task_count_deltas"):
        op.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0, "
            "autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_insert_scale_factor = 0, "
            "autovacuum_vacuum_insert_threshold = 5000)"
        )
    op.execute("""
        CREATE TABLE duration_rollups (
            grain               smallint NOT NULL,
            start               timestamptz NOT NULL,
            task_type           text NOT NULL,
            ai_model            text NOT NULL,
            rollout_revision_id bigint NOT NULL,
            outcome             text NOT NULL,
            metric              smallint NOT NULL,
            bucket              smallint NOT NULL,
            currency            text NOT NULL,
            n                   bigint NOT NULL,
            total               float8 NOT NULL,
            -- Covering: a profile is an index-only scan of a few (grain, start) ranges.
            PRIMARY KEY (grain, start, rollout_revision_id, task_type, ai_model, outcome, metric, bucket, currency)
                INCLUDE (n, total)
        )
    """)
    # One sample as the metric rows it adds (shared by the fold and by readers of
    # samples not folded yet).
    op.execute("""
        CREATE FUNCTION fsar_sample_metrics(s task_duration_samples,
                                            OUT metric smallint, OUT bucket smallint, OUT currency text,
                                            OUT value float8)
        RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $$
            SELECT v.metric, v.bucket, v.currency, v.value
            FROM (VALUES (0::smallint, fsar_duration_bucket(s.run_ms), ''::text, s.run_ms),
                         (1::smallint, fsar_duration_bucket(s.wait_ms), ''::text, s.wait_ms),
                         (2::smallint, 0::smallint, s.currency, coalesce(s.cost_minor, 0)::float8))
                 AS v(metric, bucket, currency, value)
            WHERE v.metric = 2 OR v.value IS NOT NULL
        $$
    """)
    # Samples are summed per day first (and per hour for the last four days, the only
    # hours kept), then the day sums are spread to the 2^k-day blocks: a bulk fold of a
    # million samples adds up day rows, not a million rows times seven grains.
    op.execute(FOLD)
    op.execute(TASK_SAMPLE)
    op.execute("""
        CREATE FUNCTION fsar_task_rollups_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            st rollup_state;
            old_in boolean := false;
            new_in boolean := false;
        BEGIN
            IF current_setting('fsar.bulk_load', true) = 'on' THEN
                RETURN NULL;  -- the bulk loader counts what it loaded itself
            END IF;
            SELECT * INTO st FROM rollup_state;
            IF TG_OP <> 'INSERT' THEN
                old_in := OLD.status IN ('succeeded', 'failed', 'cancelled')
                          AND (OLD.id > st.backfill_target OR OLD.finished_at >= st.epoch
                               OR OLD.id <= st.backfilled_upto);
            END IF;
            IF TG_OP <> 'DELETE' THEN
                new_in := NEW.status IN ('succeeded', 'failed', 'cancelled')
                          AND (NEW.id > st.backfill_target OR NEW.finished_at >= st.epoch
                               OR NEW.id <= st.backfilled_upto);
            END IF;
            IF old_in THEN
                INSERT INTO task_duration_samples SELECT (fsar_task_sample(OLD, -1::smallint)).*;
            END IF;
            IF new_in THEN
                INSERT INTO task_duration_samples SELECT (fsar_task_sample(NEW, 1::smallint)).*;
            END IF;
            IF (old_in OR new_in) AND random() < 1.0 / 256 THEN
                PERFORM fsar_fold_duration_samples();
            END IF;
            RETURN NULL;
        END
        $$
    """)
    # Backfill one batch of pre-existing history; returns the new cursor (see above).
    op.execute("""
        CREATE FUNCTION fsar_backfill_rollups(batch_size bigint) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            st rollup_state;
            upto bigint;
        BEGIN
            SELECT * INTO st FROM rollup_state FOR UPDATE;
            upto := least(st.backfilled_upto + batch_size, st.backfill_target);
            IF upto <= st.backfilled_upto THEN
                RETURN st.backfilled_upto;
            END IF;
            INSERT INTO task_duration_samples
            SELECT (fsar_task_sample(t, 1::smallint)).*
            FROM (SELECT * FROM execution_tasks
                  WHERE id > st.backfilled_upto AND id <= upto
                    AND status IN ('succeeded', 'failed', 'cancelled') AND finished_at < st.epoch
                  FOR SHARE) t;
            UPDATE rollup_state SET backfilled_upto = upto;
            PERFORM fsar_fold_duration_samples();
            RETURN upto;
        END
        $$
    """)
    op.execute("LOCK TABLE execution_tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("INSERT INTO rollup_state SELECT true, now(), coalesce(max(id), 0), 0 FROM execution_tasks")
    op.execute("""
        CREATE TRIGGER execution_tasks_rollups_insert_delete
        AFTER INSERT OR DELETE ON execution_tasks
        FOR EACH ROW EXECUTE FUNCTION fsar_task_rollups_changed()
    """)
    op.execute(ROLLUPS_UPDATE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "ALTER TABLE task_count_deltas RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, "
        "autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold)"
    )
    op.execute("DROP TRIGGER execution_tasks_rollups_update ON execution_tasks")
    op.execute("DROP TRIGGER execution_tasks_rollups_insert_delete ON execution_tasks")
    op.execute("DROP FUNCTION fsar_backfill_rollups(bigint)")
    op.execute("DROP FUNCTION fsar_task_rollups_changed()")
    op.execute("DROP FUNCTION fsar_task_sample(execution_tasks, smallint)")
    op.execute("DROP FUNCTION fsar_fold_duration_samples()")
    op.execute("DROP FUNCTION fsar_sample_metrics(task_duration_samples)")
    op.execute("DROP TABLE duration_rollups")
    op.execute("DROP TABLE task_duration_samples")
    op.execute("DROP TABLE rollup_state")
    op.execute("DROP FUNCTION fsar_duration_bucket(float8)")
