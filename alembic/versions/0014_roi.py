"""ROI: compute rates, task compute cost, cost and ledger rollups, Stripe events.

Why: the ROI screen needs revenue, cost and profit per type, model, rollout, idea and
day over 10 M tasks and a million ledger entries in well under 100 ms; a GROUP BY over
the tables takes seconds. Money stays integer minor units per ISO currency throughout.

- `compute_rates` (append-only, like model_prices): minor units per hour of run time,
  per currency, with the time it took effect. `execution_tasks.compute_cost_minor` is
  fixed when an attempt ends (rate in force at the attempt's start × its run time,
  added up over attempts, like `cost_minor` for tokens), so a rate change never
  rewrites history. NULL for tasks that predate this revision.
- Task costs stay on the task row (one row per task, not two ledger rows: 10 M tasks
  would otherwise be 20 M ledger rows); ledger entries of kind model_cost and
  compute_cost remain for costs that belong to no task (an invoice). ROI adds both.
- `cost_rollups`: per UTC day × task_type × ai_model × rollout revision × idea ×
  currency, tasks by outcome, model cost, compute cost and the cost of tasks that
  ended failed or cancelled. It is folded from the same samples as the duration
  rollups (revision 0013), so the same "counted" rule, trigger, backfill and bulk-load
  path keep it exact; the samples gain idea_id and compute_cost_minor for it.
- `ledger_daily`: per UTC day × kind × currency × idea, entries and amount; a row
  trigger keeps it in the same transaction as the ledger change (ledger writes are
  rare next to task transitions, so a plain upsert's row lock is affordable). The bulk
  loader (fsar.bulk_load = on) adds its own rows.
- `stripe_events`: every Stripe event ingested, by event id (idempotency), with what
  was done with it; `payment_funnel_daily` counts payment intents created, succeeded
  and failed (with the failure reason) per day and currency, kept by trigger.
- Indexes for the fraud checks: revenue by customer and by card fingerprint over time,
  charges whose card country differs from the IP country, refunds and disputes by
  time, and charge lookups for refunds and disputes.

Adoption folds pending samples under the old shape, then counts every task the 0013
rule already counts into cost_rollups and every ledger entry into ledger_daily, under
locks that keep writers out between the count and the triggers.

Revision ID: 0014_roi
Revises: 0013_duration_rollups
"""

from alembic import op

from fsar_tui.db.migrations import revision_module

revision = "0014_roi"
down_revision = "0013_duration_rollups"
branch_labels = None
depends_on = None

COUNTED = """t.status IN ('succeeded', 'failed', 'cancelled')
             AND (t.id > st.backfill_target OR t.finished_at >= st.epoch OR t.id <= st.backfilled_upto)"""

# The fold of 0013 plus the cost rollups (one more data-modifying CTE over the same
# moved samples), built from 0013's definition.
_V0013 = revision_module(__file__, "0013_duration_rollups.py")
_MOVED = "WITH moved AS (DELETE FROM task_duration_samples RETURNING *),\n"
assert _V0013.FOLD.count(_MOVED) == 1 and "{" not in _V0013.FOLD
FOLD_TEMPLATE = _V0013.FOLD.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1).replace(
    _MOVED, _MOVED + "{costs}"
)

