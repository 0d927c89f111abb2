"""Exact cost: every attempt priced by the database, kept unrounded; waste and unpriced attempts.

Why: a task's token cost was rounded to whole minor units per attempt, so a gpt-4o-mini
attempt (≈0.15 cents) was stored as 0 and the model's 30-day cost read 44 cents instead
of 62,139.56; and a task kept one cost over all its attempts, so the cost of the
attempts that failed before a success could not be told apart.

Representation: **numeric, in minor units, unrounded** (not integer micro-units). A token
cost is tokens × (price in minor units per Mtok, 6 decimals) × 10⁻⁶ — at most 12
decimals, kept exactly; a compute cost is run seconds × (minor units per hour) / 3600,
rounded to 10⁻⁶ minor units (half away from zero: a division that does not terminate).
Every sum (rollups, sketches, reports) adds exact values; rounding happens once, at
display (domain/money.py). The columns keep their names (`cost_minor`,
`compute_cost_minor`, cost_rollups' `*_cost_minor`), so readers that cast to bigint or
read the JSON keys keep working.

The database prices, not the executor (integration contract: executors write tokens and
timing). `fsar_price_attempt`, a BEFORE UPDATE trigger on execution_tasks:
- a claim (→ running) clears input/output tokens: from there they are this attempt's;
- the end of an attempt (running → anything else: finish, retry, the lease reaper, an
  operator's cancel) adds the attempt's model cost (its tokens at the model price in
  force when it started; no tokens: 0; tokens but no price in force: unknown — the cost
  is left as it was and `unpriced_attempts` counts it) and compute cost (its run time at
  the compute rate in force when it started) to the task's `cost_minor` /
  `compute_cost_minor`; if the attempt did not end in success (failed, retried, lost its
  lease, cancelled), its cost is added to `waste_minor` as well;
- every other change keeps the cost columns as they were: costs are derived, a direct
  write of them (an executor's own rounded figure, a role's UPDATE) is ignored.
The bulk loader (fsar.bulk_load = on, honoured here only for members of the table's
owner: the setting is one any role can SET) writes costs it computed the same way.

Per attempt: the event that ends an attempt (task_events, revision 0022's error) now
also carries the attempt's tokens, model cost (NULL when unpriced) and compute cost.
The sample of a task (revision 0013) carries `waste_minor` and `unpriced_attempts`, and
cost_rollups sums them per day × type × model × rollout × idea × currency.

Existing rows — recomputed where the data allows, kept where it does not:
- a task with one attempt (attempt ≤ 1): model cost recomputed from its tokens and the
  price in force at its start; compute cost from its run time and the rate then;
- a task with more attempts: only the last attempt's tokens were kept, so its cost stays
  the old rounded sum (its compute cost too); its waste is that sum minus what its last
  attempt costs recomputed (a success) or the whole sum (failed, cancelled); earlier
  attempts' events carry no cost. The upgrade prints how many tasks it recomputed and
  how many it could not (`fsar-tui migrate` shows it).
The rollups follow: every counted task's old sample is taken out (−1) and its new one
put in (+1), and one fold applies both — run and wait cancel out, costs move by the
difference — so the rollups equal a recount afterwards (COST_DRIFT_SQL).

Cost: execution_tasks is rewritten once (ALTER … TYPE numeric) under an ACCESS
EXCLUSIVE lock, with its indexes; then the tasks with waste are updated, and twice
their number of samples folded. On this 2-core machine: see the README's upgrade notes.

Downgrade rounds costs back to whole minor units (half away from zero), drops waste and
the per-attempt columns, and restores 0022's trigger and 0015's fold and sample.

Revision ID: 0024_exact_cost
Revises: 0023_explicit_tick
"""

import logging

from alembic import op

from fsar_tui.db.migrations import revision_module

revision = "0024_exact_cost"
down_revision = "0023_explicit_tick"
branch_labels = None
depends_on = None

log = logging.getLogger("fsar_tui.migration_notes")  # printed by `fsar-tui migrate`

_V0013 = revision_module(__file__, "0013_duration_rollups.py")
_V0014 = revision_module(__file__, "0014_roi.py")
_V0015 = revision_module(__file__, "0015_duration_sketches.py")
_V0022 = revision_module(__file__, "0022_attempt_history.py")
_V0003 = revision_module(__file__, "0003_task_lifecycle.py")

