"""Task lifecycle columns, time zones, status CHECKs and the indexes the panel needs.

- id becomes bigint (tens of millions of tasks with retries outgrow nothing, but the
  sequence is cheap to widen now and expensive later).
- Timestamps become timestamptz; legacy values are UTC (legacy_schema.sql says so).
- New columns have defaults, so the legacy executor's INSERTs keep working unchanged.
- CHECKs make impossible states unrepresentable: status is one of five; finished_at is
  set exactly when the status is terminal; attempts, tokens and cost are sane.
  `fsar-tui migrate` checks existing rows against these first (db/preflight.py) and
  refuses, changing nothing, when any row violates them.

Revision ID: 0003_task_lifecycle
Revises: 0002_add_ai_model
"""

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op

revision = "0003_task_lifecycle"
down_revision = "0002_add_ai_model"
branch_labels = None
depends_on = None

# The triggers of `table` that are enabled and not fsar-tui's (its trigger functions are
# all named fsar_…): the customer's own, e.g. an audit row per update, a bumped updated_at.
_USER_TRIGGERS = """
    SELECT quote_ident(t.tgname), t.tgenabled::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
    WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal AND t.tgenabled <> 'D' AND left(p.proname, 5) <> 'fsar_'
    ORDER BY 1
"""
_ENABLE = {"O": "ENABLE TRIGGER", "R": "ENABLE REPLICA TRIGGER", "A": "ENABLE ALWAYS TRIGGER"}


@contextmanager
def user_triggers_disabled(table: str) -> Iterator[None]:
    """A backfill of fsar-tui's new columns is not a change of the customer's rows: their
    triggers must not fire on it (an audit trigger would write a row per row of a table of
    millions; one bumping updated_at would change their data). So their triggers are
    disabled around it, by name, and put back as they were (enabled, REPLICA or ALWAYS).

    Not session_replication_role = replica: it needs a superuser (the migrating role owns
    the tables, that is all), it leaves ENABLE ALWAYS triggers firing and *fires* ENABLE
    REPLICA ones, and it silences every trigger of the session on every table, fsar-tui's
    and foreign-key checks included. ALTER TABLE … DISABLE TRIGGER needs only ownership,
    touches this table, and is transactional: other sessions never see the triggers off
    (the catalog change is undone before COMMIT, or rolled back with a failed migration),
    and under the revision's ACCESS EXCLUSIVE lock no other write can slip past them.
    fsar-tui's own triggers stay as they are: the backfills are written knowing which of
    them fire (none on 0003's; 0024's sets fsar.bulk_load for its price trigger)."""
    conn = op.get_bind().connection.driver_connection
    triggers = conn.execute(_USER_TRIGGERS, (f"public.{table}",)).fetchall()
    for name, _ in triggers:
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
    yield
    for name, mode in triggers:
        conn.execute(f"ALTER TABLE {table} {_ENABLE[mode]} {name}")


def upgrade() -> None:
    op.execute("ALTER SEQUENCE execution_tasks_id_seq AS bigint")
    op.execute("""
        ALTER TABLE execution_tasks
            ALTER COLUMN id TYPE bigint,
            ALTER COLUMN created_at TYPE timestamptz USING created_at AT TIME ZONE 'UTC',
            ALTER COLUMN started_at TYPE timestamptz USING started_at AT TIME ZONE 'UTC',
            ALTER COLUMN finished_at TYPE timestamptz USING finished_at AT TIME ZONE 'UTC',
            ADD COLUMN queued_at timestamptz,
            ADD COLUMN priority smallint NOT NULL DEFAULT 0,
            ADD COLUMN attempt integer NOT NULL DEFAULT 0,
            ADD COLUMN max_attempts integer NOT NULL DEFAULT 3,
            ADD COLUMN idea_id text,
            ADD COLUMN lease_expires_at timestamptz,
            ADD COLUMN input_tokens bigint,
            ADD COLUMN output_tokens bigint,
            ADD COLUMN cost_minor bigint,
            ADD COLUMN currency char(3)
    """)
    with user_triggers_disabled("execution_tasks"):
        # Legacy rows were queued when they were created; new rows default to now().
        # Legacy rows that ran had one attempt. One pass for both.
        op.execute(
            "UPDATE execution_tasks SET queued_at = created_at, "
            "attempt = CASE WHEN started_at IS NOT NULL THEN 1 ELSE attempt END"
        )
    op.execute(
        "ALTER TABLE execution_tasks ALTER COLUMN queued_at SET DEFAULT now(), ALTER COLUMN queued_at SET NOT NULL"
    )
    op.execute("""
        ALTER TABLE execution_tasks
            ADD CONSTRAINT execution_tasks_status_check
                CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            ADD CONSTRAINT execution_tasks_finished_iff_terminal
                CHECK ((finished_at IS NOT NULL) = (status IN ('succeeded', 'failed', 'cancelled'))),
            ADD CONSTRAINT execution_tasks_attempts_check
                CHECK (attempt >= 0 AND max_attempts >= 1 AND attempt <= max_attempts),
            ADD CONSTRAINT execution_tasks_tokens_check
                CHECK (coalesce(input_tokens, 0) >= 0 AND coalesce(output_tokens, 0) >= 0),
            ADD CONSTRAINT execution_tasks_cost_check
                CHECK (cost_minor IS NULL OR (cost_minor >= 0 AND currency IS NOT NULL)),
            ADD CONSTRAINT execution_tasks_currency_check
                CHECK (currency IS NULL OR currency ~ '^[A-Z]{3}$')
    """)
    # Claim path: queued tasks by priority then age (SKIP LOCKED scans this).
    op.execute("CREATE INDEX execution_tasks_queued_idx ON execution_tasks (priority DESC, id) WHERE status = 'queued'")
    # Lease reaper and the running-tasks panel.
    op.execute(
        "CREATE INDEX execution_tasks_running_idx ON execution_tasks (lease_expires_at) WHERE status = 'running'"
    )
    # Analytics: durations per type and model over a time window.
    op.execute(
        "CREATE INDEX execution_tasks_type_model_finished_idx ON execution_tasks (task_type, ai_model, finished_at)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX execution_tasks_type_model_finished_idx")
    op.execute("DROP INDEX execution_tasks_running_idx")
    op.execute("DROP INDEX execution_tasks_queued_idx")
    op.execute("""
        ALTER TABLE execution_tasks
            DROP CONSTRAINT execution_tasks_currency_check,
            DROP CONSTRAINT execution_tasks_cost_check,
            DROP CONSTRAINT execution_tasks_tokens_check,
            DROP CONSTRAINT execution_tasks_attempts_check,
            DROP CONSTRAINT execution_tasks_finished_iff_terminal,
            DROP CONSTRAINT execution_tasks_status_check,
            DROP COLUMN currency,
            DROP COLUMN cost_minor,
            DROP COLUMN output_tokens,
            DROP COLUMN input_tokens,
            DROP COLUMN lease_expires_at,
            DROP COLUMN idea_id,
            DROP COLUMN max_attempts,
            DROP COLUMN attempt,
            DROP COLUMN priority,
            DROP COLUMN queued_at,
            ALTER COLUMN finished_at TYPE timestamp USING finished_at AT TIME ZONE 'UTC',
            ALTER COLUMN started_at TYPE timestamp USING started_at AT TIME ZONE 'UTC',
            ALTER COLUMN created_at TYPE timestamp USING created_at AT TIME ZONE 'UTC'
    """)
    # id stays bigint: narrowing could fail once ids pass 2^31, and integer is not
    # something any writer depends on.
