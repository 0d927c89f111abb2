"""Cost integrity: the holes a reviewer acting as a fleet writer found (issue 17).

1. The bulk flag. `fsar.bulk_load = on` makes the rollup triggers skip a row (the bulk
   loader adds its own totals); any role may SET it. Revisions 0024 and 0027 honoured it
   only for members of the table's owner; fsar_task_rollups_changed,
   fsar_task_counts_changed, fsar_task_status_changed and fsar_ledger_daily_changed for
   anyone, so a fleet role could write tasks and ledger entries the rollups, the counts
   and task_events never saw. `fsar_bulk_loader()` — the flag is 'on' AND session_user is
   a member of the owner of execution_tasks and of ledger_entries — is now the one test:
   each of the four functions is rewritten from its own `pg_get_functiondef` with the
   exact text `current_setting('fsar.bulk_load', true) = 'on'` replaced (asserted to occur
   once; SECURITY DEFINER and search_path are part of that definition and so kept), as are
   0027's fraud velocity trigger and fsar_price_attempt. The status trigger's other test,
   `IS DISTINCT FROM 'off'` (an operator's action pins the flag off), is not that text and
   stays.
2. Costs on INSERT. fsar_price_attempt was BEFORE UPDATE only: a writer inserting a task
   with cost_minor, waste_minor or unpriced_attempts of its choosing kept them. It is now
   BEFORE INSERT OR UPDATE: a non-owner's insert has its derived columns cleared (costs and
   waste NULL, unpriced 0) and, if the row is inserted finished with a started_at, is
   priced as one attempt that ran from started_at to finished_at. The owner's members
   (migrations, the seeder, tests as postgres) keep what they write.
3. Currency. The price lookup took the newest price in any currency, and the task kept its
   own: a USD task of a model later priced in EUR had EUR amounts added to its USD cost.
   `fsar_model_price_in(model, currency, at)` takes the price in force in that currency
   (NULL currency: any, the newest — a task's first priced attempt gives it its currency).
   A task with a currency is priced in it only; no price in that currency in force: the
   attempt is unpriced. Once a task carries a cost, an UPDATE cannot change its currency
   (its amounts would be relabelled).
4. (In 0024 itself, which has shipped nowhere but this repository: tasks mid-retry at the
   upgrade keep their cost as waste.)
5. A missing compute rate. No rate in force for the task's currency (or no currency at
   all) made the attempt's compute cost silently 0. Such an attempt is now counted in
   `unpriced_attempts` like one without a model price — "attempts without a price or
   compute rate": its cost is a lower bound either way — and its model cost, when known,
   is still added. The attempt's event (task_events.model_cost_minor) is NULL for any
   attempt so counted, as for an unpriced one. One counter, not a sibling: the sample,
   cost_rollups, the fold, the gate and ROI already carry and show this one, and what an
   operator does about either is the same (add the missing price or rate).

Downgrade restores 0024's fsar_price_attempt (BEFORE UPDATE), the six functions' flag
test and drops the two helpers. No data moves either way.

Revision ID: 0028_cost_integrity
Revises: 0027_fraud_velocity
"""

from alembic import op

from fsar_tui.db.migrations import revision_module

revision = "0028_cost_integrity"
down_revision = "0027_fraud_velocity"
branch_labels = None
depends_on = None

_V0024 = revision_module(__file__, "0024_exact_cost.py")
_V0027 = revision_module(__file__, "0027_fraud_velocity.py")

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"
OWNER_OF = "(SELECT relowner FROM pg_class WHERE oid = '{table}'::regclass)"

BULK_LOADER = f"""
    CREATE FUNCTION fsar_bulk_loader() RETURNS boolean
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
        -- A setting any role can SET: honoured only for the tables' owner's members.
        SELECT coalesce(current_setting('fsar.bulk_load', true) = 'on', false)
           AND pg_has_role(session_user, {OWNER_OF.format(table="execution_tasks")}, 'USAGE')
           AND pg_has_role(session_user, {OWNER_OF.format(table="ledger_entries")}, 'USAGE')
    $$
"""

PRICE_IN = """
    CREATE FUNCTION fsar_model_price_in(model text, cur text, at timestamptz,
                                        OUT currency text, OUT input_per_mtok numeric, OUT output_per_mtok numeric)
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
        SELECT p.currency::text, p.input_minor_per_mtok, p.output_minor_per_mtok FROM model_prices p
        WHERE p.ai_model = model AND (cur IS NULL OR p.currency = cur) AND p.effective_from <= at
        ORDER BY p.effective_from DESC, p.currency LIMIT 1
    $$
"""

HELPERS = ("fsar_bulk_loader()", "fsar_model_price_in(text,text,timestamp with time zone)")