COUNTED = _V0014.COUNTED
DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"

# The price and the compute rate in force at an instant (the trigger and the recompute).
PRICE_AT = """
    CREATE FUNCTION fsar_model_price_at(model text, at timestamptz,
                                        OUT currency text, OUT input_per_mtok numeric, OUT output_per_mtok numeric)
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
        SELECT p.currency::text, p.input_minor_per_mtok, p.output_minor_per_mtok FROM model_prices p
        WHERE p.ai_model = model AND p.effective_from <= at
        ORDER BY p.effective_from DESC, p.currency LIMIT 1
    $$
"""
RATE_AT = """
    CREATE FUNCTION fsar_compute_rate_at(cur text, at timestamptz) RETURNS numeric
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
        SELECT r.minor_per_hour FROM compute_rates r
        WHERE r.currency = cur AND r.effective_from <= at
        ORDER BY r.effective_from DESC LIMIT 1
    $$
"""
# An attempt's token cost, exact; NULL: tokens but no price in force.
TOKEN_COST = """
    CREATE FUNCTION fsar_token_cost(input_tokens bigint, output_tokens bigint,
                                    input_per_mtok numeric, output_per_mtok numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
        SELECT CASE WHEN coalesce(input_tokens, 0) = 0 AND coalesce(output_tokens, 0) = 0 THEN 0
                    WHEN input_per_mtok IS NULL THEN NULL
                    ELSE (coalesce(input_tokens, 0) * input_per_mtok
                          + coalesce(output_tokens, 0) * output_per_mtok) * 0.000001 END
    $$
"""
# Tokens at the price in force at an instant (no subquery: ALTER … USING allows none).
PRICED_TOKENS = """
    CREATE FUNCTION fsar_priced_tokens(model text, at timestamptz, input_tokens bigint, output_tokens bigint)
    RETURNS numeric
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
        SELECT fsar_token_cost(input_tokens, output_tokens, p.input_per_mtok, p.output_per_mtok)
        FROM fsar_model_price_at(model, at) p
    $$
"""
# An attempt's compute cost: run time at the rate, to 10⁻⁶ minor units.
RUN_COST = """
    CREATE FUNCTION fsar_run_cost(started timestamptz, ended timestamptz, per_hour numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
        SELECT round(greatest(0, extract(epoch FROM ended - started)) * per_hour / 3600, 6)
    $$
"""

PRICE_ATTEMPT = f"""
    CREATE FUNCTION fsar_price_attempt() RETURNS trigger
    LANGUAGE plpgsql {DEFINER} AS $$
    DECLARE
        p record;
        per_hour numeric;
        model_cost numeric;
        run_cost numeric := 0;
    BEGIN
        -- The bulk loader writes the costs it computed; a setting anyone can SET, so it is
        -- honoured only for the table owner's members (the seeder runs as the owner).
        IF current_setting('fsar.bulk_load', true) = 'on'
           AND pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = 'execution_tasks'::regclass),
                           'USAGE') THEN
            RETURN NEW;
        END IF;
        -- Costs are derived: whatever this UPDATE wrote to them, start from the row's own.
        NEW.cost_minor := OLD.cost_minor;
        NEW.compute_cost_minor := OLD.compute_cost_minor;
        NEW.waste_minor := OLD.waste_minor;
        NEW.unpriced_attempts := OLD.unpriced_attempts;
        IF NEW.status = 'running' AND OLD.status IS DISTINCT FROM 'running' THEN
            NEW.input_tokens := NULL;  -- a new attempt: the tokens written from here are its own
            NEW.output_tokens := NULL;
            RETURN NEW;
        END IF;
        IF OLD.status IS DISTINCT FROM 'running' OR NEW.status = 'running' OR OLD.started_at IS NULL THEN
            RETURN NEW;
        END IF;
        -- The attempt that started at OLD.started_at ends here.
        SELECT * INTO p FROM fsar_model_price_at(NEW.ai_model, OLD.started_at);
        model_cost := fsar_token_cost(NEW.input_tokens, NEW.output_tokens, p.input_per_mtok, p.output_per_mtok);
        NEW.currency := coalesce(NEW.currency, p.currency);
        per_hour := fsar_compute_rate_at(NEW.currency, OLD.started_at);
        IF per_hour IS NOT NULL THEN
            run_cost := fsar_run_cost(OLD.started_at, coalesce(NEW.finished_at, now()), per_hour);
            NEW.compute_cost_minor := coalesce(OLD.compute_cost_minor, 0) + run_cost;
        END IF;
        IF model_cost IS NULL THEN
            NEW.unpriced_attempts := OLD.unpriced_attempts + 1;
        ELSIF model_cost <> 0 OR OLD.cost_minor IS NOT NULL THEN  -- no tokens, never priced: stays NULL
            NEW.cost_minor := coalesce(OLD.cost_minor, 0) + model_cost;
        END IF;
        IF NEW.status <> 'succeeded' THEN
            NEW.waste_minor := coalesce(OLD.waste_minor, 0) + coalesce(model_cost, 0) + run_cost;
        END IF;
        RETURN NEW;
    END
    $$
"""

