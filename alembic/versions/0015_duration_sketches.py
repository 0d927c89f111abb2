"""Duration sketches, and blocks materialised when they close: cheaper reads and folds.

Why, reads: the 30-day type × model profile added up ~30,000 (block × bucket) rollup
rows in a hash aggregate — 40–54 ms at 10 M tasks, at the 50 ms goal rather than under
it. A sketch row holds one closed block's histogram of a (type, model, outcome,
metric, currency) — revision 0013's compact rows — as sorted `buckets` / `counts`
arrays plus the sum of values; the profile reads a few hundred of them.
Why, writes: every folded sample touched its hour, its day and five 2^k-day blocks, in
two kinds and up to three metrics (~40 rows, ~0.5 ms a sample), which cost the fleet
~18 % of its claim-and-finish throughput. Blocks of 2–32 days are now written once,
when they close, as the sum of their day rows.

`rollup_state.sketched_until` (a UTC day) splits time: blocks that ended by it are
*materialised* (their 2–32-day rows exist) and *sketched* (their sketch exists unless a
late change marked it dirty); later blocks are read through their day rows.
- The fold writes hour and day rows as before, and block rows only for materialised
  blocks (late changes: retries of old tasks, backfill, bulk loads), noting each
  materialised block it touches in `duration_sketch_dirty`.
- A fold that finds sketched_until behind today, or dirty notes, takes the fold lock
  exclusively; others take it shared. The exclusive fold (the first of each UTC day,
  and the next after a late change) materialises the blocks that closed since
  sketched_until from their day rows, moves sketched_until to today, and rebuilds the
  sketches of every noted block from its rows (recomputed, never merged). Shared folds
  never touch sketches or closing blocks, so they run side by side; the exclusive one
  waits for them to commit, so it sees all their rows. The mode is chosen before the
  fold writes anything, so no transaction ever upgrades the lock (no deadlocks).
- Readers (db/profiles.py) choose per block, in one statement and snapshot: a sketch
  when the block is sketched and not noted dirty, its rows when it is materialised,
  else its day rows.
- `fsar_rebuild_sketches()` does the exclusive part on demand (bulk loads, backfill).

The fold is PL/pgSQL now (its plans are cached per session) and runs without JIT: its
estimates cross jit_above_cost, and compiling costs ~80 ms — more than a whole fold.

Revision ID: 0015_duration_sketches
Revises: 0014_roi
"""

from alembic import op

from fsar_tui.db.migrations import revision_module

revision = "0015_duration_sketches"
down_revision = "0014_roi"
branch_labels = None
depends_on = None

FOLD_LOCK = 727_001  # advisory lock key of the fold

# Day number (since 1970-01-01) up to which blocks are materialised and sketched.
SKETCHED_DAY = "((SELECT sketched_until FROM rollup_state) - date '1970-01-01')"
TODAY = "(now() AT TIME ZONE 'UTC')::date"


def _roi_revision():
    """0014's fold template (one definition of the fold's SQL, extended here)."""
    return revision_module(__file__, "0014_roi.py")


DIRTY_CTE = f"""             dirty AS (
                INSERT INTO duration_sketch_dirty (grain, start, task_type, ai_model)
                SELECT DISTINCT b.grain, timestamptz '1970-01-01 00:00:00+00' + make_interval(days => b.first),
                       b.task_type, b.ai_model
                FROM (SELECT g.grain, d.task_type, d.ai_model, d.day - d.day % (1 << g.grain) AS first
                      FROM (SELECT DISTINCT floor(extract(epoch FROM finished_at) / 86400)::int AS day,
                                   task_type, ai_model FROM moved) d
                      CROSS JOIN generate_series(0, 5) AS g(grain)) b
                WHERE b.first + (1 << b.grain) <= {SKETCHED_DAY}
                RETURNING 1),
"""