PRICE_ATTEMPT = f"""
    CREATE OR REPLACE FUNCTION fsar_price_attempt() RETURNS trigger
    LANGUAGE plpgsql {DEFINER} AS $$
    DECLARE
        p record;
        per_hour numeric;
        model_cost numeric;
        run_cost numeric := 0;
        started timestamptz;
        ended timestamptz;
    BEGIN
        IF fsar_bulk_loader() THEN
            RETURN NEW;  -- the bulk loader writes the costs it computed
        END IF;
        IF TG_OP = 'INSERT' THEN
            -- The owner's members (migrations, the seeder) write what they computed; anyone
            -- else's costs are derived, from nothing: a row inserted finished is one attempt.
            IF pg_has_role(session_user, {OWNER_OF.format(table="execution_tasks")}, 'USAGE') THEN
                RETURN NEW;
            END IF;
            NEW.cost_minor := NULL;
            NEW.compute_cost_minor := NULL;
            NEW.waste_minor := NULL;
            NEW.unpriced_attempts := 0;
            IF NEW.finished_at IS NULL OR NEW.started_at IS NULL THEN
                RETURN NEW;
            END IF;
            started := NEW.started_at;
            ended := NEW.finished_at;
        ELSE
            -- Costs are derived: whatever this UPDATE wrote to them, start from the row's own.
            NEW.cost_minor := OLD.cost_minor;
            NEW.compute_cost_minor := OLD.compute_cost_minor;
            NEW.waste_minor := OLD.waste_minor;
            NEW.unpriced_attempts := OLD.unpriced_attempts;
            IF OLD.cost_minor IS NOT NULL OR OLD.compute_cost_minor IS NOT NULL OR OLD.waste_minor IS NOT NULL THEN
                NEW.currency := OLD.currency;  -- amounts are in it: never relabelled
            END IF;
            IF NEW.status = 'running' AND OLD.status IS DISTINCT FROM 'running' THEN
                NEW.input_tokens := NULL;  -- a new attempt: the tokens written from here are its own
                NEW.output_tokens := NULL;
                RETURN NEW;
            END IF;
            IF OLD.status IS DISTINCT FROM 'running' OR NEW.status = 'running' OR OLD.started_at IS NULL THEN
                RETURN NEW;
            END IF;
            started := OLD.started_at;  -- the attempt that started then ends here
            ended := coalesce(NEW.finished_at, now());
        END IF;
        -- In the task's currency when it has one (never another's amounts); else the
        -- newest price's, which becomes the task's.
        SELECT * INTO p FROM fsar_model_price_in(NEW.ai_model, NEW.currency, started);
        model_cost := fsar_token_cost(NEW.input_tokens, NEW.output_tokens, p.input_per_mtok, p.output_per_mtok);
        NEW.currency := coalesce(NEW.currency, p.currency);
        per_hour := fsar_compute_rate_at(NEW.currency, started);
        IF per_hour IS NOT NULL THEN
            run_cost := fsar_run_cost(started, ended, per_hour);
            NEW.compute_cost_minor := coalesce(NEW.compute_cost_minor, 0) + run_cost;
        END IF;
        IF model_cost IS NULL OR per_hour IS NULL THEN
            NEW.unpriced_attempts := NEW.unpriced_attempts + 1;  -- no price or no compute rate: a lower bound
        END IF;
        IF model_cost IS NOT NULL AND (model_cost <> 0 OR NEW.cost_minor IS NOT NULL) THEN
            NEW.cost_minor := coalesce(NEW.cost_minor, 0) + model_cost;  -- no tokens, never priced: stays NULL
        END IF;
        IF NEW.status <> 'succeeded' THEN
            NEW.waste_minor := coalesce(NEW.waste_minor, 0) + coalesce(model_cost, 0) + run_cost;
        END IF;
        RETURN NEW;
    END
    $$
"""
PRICE_ATTEMPT_0024 = _V0024.PRICE_ATTEMPT.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)

PRICE_TRIGGER = """
    CREATE TRIGGER execution_tasks_price_attempt
    BEFORE INSERT OR UPDATE ON execution_tasks
    FOR EACH ROW EXECUTE FUNCTION fsar_price_attempt()
"""
PRICE_TRIGGER_0024 = _V0024.PRICE_TRIGGER

FLAG = "current_setting('fsar.bulk_load', true) = 'on'"
# The four functions that honoured the flag for anyone.
OPEN_TO_ALL = (
    "fsar_task_rollups_changed()",
    "fsar_task_counts_changed()",
    "fsar_task_status_changed()",
    "fsar_ledger_daily_changed()",
)
# 0027's own owner test, replaced by the shared one.
FRAUD_FLAG = """current_setting('fsar.bulk_load', true) = 'on'
           AND pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = 'ledger_entries'::regclass),
                           'USAGE')"""
assert _V0027.TRIGGER_FUNCTION.count(FRAUD_FLAG) == 1
FRAUD = "fsar_fraud_velocity_changed()"


def _rewrite(function: str, old: str, new: str) -> None:
    """Re-create `function` from its own definition with `old` (exactly once) replaced."""
    op.execute(f"""
        DO $do$
        DECLARE
            def text := pg_get_functiondef('{function}'::regprocedure);
        BEGIN
            IF length(def) - length(replace(def, $o${old}$o$, '')) <> length($o${old}$o$) THEN
                RAISE EXCEPTION USING MESSAGE = 'revision 0028: {function} does not hold the expected text once';
            END IF;
            EXECUTE replace(def, $o${old}$o$, $n${new}$n$);
        END
        $do$
    """)


def upgrade() -> None:
    op.execute(BULK_LOADER)
    op.execute(PRICE_IN)
    for helper in HELPERS:
        op.execute(f"REVOKE ALL ON FUNCTION {helper} FROM PUBLIC")
    for function in OPEN_TO_ALL:
        _rewrite(function, FLAG, "fsar_bulk_loader()")
    _rewrite(FRAUD, FRAUD_FLAG, "fsar_bulk_loader()")
    op.execute(PRICE_ATTEMPT)
    op.execute("DROP TRIGGER execution_tasks_price_attempt ON execution_tasks")
    op.execute(PRICE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER execution_tasks_price_attempt ON execution_tasks")
    op.execute(PRICE_TRIGGER_0024)
    op.execute(PRICE_ATTEMPT_0024)
    _rewrite(FRAUD, "fsar_bulk_loader()", FRAUD_FLAG)
    for function in OPEN_TO_ALL:
        _rewrite(function, "fsar_bulk_loader()", FLAG)
    for helper in HELPERS:
        op.execute(f"DROP FUNCTION {helper}")