# 0022's status trigger, with the ending attempt's tokens and costs on its event.
_EVENT_0022 = """        INSERT INTO task_events (task_id, from_status, to_status, attempt, worker_id, error)
        VALUES (NEW.id, old_status, NEW.status, NEW.attempt, NEW.worker_id, attempt_error);"""
_EVENT_0024 = """        IF old_status = 'running' AND NEW.status <> 'running' THEN
            INSERT INTO task_events (task_id, from_status, to_status, attempt, worker_id, error,
                                     input_tokens, output_tokens, model_cost_minor, compute_cost_minor)
            VALUES (NEW.id, old_status, NEW.status, NEW.attempt, NEW.worker_id, attempt_error,
                    NEW.input_tokens, NEW.output_tokens,
                    CASE WHEN NEW.unpriced_attempts = OLD.unpriced_attempts
                         THEN coalesce(NEW.cost_minor, 0) - coalesce(OLD.cost_minor, 0) END,
                    coalesce(NEW.compute_cost_minor, 0) - coalesce(OLD.compute_cost_minor, 0));
        ELSE
            INSERT INTO task_events (task_id, from_status, to_status, attempt, worker_id, error)
            VALUES (NEW.id, old_status, NEW.status, NEW.attempt, NEW.worker_id, attempt_error);
        END IF;"""
assert _V0022.TRIGGER_0022.count(_EVENT_0022) == 1
TRIGGER_0024 = _V0022.TRIGGER_0022.replace(_EVENT_0022, _EVENT_0024)

# 0014's sample, with waste and unpriced attempts.
_SAMPLE_END = "n, t.idea_id, t.compute_cost_minor)::task_duration_samples"
assert _V0014.TASK_SAMPLE.count(_SAMPLE_END) == 1
TASK_SAMPLE = _V0014.TASK_SAMPLE.replace(
    _SAMPLE_END, "n, t.idea_id, t.compute_cost_minor, t.waste_minor, t.unpriced_attempts)::task_duration_samples"
)
TASK_SAMPLE_0014 = _V0014.TASK_SAMPLE

