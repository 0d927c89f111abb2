"""Duration sketches: each day/block histogram of a type × model as one row of arrays.

Why: the 30-day type × model profile added up ~30,000 (block × bucket) rollup rows in
a hash aggregate — 40–54 ms at 10 M tasks, at the 50 ms goal rather than under it.
A sketch row holds one (grain, start, task_type, ai_model, outcome, metric, currency)
histogram — the compact rollup rows of revision 0013 (all revisions; outcome '*' for
run and wait) — as sorted `buckets` and `counts` arrays plus the sum of values. The
profile reads a few hundred sketch rows and merges the arrays in Python.

Kept exact by the fold, in the same transaction as the rollups it mirrors:
`fsar_fold_duration_samples()` now notes the (grain, start, type, model) blocks its
samples touch in `duration_sketch_dirty`, folds as before, then rebuilds those blocks'
sketches from `duration_rollups` (recomputed, never merged, so a sketch cannot drift
from its rows) and clears the notes. Folds take a transaction-level advisory lock, so
two folds never rebuild the same sketch from different snapshots; a fold is a few
milliseconds (the trigger's) to seconds (a backfill batch), and waiting workers only
wait for that. Hour rows (windows within three days) and unfolded samples are still
read row by row — they are few.

Revision ID: 0015_duration_sketches
Revises: 0014_roi
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0015_duration_sketches"
down_revision = "0014_roi"
branch_labels = None
depends_on = None


def _roi_revision():
    """0014's fold template (one definition of the fold's SQL, extended here)."""
    spec = importlib.util.spec_from_file_location("fsar_0014_roi", Path(__file__).with_name("0014_roi.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FOLD_LOCK = 727_001  # pg_advisory_xact_lock key of the fold

DIRTY_CTE = """             dirty AS (
                INSERT INTO duration_sketch_dirty (grain, start, task_type, ai_model)
                SELECT DISTINCT g.grain,
                       timestamptz '1970-01-01 00:00:00+00'
                           + make_interval(days => d.day - d.day % (1 << g.grain)),
                       d.task_type, d.ai_model
                FROM (SELECT DISTINCT floor(extract(epoch FROM finished_at) / 86400)::int AS day, task_type, ai_model
                      FROM moved) d
                CROSS JOIN generate_series(0, 5) AS g(grain)
                RETURNING 1),
"""

REBUILD = """        DELETE FROM duration_sketches s USING duration_sketch_dirty k
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
"""


def fold_sql() -> str:
    roi = _roi_revision()
    fold = roi.FOLD_TEMPLATE.format(costs=roi.COSTS_CTE + DIRTY_CTE)
    head = "LANGUAGE sql AS $$\n"
    fold = fold.replace(head, head + f"        SELECT pg_advisory_xact_lock({FOLD_LOCK});\n", 1)
    tail = "    $$\n"
    assert fold.endswith(tail)
    return fold[: -len(tail)] + REBUILD + tail


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
    op.execute(fold_sql())
    op.execute("""
        INSERT INTO duration_sketches (grain, start, task_type, ai_model, outcome, metric, currency,
                                       buckets, counts, total)
        SELECT grain, start, task_type, ai_model, outcome, metric, currency,
               array_agg(bucket ORDER BY bucket), array_agg(n ORDER BY bucket), sum(total)
        FROM duration_rollups WHERE rollout_revision_id = -1 AND grain >= 0 AND n <> 0
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    """)


def downgrade() -> None:
    op.execute("LOCK TABLE execution_tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("SELECT fsar_fold_duration_samples()")
    op.execute(_roi_revision().FOLD)
    op.execute("DROP TABLE duration_sketch_dirty")
    op.execute("DROP TABLE duration_sketches")