def fold_sql() -> str:
    roi = _roi_revision()
    template = roi.FOLD_TEMPLATE.format(costs=roi.COSTS_CTE + DIRTY_CTE)
    body = template[template.index("AS $$") + len("AS $$") : template.rindex("$$")]
    blocks = "FROM daily d CROSS JOIN generate_series(0, 5) AS g(grain)\n"
    assert body.count(blocks) == 1
    body = body.replace(
        blocks,
        blocks + f"        WHERE g.grain = 0 OR d.day - d.day % (1 << g.grain) + (1 << g.grain) <= {SKETCHED_DAY}\n",
    )
    return f"""
    CREATE OR REPLACE FUNCTION fsar_fold_duration_samples() RETURNS void
    LANGUAGE plpgsql SET jit = off AS $fold$
    DECLARE
        exclusive boolean := (SELECT sketched_until FROM rollup_state) < {TODAY}
                             OR EXISTS (SELECT 1 FROM duration_sketch_dirty);
    BEGIN
        IF exclusive THEN
            PERFORM pg_advisory_xact_lock({FOLD_LOCK});
        ELSE
            PERFORM pg_advisory_xact_lock_shared({FOLD_LOCK});
        END IF;
{body}
        IF exclusive THEN
            PERFORM fsar_close_blocks_and_rebuild_sketches();
        END IF;
    END
    $fold$
    """


CLOSE_AND_REBUILD = f"""
    CREATE FUNCTION fsar_close_blocks_and_rebuild_sketches() RETURNS void
    LANGUAGE sql SET jit = off AS $$
        -- Blocks of 2..32 days that ended since sketched_until: their rows, from their days.
        WITH closing AS (
            SELECT g.grain, e - (1 << g.grain) AS first
            FROM generate_series(1, 5) AS g(grain)
            CROSS JOIN generate_series({SKETCHED_DAY} + 1, {TODAY} - date '1970-01-01') AS e
            WHERE e % (1 << g.grain) = 0)
        INSERT INTO duration_rollups AS r (grain, start, task_type, ai_model, rollout_revision_id, outcome,
                                           metric, bucket, currency, n, total)
        SELECT c.grain, timestamptz '1970-01-01 00:00:00+00' + make_interval(days => c.first),
               d.task_type, d.ai_model, d.rollout_revision_id, d.outcome, d.metric, d.bucket, d.currency,
               sum(d.n), sum(d.total)
        FROM closing c
        JOIN duration_rollups d ON d.grain = 0
             AND d.start >= timestamptz '1970-01-01 00:00:00+00' + make_interval(days => c.first)
             AND d.start < timestamptz '1970-01-01 00:00:00+00' + make_interval(days => c.first + (1 << c.grain))
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
        ORDER BY 1, 2
        ON CONFLICT (grain, start, rollout_revision_id, task_type, ai_model, outcome, metric, bucket, currency)
        DO UPDATE SET n = EXCLUDED.n, total = EXCLUDED.total;
        -- Every block that closed since sketched_until needs its sketch.
        INSERT INTO duration_sketch_dirty (grain, start, task_type, ai_model)
        SELECT DISTINCT r.grain, r.start, r.task_type, r.ai_model
        FROM generate_series(0, 5) AS g(grain)
        JOIN duration_rollups r ON r.grain = g.grain AND r.rollout_revision_id = -1
             AND r.start >= timestamptz '1970-01-01 00:00:00+00'
                            + make_interval(days => {SKETCHED_DAY} + 1 - (1 << g.grain))
             AND r.start <= timestamptz '1970-01-01 00:00:00+00'
                            + make_interval(days => ({TODAY} - date '1970-01-01') - (1 << g.grain))
        WHERE {SKETCHED_DAY} < {TODAY} - date '1970-01-01';
        UPDATE rollup_state SET sketched_until = {TODAY} WHERE sketched_until < {TODAY};
        DELETE FROM duration_sketches s USING duration_sketch_dirty k
        WHERE s.grain = k.grain AND s.start = k.start AND s.task_type = k.task_type AND s.ai_model = k.ai_model;
        INSERT INTO duration_sketches (grain, start, task_type, ai_model, outcome, metric, currency,
                                       buckets, counts, total)
        SELECT r.grain, r.start, r.task_type, r.ai_model, r.outcome, r.metric, r.currency,
               array_agg(r.bucket ORDER BY r.bucket), array_agg(r.n ORDER BY r.bucket), sum(r.total)
        FROM (SELECT DISTINCT grain, start, task_type, ai_model FROM duration_sketch_dirty) k
        JOIN duration_rollups r ON r.grain = k.grain AND r.start = k.start AND r.rollout_revision_id = -1
                               AND r.task_type = k.task_type AND r.ai_model = k.ai_model
        WHERE r.n <> 0
        GROUP BY 1, 2, 3, 4, 5, 6, 7;
        DELETE FROM duration_sketch_dirty;
    $$
"""