# 0014's cost rollup CTE, with waste and unpriced attempts.
COSTS_CTE = """             costs AS (
                INSERT INTO cost_rollups AS c (day, task_type, ai_model, rollout_revision_id, idea_id, currency,
                                               tasks_succeeded, tasks_failed, tasks_cancelled,
                                               model_cost_minor, compute_cost_minor, failed_cost_minor,
                                               waste_minor, unpriced_attempts)
                SELECT (finished_at AT TIME ZONE 'UTC')::date, task_type, ai_model, rollout_revision_id,
                       coalesce(idea_id, ''), currency,
                       coalesce(sum(n) FILTER (WHERE outcome = 'succeeded'), 0),
                       coalesce(sum(n) FILTER (WHERE outcome = 'failed'), 0),
                       coalesce(sum(n) FILTER (WHERE outcome = 'cancelled'), 0),
                       sum(n * coalesce(cost_minor, 0)), sum(n * coalesce(compute_cost_minor, 0)),
                       coalesce(sum(n * (coalesce(cost_minor, 0) + coalesce(compute_cost_minor, 0)))
                                FILTER (WHERE outcome <> 'succeeded'), 0),
                       sum(n * coalesce(waste_minor, 0)), sum(n * coalesce(unpriced_attempts, 0))
                FROM moved GROUP BY 1, 2, 3, 4, 5, 6
                ON CONFLICT (day, task_type, ai_model, rollout_revision_id, idea_id, currency) DO UPDATE SET
                    tasks_succeeded = c.tasks_succeeded + EXCLUDED.tasks_succeeded,
                    tasks_failed = c.tasks_failed + EXCLUDED.tasks_failed,
                    tasks_cancelled = c.tasks_cancelled + EXCLUDED.tasks_cancelled,
                    model_cost_minor = c.model_cost_minor + EXCLUDED.model_cost_minor,
                    compute_cost_minor = c.compute_cost_minor + EXCLUDED.compute_cost_minor,
                    failed_cost_minor = c.failed_cost_minor + EXCLUDED.failed_cost_minor,
                    waste_minor = c.waste_minor + EXCLUDED.waste_minor,
                    unpriced_attempts = c.unpriced_attempts + EXCLUDED.unpriced_attempts
                RETURNING 1),
"""
_FOLD_0015 = _V0015.fold_sql()
assert _FOLD_0015.count(_V0014.COSTS_CTE) == 1
# The fold stays SECURITY DEFINER (revision 0017): CREATE OR REPLACE resets what it omits.
_FOLD_HEAD = "LANGUAGE plpgsql SET jit = off AS $fold$"
assert _FOLD_0015.count(_FOLD_HEAD) == 1
FOLD = _FOLD_0015.replace(_V0014.COSTS_CTE, COSTS_CTE).replace(
    _FOLD_HEAD, f"LANGUAGE plpgsql SET jit = off {DEFINER} AS $fold$"
)
FOLD_0015 = _FOLD_0015.replace(_FOLD_HEAD, f"LANGUAGE plpgsql SET jit = off {DEFINER} AS $fold$")

# 0014's update trigger, also on the new cost columns.
_COLUMNS_END = "idea_id, compute_cost_minor ON execution_tasks"
assert _V0014.ROLLUPS_UPDATE_TRIGGER.count(_COLUMNS_END) == 1
ROLLUPS_UPDATE_TRIGGER = _V0014.ROLLUPS_UPDATE_TRIGGER.replace(
    _COLUMNS_END, "idea_id, compute_cost_minor, waste_minor, unpriced_attempts ON execution_tasks"
)

PRICE_TRIGGER = """
    CREATE TRIGGER execution_tasks_price_attempt
    BEFORE UPDATE ON execution_tasks
    FOR EACH ROW EXECUTE FUNCTION fsar_price_attempt()
"""

HELPERS = ("fsar_model_price_at(text,timestamp with time zone)", "fsar_compute_rate_at(text,timestamp with time zone)",
           "fsar_token_cost(bigint,bigint,numeric,numeric)",
           "fsar_priced_tokens(text,timestamp with time zone,bigint,bigint)",
           "fsar_run_cost(timestamp with time zone,timestamp with time zone,numeric)")  # fmt: skip

# Tasks whose samples move: every counted task with a cost or tokens (an unpriced one gains
# its count). The same set before and after: the upgrade changes neither's NULL-ness.
_RESAMPLED = f"""FROM execution_tasks t CROSS JOIN rollup_state st
    WHERE {COUNTED} AND (t.cost_minor IS NOT NULL OR t.compute_cost_minor IS NOT NULL
                         OR coalesce(t.input_tokens, 0) + coalesce(t.output_tokens, 0) > 0)"""


# A task mid-retry: its cost is of attempts that did not succeed (the running one's is not in it yet).
MID_RETRY = "status = 'queued' AND attempt >= 1 OR status = 'running' AND attempt >= 2"


def _samples(n: int) -> None:
    op.execute(f"INSERT INTO task_duration_samples SELECT (fsar_task_sample(t, {n}::smallint)).* {_RESAMPLED}")


def _count(sql: str) -> int:
    return int(op.get_bind().exec_driver_sql(sql).scalar() or 0)