COSTS_CTE = """             costs AS (
                INSERT INTO cost_rollups AS c (day, task_type, ai_model, rollout_revision_id, idea_id, currency,
                                               tasks_succeeded, tasks_failed, tasks_cancelled,
                                               model_cost_minor, compute_cost_minor, failed_cost_minor)
                SELECT (finished_at AT TIME ZONE 'UTC')::date, task_type, ai_model, rollout_revision_id,
                       coalesce(idea_id, ''), currency,
                       coalesce(sum(n) FILTER (WHERE outcome = 'succeeded'), 0),
                       coalesce(sum(n) FILTER (WHERE outcome = 'failed'), 0),
                       coalesce(sum(n) FILTER (WHERE outcome = 'cancelled'), 0),
                       sum(n * coalesce(cost_minor, 0)), sum(n * coalesce(compute_cost_minor, 0)),
                       coalesce(sum(n * (coalesce(cost_minor, 0) + coalesce(compute_cost_minor, 0)))
                                FILTER (WHERE outcome <> 'succeeded'), 0)
                FROM moved GROUP BY 1, 2, 3, 4, 5, 6
                ON CONFLICT (day, task_type, ai_model, rollout_revision_id, idea_id, currency) DO UPDATE SET
                    tasks_succeeded = c.tasks_succeeded + EXCLUDED.tasks_succeeded,
                    tasks_failed = c.tasks_failed + EXCLUDED.tasks_failed,
                    tasks_cancelled = c.tasks_cancelled + EXCLUDED.tasks_cancelled,
                    model_cost_minor = c.model_cost_minor + EXCLUDED.model_cost_minor,
                    compute_cost_minor = c.compute_cost_minor + EXCLUDED.compute_cost_minor,
                    failed_cost_minor = c.failed_cost_minor + EXCLUDED.failed_cost_minor
                RETURNING 1),
"""
# Rows whose counts come back to zero stay (readers skip them): deleting them would
# scan the table on every fold.
FOLD = FOLD_TEMPLATE.format(costs=COSTS_CTE)

# 0013's sample row, with the two columns the cost rollups need.
_SAMPLE_END = "t.cost_minor, coalesce(t.currency, ''), n)::task_duration_samples"
assert _V0013.TASK_SAMPLE.count(_SAMPLE_END) == 1
TASK_SAMPLE = _V0013.TASK_SAMPLE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1).replace(
    _SAMPLE_END, "t.cost_minor, coalesce(t.currency, ''), n, t.idea_id, t.compute_cost_minor)::task_duration_samples"
)
FOLD_0013 = FOLD_TEMPLATE.format(costs="")

# 0013's update trigger, also firing when the idea or the compute cost changes.
_COLUMNS_END = "cost_minor, currency ON execution_tasks"
assert _V0013.ROLLUPS_UPDATE_TRIGGER.count(_COLUMNS_END) == 1
ROLLUPS_UPDATE_TRIGGER = _V0013.ROLLUPS_UPDATE_TRIGGER.replace(
    _COLUMNS_END, "cost_minor, currency, idea_id, compute_cost_minor ON execution_tasks"
)