REBUILD_ON_DEMAND = f"""
    CREATE FUNCTION fsar_rebuild_sketches() RETURNS void
    LANGUAGE sql SET jit = off AS $$
        SELECT pg_advisory_xact_lock({FOLD_LOCK});
        SELECT fsar_close_blocks_and_rebuild_sketches();
    $$
"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE duration_sketches (
            grain      smallint NOT NULL CHECK (grain BETWEEN 0 AND 5),
            start      timestamptz NOT NULL,
            task_type  text NOT NULL,
            ai_model   text NOT NULL,
            outcome    text NOT NULL,
            metric     smallint NOT NULL,
            currency   text NOT NULL,
            buckets    smallint[] NOT NULL,
            counts     bigint[] NOT NULL,
            total      float8 NOT NULL,
            PRIMARY KEY (grain, start, task_type, ai_model, outcome, metric, currency),
            CHECK (cardinality(buckets) = cardinality(counts))
        )
    """)
    op.execute("""
        CREATE TABLE duration_sketch_dirty (
            grain     smallint NOT NULL,
            start     timestamptz NOT NULL,
            task_type text NOT NULL,
            ai_model  text NOT NULL
        )
    """)
    op.execute("LOCK TABLE execution_tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("SELECT fsar_fold_duration_samples()")
    op.execute("ALTER TABLE rollup_state ADD COLUMN sketched_until date")
    # Start from "nothing materialised since yesterday"; the rebuild below closes and
    # sketches everything up to today. Blocks still open lose their rows: they are
    # written when they close.
    op.execute(f"UPDATE rollup_state SET sketched_until = {TODAY} - 1")
    op.execute("ALTER TABLE rollup_state ALTER COLUMN sketched_until SET NOT NULL")
    op.execute(f"""DELETE FROM duration_rollups WHERE grain >= 1
                   AND start + make_interval(days => 1 << grain) > ({TODAY} - 1)::timestamp AT TIME ZONE 'UTC'""")
    op.execute("ANALYZE rollup_state")  # one row; unanalysed, the planner guesses ~1,400
    op.execute(CLOSE_AND_REBUILD)
    op.execute(REBUILD_ON_DEMAND)
    op.execute(fold_sql())
    op.execute(f"""
        INSERT INTO duration_sketch_dirty (grain, start, task_type, ai_model)
        SELECT DISTINCT grain, start, task_type, ai_model FROM duration_rollups
        WHERE rollout_revision_id = -1 AND grain >= 0
          AND start + make_interval(days => 1 << grain) <= ({TODAY} - 1)::timestamp AT TIME ZONE 'UTC'
    """)
    op.execute("SELECT fsar_rebuild_sketches()")


def downgrade() -> None:
    op.execute("LOCK TABLE execution_tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("SELECT fsar_fold_duration_samples()")
    # 0013's fold keeps every block current: write the open blocks' rows from their days.
    op.execute(f"""
        INSERT INTO duration_rollups AS r (grain, start, task_type, ai_model, rollout_revision_id, outcome,
                                           metric, bucket, currency, n, total)
        SELECT g.grain, timestamptz '1970-01-01 00:00:00+00'
                        + make_interval(days => d.day - d.day % (1 << g.grain)),
               d.task_type, d.ai_model, d.rollout_revision_id, d.outcome, d.metric, d.bucket, d.currency,
               sum(d.n), sum(d.total)
        FROM (SELECT (start AT TIME ZONE 'UTC')::date - date '1970-01-01' AS day, * FROM duration_rollups
              WHERE grain = 0) d
        CROSS JOIN generate_series(1, 5) AS g(grain)
        WHERE d.day - d.day % (1 << g.grain) + (1 << g.grain) > {SKETCHED_DAY}
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
        ON CONFLICT (grain, start, rollout_revision_id, task_type, ai_model, outcome, metric, bucket, currency)
        DO UPDATE SET n = EXCLUDED.n, total = EXCLUDED.total
    """)
    op.execute("DROP FUNCTION fsar_fold_duration_samples()")
    op.execute(_roi_revision().FOLD)
    op.execute("DROP FUNCTION fsar_rebuild_sketches()")
    op.execute("DROP FUNCTION fsar_close_blocks_and_rebuild_sketches()")
    op.execute("ALTER TABLE rollup_state DROP COLUMN sketched_until")
    op.execute("DROP TABLE duration_sketch_dirty")
    op.execute("DROP TABLE duration_sketches")