def _backfill_waste(one_attempt: str) -> int:
    """waste_minor and unpriced_attempts of existing rows; returns how many were unpriced."""
    op.execute("SET LOCAL fsar.bulk_load = 'on'")
    # Waste: all of a task that did not succeed; of a success after retries, all but its
    # last attempt (recomputed from the last attempt's tokens and run, which were kept).
    # A task mid-retry (queued again after an attempt, or running its second or later):
    # the cost it carries is of attempts that did not succeed — all waste. (This upgrade
    # has shipped nowhere but this repository: changed in place, issue 17's review.)
    op.execute(f"""
        UPDATE execution_tasks
        SET waste_minor = CASE
            WHEN status <> 'succeeded' THEN coalesce(cost_minor, 0) + coalesce(compute_cost_minor, 0)
            ELSE greatest(0, coalesce(cost_minor, 0) + coalesce(compute_cost_minor, 0)
                  - coalesce(fsar_priced_tokens(ai_model, started_at, input_tokens, output_tokens), 0)
                  - coalesce(fsar_run_cost(started_at, finished_at, fsar_compute_rate_at(currency, started_at)), 0))
            END
        WHERE status IN ('failed', 'cancelled') AND (cost_minor IS NOT NULL OR compute_cost_minor IS NOT NULL)
           OR status = 'succeeded' AND attempt > 1
           OR ({MID_RETRY}) AND (cost_minor IS NOT NULL OR compute_cost_minor IS NOT NULL)
    """)
    # A finished single attempt with tokens and no price in force: unpriced, not free.
    unpriced = _count(f"""
        WITH u AS (UPDATE execution_tasks SET unpriced_attempts = 1
                   WHERE {one_attempt} AND coalesce(input_tokens, 0) + coalesce(output_tokens, 0) > 0
                     AND fsar_priced_tokens(ai_model, started_at, input_tokens, output_tokens) IS NULL
                   RETURNING 1)
        SELECT count(*) FROM u""")
    op.execute("SET LOCAL fsar.bulk_load = 'off'")
    return unpriced


def upgrade() -> None:
    op.execute("LOCK TABLE execution_tasks IN ACCESS EXCLUSIVE MODE")
    op.execute("SELECT fsar_fold_duration_samples()")
    for sql in (PRICE_AT, RATE_AT, TOKEN_COST, PRICED_TOKENS, RUN_COST):
        op.execute(sql)
    _samples(-1)  # the rollups' view of each task, taken out before its costs change
    # Its column list names cost_minor, whose type changes (recreated below).
    op.execute("DROP TRIGGER execution_tasks_rollups_update ON execution_tasks")
    op.execute(
        "ALTER TABLE task_duration_samples ALTER COLUMN cost_minor TYPE numeric, "
        "ALTER COLUMN compute_cost_minor TYPE numeric, ADD COLUMN waste_minor numeric, "
        "ADD COLUMN unpriced_attempts integer"
    )
    # What can be recomputed: a finished task of one attempt (its tokens and run are all there was).
    one_attempt = "attempt <= 1 AND started_at IS NOT NULL AND status IN ('succeeded', 'failed', 'cancelled')"
    total = _count(
        "SELECT count(*) FROM execution_tasks WHERE cost_minor IS NOT NULL OR compute_cost_minor IS NOT NULL"
    )
    kept = _count(
        "SELECT count(*) FROM execution_tasks WHERE (cost_minor IS NOT NULL OR compute_cost_minor IS NOT NULL) "
        f"AND NOT ({one_attempt})"
    )
    mid_retry = _count(
        "SELECT count(*) FROM execution_tasks WHERE (cost_minor IS NOT NULL OR compute_cost_minor IS NOT NULL) "
        f"AND ({MID_RETRY})"
    )
    # One rewrite: the types change and single-attempt tasks are repriced in the same pass.
    op.execute(f"""
        ALTER TABLE execution_tasks
            ALTER COLUMN cost_minor TYPE numeric USING (
                CASE WHEN {one_attempt} AND input_tokens IS NOT NULL
                     THEN coalesce(fsar_priced_tokens(ai_model, started_at, input_tokens, output_tokens), cost_minor)
                     ELSE cost_minor END),
            ALTER COLUMN compute_cost_minor TYPE numeric USING (
                CASE WHEN {one_attempt} AND compute_cost_minor IS NOT NULL
                     THEN coalesce(fsar_run_cost(started_at, finished_at,
                                                 fsar_compute_rate_at(currency, started_at)), compute_cost_minor)
                     ELSE compute_cost_minor END),
            ADD COLUMN waste_minor numeric,
            ADD COLUMN unpriced_attempts integer NOT NULL DEFAULT 0
    """)
    # No trigger fires on the updates below: fsar-tui's see fsar.bulk_load; the customer's
    # are disabled around them (0003's user_triggers_disabled says why, and why not
    # session_replication_role).
    with _V0003.user_triggers_disabled("execution_tasks"):
        unpriced = _backfill_waste(one_attempt)
    op.execute(
        "ALTER TABLE cost_rollups ALTER COLUMN model_cost_minor TYPE numeric, "
        "ALTER COLUMN compute_cost_minor TYPE numeric, ALTER COLUMN failed_cost_minor TYPE numeric, "
        "ADD COLUMN waste_minor numeric NOT NULL DEFAULT 0, ADD COLUMN unpriced_attempts bigint NOT NULL DEFAULT 0"
    )
    op.execute(
        "ALTER TABLE task_events ADD COLUMN input_tokens bigint, ADD COLUMN output_tokens bigint, "
        "ADD COLUMN model_cost_minor numeric, ADD COLUMN compute_cost_minor numeric"
    )
    op.execute(TASK_SAMPLE)
    op.execute(FOLD)
    op.execute(ROLLUPS_UPDATE_TRIGGER)
    _samples(1)  # … and put back with its exact costs and waste
    op.execute("SELECT fsar_fold_duration_samples()")
    op.execute(PRICE_ATTEMPT)
    op.execute(PRICE_TRIGGER)
    op.execute(TRIGGER_0024)
    for helper in HELPERS:
        op.execute(f"REVOKE ALL ON FUNCTION {helper} FROM PUBLIC")
    log.info(
        "exact cost: %d task(s) with a cost; %d repriced exactly from their tokens and run time, "
        "%d kept as their old whole-minor-unit sum (more than one attempt or not finished: the tokens of "
        "attempts before the last were never kept), of which %d mid-retry (queued again, or running a "
        "later attempt): all of it waste; %d finished attempt(s) with tokens but no price in force, "
        "counted as unpriced",
        total,
        total - kept,
        kept,
        mid_retry,
        unpriced,
    )


