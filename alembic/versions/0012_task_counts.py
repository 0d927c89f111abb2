"""Live task counts per status × task_type × ai_model, exact without scanning the table.

The queue screen's counts panel used `GROUP BY` over execution_tasks: 0.23 s at 1 M rows,
seconds at 10 M, on every refresh. Instead:

- `task_count_deltas` is append-only: a row trigger adds (status, type, model, ±1) for
  every INSERT, DELETE and change of status/type/model, in the same transaction as the
  change, so the counts can never drift from the tasks (a rolled-back change rolls back
  its delta). Appending, not updating, keeps concurrent workers off each other's row
  locks: a counter row updated by every claim would serialise the whole fleet.
- `task_counts` holds the folded totals. `fsar_compact_task_counts()` moves deltas into
  it (DELETE … RETURNING, so two concurrent compactions never fold the same delta
  twice). The trigger calls it on about one change in 256, so deltas stay a few hundred
  rows without any daemon; any writer may call it too.
- Readers sum both tables: a few hundred rows, under a millisecond at any table size.

ai_model NULL (legacy rows) is stored as '' so it can be part of the primary key on any
PostgreSQL version; readers turn it back into NULL. The bulk loader (fsar.bulk_load =
on) skips the trigger and adds one delta per group it loaded. TRUNCATE clears both.

Adoption counts the existing rows once, under a SHARE ROW EXCLUSIVE lock so no writer
slips a change between the count and the trigger (readers are not blocked).

Revision ID: 0012_task_counts
Revises: 0011_task_events_without_fk
"""

from alembic import op

revision = "0012_task_counts"
down_revision = "0011_task_events_without_fk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE task_counts (
            status    text   NOT NULL,
            task_type text   NOT NULL,
            ai_model  text   NOT NULL,
            n         bigint NOT NULL,
            PRIMARY KEY (status, task_type, ai_model)
        )
    """)
    op.execute("""
        CREATE TABLE task_count_deltas (
            status    text    NOT NULL,
            task_type text    NOT NULL,
            ai_model  text    NOT NULL,
            n         integer NOT NULL
        )
    """)
    op.execute("""
        CREATE FUNCTION fsar_compact_task_counts() RETURNS void
        LANGUAGE sql AS $$
            WITH moved AS (DELETE FROM task_count_deltas RETURNING status, task_type, ai_model, n),
                 summed AS (SELECT status, task_type, ai_model, sum(n) AS n FROM moved
                            GROUP BY status, task_type, ai_model)
            INSERT INTO task_counts AS c (status, task_type, ai_model, n)
            SELECT status, task_type, ai_model, n FROM summed WHERE n <> 0
            ON CONFLICT (status, task_type, ai_model) DO UPDATE SET n = c.n + EXCLUDED.n;
            DELETE FROM task_counts WHERE n = 0;
        $$
    """)
    op.execute("""
        CREATE FUNCTION fsar_task_counts_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('fsar.bulk_load', true) = 'on' THEN
                RETURN NULL;  -- the bulk loader adds its own deltas
            END IF;
            IF TG_OP = 'INSERT' THEN
                INSERT INTO task_count_deltas VALUES (NEW.status, NEW.task_type, coalesce(NEW.ai_model, ''), 1);
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO task_count_deltas VALUES (OLD.status, OLD.task_type, coalesce(OLD.ai_model, ''), -1);
            ELSE
                INSERT INTO task_count_deltas VALUES
                    (OLD.status, OLD.task_type, coalesce(OLD.ai_model, ''), -1),
                    (NEW.status, NEW.task_type, coalesce(NEW.ai_model, ''), 1);
            END IF;
            IF random() < 1.0 / 256 THEN
                PERFORM fsar_compact_task_counts();
            END IF;
            RETURN NULL;
        END
        $$
    """)
    op.execute("""
        CREATE FUNCTION fsar_task_counts_truncated() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM task_count_deltas;
            DELETE FROM task_counts;
            RETURN NULL;
        END
        $$
    """)
    op.execute("LOCK TABLE execution_tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("""
        CREATE TRIGGER execution_tasks_counts_insert_delete
        AFTER INSERT OR DELETE ON execution_tasks
        FOR EACH ROW EXECUTE FUNCTION fsar_task_counts_changed()
    """)
    op.execute("""
        CREATE TRIGGER execution_tasks_counts_update
        AFTER UPDATE OF status, task_type, ai_model ON execution_tasks
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                           OR OLD.task_type IS DISTINCT FROM NEW.task_type
                           OR OLD.ai_model IS DISTINCT FROM NEW.ai_model)
        EXECUTE FUNCTION fsar_task_counts_changed()
    """)
    op.execute("""
        CREATE TRIGGER execution_tasks_counts_truncate
        AFTER TRUNCATE ON execution_tasks
        FOR EACH STATEMENT EXECUTE FUNCTION fsar_task_counts_truncated()
    """)
    op.execute("""
        INSERT INTO task_counts (status, task_type, ai_model, n)
        SELECT status, task_type, coalesce(ai_model, ''), count(*) FROM execution_tasks
        GROUP BY status, task_type, coalesce(ai_model, '')
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER execution_tasks_counts_truncate ON execution_tasks")
    op.execute("DROP TRIGGER execution_tasks_counts_update ON execution_tasks")
    op.execute("DROP TRIGGER execution_tasks_counts_insert_delete ON execution_tasks")
    op.execute("DROP FUNCTION fsar_task_counts_truncated()")
    op.execute("DROP FUNCTION fsar_task_counts_changed()")
    op.execute("DROP FUNCTION fsar_compact_task_counts()")
    op.execute("DROP TABLE task_count_deltas")
    op.execute("DROP TABLE task_counts")
