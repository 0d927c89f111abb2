"""Finite task times: one task at ±infinity no longer stops the duration rollups for good.

Why: PostgreSQL and the schema accept 'infinity' and '-infinity' in a task's timestamps,
and the executing side writes them. One finished task with finished_at = 'infinity' put
a sample at infinity in task_duration_samples, and every later
`fsar_fold_duration_samples()` failed on it ("cannot convert infinity to integer": its
day number): the samples never folded again, and the audit pass and `fsar-tui retention
run`, which fold first, failed on every run. A started_at, queued_at or finished_at at
±infinity next to a started_at made the sample itself fail ("cannot subtract infinite
timestamps"), and with it the write that finished the task — the executor's finish, an
operator's cancel or retry, and the lease reaper's whole batch (one such running task
and its lease ran out: no task was ever reaped again). Pricing the ending attempt's run
time failed the same way whenever a compute rate was in force.

What a time that is not finite (`isfinite()` false) counts for now:
- finished_at: nothing in the rollups. Every rollup (duration_rollups' hours and days,
  the sketches, cost_rollups' days) files a task under the time it finished; there is
  none to file it under, and a recount over any window of finish times (what the rollups
  stand for) does not see it either. The sample is still written — the trigger and its
  ±1 bookkeeping are unchanged, so a task moved later to a finite finish takes out
  exactly what it put in — and `fsar_sample_metrics` gives no row for it, and the fold
  removes it unfolded (both its +1 and any −1 of the same task: they can only cancel).
  The task still counts where time plays no part (task_counts by status).
- started_at or queued_at: the task keeps its count and its cost on its finish day; only
  the duration that needs the time is absent — run time (finished − started) without a
  finite start, queue wait (started − queued) without a finite start and queue time —
  as for a task that never started. Samples carry NULL there, like those of tasks with
  no started_at.
- a non-finite run_ms / wait_ms in a sample (none can come from the trigger; a role with
  INSERT on the samples could write one) is treated as absent by `fsar_sample_metrics`,
  so it can neither fail the fold (its bucket would overflow smallint) nor make a
  total infinite.
- pricing (`fsar_price_attempt`): an attempt whose start or end is not finite has no run
  time to price: as when no compute rate is in force, it is counted in
  unpriced_attempts (its cost a lower bound) and adds no compute cost; its model cost is
  priced as before.
Far but finite times (year 20000, 4713 BC) already folded and are unchanged.

The bulk path (db/bulk_rollups.py, `fsar-tui seed`) applies the same rules, so it still
gives what folding the same tasks' samples gives.

These functions' texts live in the revisions that created them (0013, 0014, 0024,
0028), as here; none is among the state-changing functions `security-audit` compares
with a shipped source (db/shipped_sql.py), and CREATE OR REPLACE keeps their owner,
grants, SECURITY DEFINER and settings only as each text says them again (the fold's and
the pricing trigger's texts do). fsar_sample_metrics and fsar_task_sample stay SQL
functions without settings: the fold and the readers inline them.

Downgrade folds once (removing any non-finite sample, which the old fold would fail
on), then restores the four previous texts: 0024's fold and sample, 0013's
fsar_sample_metrics (copied below: 0013 created it inline) and 0028's pricing trigger.

Revision ID: 0034_finite_task_times
Revises: 0033_count_delta_order
"""

from alembic import op

from fsar_tui.db.migrations import revision_module

revision = "0034_finite_task_times"
down_revision = "0033_count_delta_order"
branch_labels = None
depends_on = None

_V0024 = revision_module(__file__, "0024_exact_cost.py")
_V0028 = revision_module(__file__, "0028_cost_integrity.py")