def downgrade() -> None:
    op.execute("LOCK TABLE execution_tasks IN ACCESS EXCLUSIVE MODE")
    op.execute(_V0022.TRIGGER_0022)
    op.execute("DROP TRIGGER execution_tasks_price_attempt ON execution_tasks")
    op.execute("DROP FUNCTION fsar_price_attempt()")
    op.execute("SELECT fsar_fold_duration_samples()")
    _samples(-1)
    op.execute("DROP TRIGGER execution_tasks_rollups_update ON execution_tasks")
    op.execute(
        "ALTER TABLE execution_tasks ALTER COLUMN cost_minor TYPE bigint USING round(cost_minor), "
        "ALTER COLUMN compute_cost_minor TYPE bigint USING round(compute_cost_minor), "
        "DROP COLUMN waste_minor, DROP COLUMN unpriced_attempts"
    )
    op.execute(_V0014.ROLLUPS_UPDATE_TRIGGER)
    op.execute(FOLD_0015)
    # The sample's columns first, then its function (which builds that row type).
    op.execute("ALTER TABLE task_duration_samples DROP COLUMN waste_minor, DROP COLUMN unpriced_attempts")
    op.execute(TASK_SAMPLE_0014.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    _samples(1)
    op.execute("SELECT fsar_fold_duration_samples()")
    op.execute(
        "ALTER TABLE task_duration_samples ALTER COLUMN cost_minor TYPE bigint USING round(cost_minor), "
        "ALTER COLUMN compute_cost_minor TYPE bigint USING round(compute_cost_minor)"
    )
    op.execute(
        "ALTER TABLE cost_rollups ALTER COLUMN model_cost_minor TYPE bigint USING round(model_cost_minor), "
        "ALTER COLUMN compute_cost_minor TYPE bigint USING round(compute_cost_minor), "
        "ALTER COLUMN failed_cost_minor TYPE bigint USING round(failed_cost_minor), "
        "DROP COLUMN waste_minor, DROP COLUMN unpriced_attempts"
    )
    op.execute(
        "ALTER TABLE task_events DROP COLUMN input_tokens, DROP COLUMN output_tokens, "
        "DROP COLUMN model_cost_minor, DROP COLUMN compute_cost_minor"
    )
    for helper in HELPERS:
        op.execute(f"DROP FUNCTION {helper}")