def upgrade() -> None:
    op.execute("""
        CREATE TABLE compute_rates (
            id                  bigserial PRIMARY KEY,
            currency            char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
            minor_per_hour      numeric(18, 6) NOT NULL CHECK (minor_per_hour >= 0),
            effective_from      timestamptz NOT NULL,
            UNIQUE (currency, effective_from)
        )
    """)
    op.execute("""
        CREATE TRIGGER compute_rates_append_only
        BEFORE UPDATE OR DELETE ON compute_rates
        FOR EACH ROW EXECUTE FUNCTION fsar_reject_change()
    """)
    op.execute("""
        CREATE TABLE cost_rollups (
            day                 date   NOT NULL,
            task_type           text   NOT NULL,
            ai_model            text   NOT NULL,
            rollout_revision_id bigint NOT NULL,
            idea_id             text   NOT NULL,
            currency            text   NOT NULL,
            tasks_succeeded     bigint NOT NULL DEFAULT 0,
            tasks_failed        bigint NOT NULL DEFAULT 0,
            tasks_cancelled     bigint NOT NULL DEFAULT 0,
            model_cost_minor    bigint NOT NULL DEFAULT 0,
            compute_cost_minor  bigint NOT NULL DEFAULT 0,
            failed_cost_minor   bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (day, task_type, ai_model, rollout_revision_id, idea_id, currency)
        )
    """)
    op.execute("""
        CREATE TABLE ledger_daily (
            day          date   NOT NULL,
            kind         text   NOT NULL,
            currency     text   NOT NULL,
            idea_id      text   NOT NULL,
            entries      bigint NOT NULL,
            amount_minor bigint NOT NULL,
            PRIMARY KEY (day, kind, currency, idea_id)
        )
    """)
    op.execute("""
        CREATE TABLE stripe_events (
            id           text PRIMARY KEY,
            type         text NOT NULL,
            created      timestamptz NOT NULL,
            object_id    text,
            livemode     boolean NOT NULL DEFAULT false,
            outcome      text NOT NULL CHECK (outcome IN ('applied', 'skipped')),
            received_at  timestamptz NOT NULL DEFAULT now(),
            payload      jsonb NOT NULL
        )
    """)
    op.execute("CREATE INDEX stripe_events_created_idx ON stripe_events (created)")
    op.execute("""
        CREATE TABLE payment_funnel_daily (
            day       date   NOT NULL,
            stage     text   NOT NULL CHECK (stage IN ('created', 'succeeded', 'failed')),
            currency  text   NOT NULL,
            reason    text   NOT NULL,
            n         bigint NOT NULL,
            PRIMARY KEY (day, stage, currency, reason)
        )
    """)
    op.execute("""
        CREATE FUNCTION fsar_stripe_event_funnel() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            funnel_stage text := CASE NEW.type WHEN 'payment_intent.created' THEN 'created'
                                        WHEN 'payment_intent.succeeded' THEN 'succeeded'
                                        WHEN 'payment_intent.payment_failed' THEN 'failed' END;
        BEGIN
            IF funnel_stage IS NOT NULL THEN
                INSERT INTO payment_funnel_daily AS f (day, stage, currency, reason, n)
                VALUES ((NEW.created AT TIME ZONE 'UTC')::date, funnel_stage,
                        upper(coalesce(NEW.payload #>> '{data,object,currency}', '')),
                        CASE WHEN funnel_stage = 'failed' THEN coalesce(
                            NEW.payload #>> '{data,object,last_payment_error,decline_code}',
                            NEW.payload #>> '{data,object,last_payment_error,code}', 'unknown') ELSE '' END, 1)
                ON CONFLICT (day, stage, currency, reason) DO UPDATE SET n = f.n + 1;
            END IF;
            RETURN NULL;
        END
        $$
    """)
    op.execute("""
        CREATE TRIGGER stripe_events_funnel AFTER INSERT ON stripe_events
        FOR EACH ROW EXECUTE FUNCTION fsar_stripe_event_funnel()
    """)
    op.execute("""
        CREATE FUNCTION fsar_ledger_daily_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('fsar.bulk_load', true) = 'on' THEN
                RETURN NULL;  -- the bulk loader adds its own rows
            END IF;
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO ledger_daily AS d (day, kind, currency, idea_id, entries, amount_minor)
                VALUES ((OLD.occurred_at AT TIME ZONE 'UTC')::date, OLD.kind, OLD.currency,
                        coalesce(OLD.idea_id, ''), -1, -OLD.amount_minor)
                ON CONFLICT (day, kind, currency, idea_id)
                DO UPDATE SET entries = d.entries - 1, amount_minor = d.amount_minor - OLD.amount_minor;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                INSERT INTO ledger_daily AS d (day, kind, currency, idea_id, entries, amount_minor)
                VALUES ((NEW.occurred_at AT TIME ZONE 'UTC')::date, NEW.kind, NEW.currency,
                        coalesce(NEW.idea_id, ''), 1, NEW.amount_minor)
                ON CONFLICT (day, kind, currency, idea_id)
                DO UPDATE SET entries = d.entries + 1, amount_minor = d.amount_minor + NEW.amount_minor;
            END IF;
            RETURN NULL;
        END
        $$
    """)
    op.execute(
        "CREATE INDEX ledger_entries_customer_idx ON ledger_entries (customer_id, occurred_at) WHERE kind = 'revenue'"
    )
    op.execute(
        "CREATE INDEX ledger_entries_country_mismatch_idx ON ledger_entries (occurred_at) "
        "WHERE kind = 'revenue' AND metadata ->> 'card_country' <> metadata ->> 'ip_country'"
    )
    op.execute(
        "CREATE INDEX ledger_entries_charge_idx ON ledger_entries ((metadata ->> 'charge')) WHERE metadata ? 'charge'"
    )
    op.execute(
        "CREATE INDEX ledger_entries_card_idx "
        "ON ledger_entries ((metadata ->> 'card_fingerprint'), occurred_at) "
        "WHERE kind = 'revenue' AND metadata ? 'card_fingerprint'"
    )
    op.execute(
        "CREATE INDEX ledger_entries_refund_dispute_idx ON ledger_entries (occurred_at) "
        "WHERE kind IN ('refund', 'dispute')"
    )

    # Adoption. Fold what the old trigger left pending, in the old sample shape.
    op.execute("LOCK TABLE execution_tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("LOCK TABLE ledger_entries IN SHARE ROW EXCLUSIVE MODE")
    op.execute("SELECT fsar_fold_duration_samples()")
    op.execute("ALTER TABLE execution_tasks ADD COLUMN compute_cost_minor bigint")
    op.execute("ALTER TABLE task_duration_samples ADD COLUMN idea_id text, ADD COLUMN compute_cost_minor bigint")
    op.execute(TASK_SAMPLE)
    # The trigger also fires when the compute cost changes.
    op.execute("DROP TRIGGER execution_tasks_rollups_update ON execution_tasks")
    op.execute(ROLLUPS_UPDATE_TRIGGER)
    op.execute(FOLD)
    op.execute(f"""
        INSERT INTO cost_rollups (day, task_type, ai_model, rollout_revision_id, idea_id, currency,
                                  tasks_succeeded, tasks_failed, tasks_cancelled,
                                  model_cost_minor, compute_cost_minor, failed_cost_minor)
        SELECT (t.finished_at AT TIME ZONE 'UTC')::date, t.task_type, coalesce(t.ai_model, ''),
               coalesce(t.rollout_revision_id, 0), coalesce(t.idea_id, ''), coalesce(t.currency, ''),
               count(*) FILTER (WHERE t.status = 'succeeded'), count(*) FILTER (WHERE t.status = 'failed'),
               count(*) FILTER (WHERE t.status = 'cancelled'),
               coalesce(sum(t.cost_minor), 0), 0,
               coalesce(sum(coalesce(t.cost_minor, 0)) FILTER (WHERE t.status <> 'succeeded'), 0)
        FROM execution_tasks t CROSS JOIN rollup_state st
        WHERE {COUNTED}
        GROUP BY 1, 2, 3, 4, 5, 6
    """)
    op.execute("""
        INSERT INTO ledger_daily (day, kind, currency, idea_id, entries, amount_minor)
        SELECT (occurred_at AT TIME ZONE 'UTC')::date, kind, currency, coalesce(idea_id, ''),
               count(*), sum(amount_minor)
        FROM ledger_entries GROUP BY 1, 2, 3, 4
    """)
    op.execute("""
        CREATE TRIGGER ledger_entries_daily
        AFTER INSERT OR DELETE OR UPDATE OF kind, amount_minor, currency, occurred_at, idea_id ON ledger_entries
        FOR EACH ROW EXECUTE FUNCTION fsar_ledger_daily_changed()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_entries_daily ON ledger_entries")
    op.execute("DROP FUNCTION fsar_ledger_daily_changed()")
    op.execute("DROP INDEX ledger_entries_refund_dispute_idx")
    op.execute("DROP INDEX ledger_entries_card_idx")
    op.execute("DROP INDEX ledger_entries_charge_idx")
    op.execute("DROP INDEX ledger_entries_country_mismatch_idx")
    op.execute("DROP INDEX ledger_entries_customer_idx")
    op.execute("LOCK TABLE execution_tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("SELECT fsar_fold_duration_samples()")
    op.execute("DROP TRIGGER execution_tasks_rollups_update ON execution_tasks")
    op.execute(_V0013.ROLLUPS_UPDATE_TRIGGER)
    # Restore 0013's fold (without the cost CTE) before the columns it reads go away.
    op.execute(FOLD_0013)
    op.execute("ALTER TABLE task_duration_samples DROP COLUMN compute_cost_minor, DROP COLUMN idea_id")
    op.execute(_V0013.TASK_SAMPLE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("ALTER TABLE execution_tasks DROP COLUMN compute_cost_minor")
    op.execute("DROP TRIGGER stripe_events_funnel ON stripe_events")
    op.execute("DROP FUNCTION fsar_stripe_event_funnel()")
    op.execute("DROP TABLE payment_funnel_daily")
    op.execute("DROP TABLE stripe_events")
    op.execute("DROP TABLE ledger_daily")
    op.execute("DROP TABLE cost_rollups")
    op.execute("DROP TABLE compute_rates")