TASK_SAMPLE = """
        CREATE OR REPLACE FUNCTION fsar_task_sample(t execution_tasks, n smallint) RETURNS task_duration_samples
        LANGUAGE sql STABLE AS $$
            SELECT ROW(t.finished_at, t.task_type, coalesce(t.ai_model, ''), coalesce(t.rollout_revision_id, 0),
                       t.status,
                       CASE WHEN isfinite(t.started_at) AND isfinite(t.finished_at)
                            THEN greatest(0, extract(epoch FROM t.finished_at - t.started_at) * 1000)::float8 END,
                       CASE WHEN isfinite(t.started_at) AND isfinite(t.queued_at)
                            THEN greatest(0, extract(epoch FROM t.started_at - t.queued_at) * 1000)::float8 END,
                       t.cost_minor, coalesce(t.currency, ''), n, t.idea_id, t.compute_cost_minor, t.waste_minor,
                       t.unpriced_attempts)::task_duration_samples
        $$
    """
TASK_SAMPLE_0024 = _V0024.TASK_SAMPLE


def _finite(value: str) -> str:
    """`value` (float8) when finite, else NULL (NaN compares above 'Infinity': out too)."""
    return f"CASE WHEN {value} > '-Infinity' AND {value} < 'Infinity' THEN {value} END"


SAMPLE_METRICS = f"""
        CREATE OR REPLACE FUNCTION fsar_sample_metrics(s task_duration_samples,
                                            OUT metric smallint, OUT bucket smallint, OUT currency text,
                                            OUT value float8)
        RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $$
            SELECT v.metric, v.bucket, v.currency, v.value
            FROM (VALUES (0::smallint, fsar_duration_bucket({_finite("s.run_ms")}), ''::text, {_finite("s.run_ms")}),
                         (1::smallint, fsar_duration_bucket({_finite("s.wait_ms")}), ''::text, {_finite("s.wait_ms")}),
                         (2::smallint, 0::smallint, s.currency, coalesce(s.cost_minor, 0)::float8))
                 AS v(metric, bucket, currency, value)
            WHERE isfinite(s.finished_at) AND (v.metric = 2 OR v.value IS NOT NULL)
        $$
    """

# As revision 0013 created it (inline in its upgrade, so copied here).
SAMPLE_METRICS_0013 = """
        CREATE OR REPLACE FUNCTION fsar_sample_metrics(s task_duration_samples,
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
    """

# 0024's fold, reading only the samples it can file under a time: the others are
# deleted with the rest and folded nowhere (every CTE below reads `moved`).
_MOVED_0024 = "WITH moved AS (DELETE FROM task_duration_samples RETURNING *),"
_MOVED = """WITH removed AS (DELETE FROM task_duration_samples RETURNING *),
             moved AS (SELECT * FROM removed WHERE isfinite(finished_at)),"""
FOLD_0024 = _V0024.FOLD
assert FOLD_0024.count(_MOVED_0024) == 1
FOLD = FOLD_0024.replace(_MOVED_0024, _MOVED)

# 0028's pricing trigger: no rate looked up for a run without a finite start and end.
_RATE_0028 = "        per_hour := fsar_compute_rate_at(NEW.currency, started);\n"
_RATE = """        -- A start or end at ±infinity has no run time to price: as no rate in force (unpriced).
        per_hour := CASE WHEN isfinite(started) AND isfinite(ended)
                         THEN fsar_compute_rate_at(NEW.currency, started) END;
"""
PRICE_ATTEMPT_0028 = _V0028.PRICE_ATTEMPT
assert PRICE_ATTEMPT_0028.count(_RATE_0028) == 1
PRICE_ATTEMPT = PRICE_ATTEMPT_0028.replace(_RATE_0028, _RATE)


def upgrade() -> None:
    op.execute(SAMPLE_METRICS)
    op.execute(FOLD)
    op.execute(TASK_SAMPLE)
    op.execute(PRICE_ATTEMPT)


def downgrade() -> None:
    # Out with the samples the old fold cannot fold, while this fold can remove them.
    op.execute("SELECT fsar_fold_duration_samples()")
    op.execute(PRICE_ATTEMPT_0028)
    op.execute(TASK_SAMPLE_0024)
    op.execute(FOLD_0024)
    op.execute(SAMPLE_METRICS_0013)
