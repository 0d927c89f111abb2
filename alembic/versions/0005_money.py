"""model_prices and ledger_entries: money as bigint minor units plus a currency.

- model_prices: per ai_model and currency, input/output price per million tokens in
  minor units (numeric, exact: a $0.075/Mtok price is 7.5 cents), with the time it took
  effect. A trigger rejects UPDATE and DELETE: a new price is a new row, so history is
  never repriced.
- ledger_entries: signed amounts (revenue positive, refunds/disputes/fees/costs
  negative by the sign CHECK), ISO currency, Stripe-shaped ids, idempotent by
  UNIQUE (source, external_id), attributable to an idea and/or a task.

Revision ID: 0005_money
Revises: 0004_task_events_notify
"""

from alembic import op

revision = "0005_money"
down_revision = "0004_task_events_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE model_prices (
            id                      bigserial PRIMARY KEY,
            ai_model                text NOT NULL,
            currency                char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
            input_minor_per_mtok    numeric(18, 6) NOT NULL CHECK (input_minor_per_mtok >= 0),
            output_minor_per_mtok   numeric(18, 6) NOT NULL CHECK (output_minor_per_mtok >= 0),
            effective_from          timestamptz NOT NULL,
            UNIQUE (ai_model, currency, effective_from)
        )
    """)
    op.execute("""
        CREATE TABLE ledger_entries (
            id            bigserial PRIMARY KEY,
            source        text NOT NULL,
            external_id   text NOT NULL,
            kind          text NOT NULL CHECK (kind IN (
                              'revenue', 'refund', 'dispute', 'dispute_fee', 'dispute_won',
                              'payment_fee', 'model_cost', 'compute_cost')),
            amount_minor  bigint NOT NULL,
            currency      char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
            occurred_at   timestamptz NOT NULL,
            idea_id       text,
            task_id       bigint REFERENCES execution_tasks (id) ON DELETE SET NULL,
            customer_id   text,
            metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
            recorded_at   timestamptz NOT NULL DEFAULT now(),
            UNIQUE (source, external_id),
            CONSTRAINT ledger_entries_sign_check CHECK (
                (kind IN ('revenue', 'dispute_won') AND amount_minor >= 0)
                OR (kind NOT IN ('revenue', 'dispute_won') AND amount_minor <= 0))
        )
    """)
    op.execute("CREATE INDEX ledger_entries_occurred_idx ON ledger_entries (occurred_at)")
    # Shared by every append-only table (model_prices here, operator_actions later).
    op.execute("""
        CREATE FUNCTION fsar_reject_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
    """)
    op.execute("""
        CREATE TRIGGER model_prices_append_only
        BEFORE UPDATE OR DELETE ON model_prices
        FOR EACH ROW EXECUTE FUNCTION fsar_reject_change()
    """)
    op.execute("CREATE INDEX ledger_entries_idea_idx ON ledger_entries (idea_id, occurred_at)")


def downgrade() -> None:
    op.execute("DROP TABLE ledger_entries")
    op.execute("DROP TABLE model_prices")
    op.execute("DROP FUNCTION fsar_reject_change()")
