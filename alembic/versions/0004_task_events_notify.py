"""task_events, and the trigger that records every status change and NOTIFYs it.

Every INSERT of a task and every UPDATE that changes its status appends one row to
task_events (task, from, to, attempt, worker, at) and sends NOTIFY on channel
`fsar_events` with a small JSON payload:

    {"kind": "task", "id": 42, "type": "implement_idea", "model": "gpt-4o",
     "from": "queued", "to": "running", "attempt": 1}

NOTIFY is delivered at commit, so listeners never see uncommitted changes, and
Postgres folds identical payloads within one transaction. Payloads stay far below
the 8000-byte limit: type is varchar(64) and model is cut to 64 characters.

Revision ID: 0004_task_events_notify
Revises: 0003_task_lifecycle
"""

from alembic import op

revision = "0004_task_events_notify"
down_revision = "0003_task_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE task_events (
            id          bigserial PRIMARY KEY,
            task_id     bigint NOT NULL REFERENCES execution_tasks (id) ON DELETE CASCADE,
            from_status text,
            to_status   text NOT NULL,
            attempt     integer NOT NULL,
            worker_id   text,
            at          timestamptz NOT NULL DEFAULT clock_timestamp()
        )
    """)
    op.execute("CREATE INDEX task_events_task_idx ON task_events (task_id, id)")
    op.execute("CREATE INDEX task_events_at_idx ON task_events (at)")
    op.execute("""
        CREATE FUNCTION fsar_task_status_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            old_status text := CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END;
        BEGIN
            -- Bulk loaders (fsar-tui seed) write task_events themselves and set this.
            IF current_setting('fsar.bulk_load', true) = 'on' THEN
                RETURN NULL;
            END IF;
            INSERT INTO task_events (task_id, from_status, to_status, attempt, worker_id)
            VALUES (NEW.id, old_status, NEW.status, NEW.attempt, NEW.worker_id);
            PERFORM pg_notify('fsar_events', json_build_object(
                'kind', 'task', 'id', NEW.id, 'type', NEW.task_type,
                'model', left(NEW.ai_model, 64), 'from', old_status, 'to', NEW.status,
                'attempt', NEW.attempt)::text);
            RETURN NULL;
        END
        $$
    """)
    op.execute("""
        CREATE TRIGGER execution_tasks_status_insert
        AFTER INSERT ON execution_tasks
        FOR EACH ROW EXECUTE FUNCTION fsar_task_status_changed()
    """)
    op.execute("""
        CREATE TRIGGER execution_tasks_status_update
        AFTER UPDATE OF status ON execution_tasks
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION fsar_task_status_changed()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER execution_tasks_status_update ON execution_tasks")
    op.execute("DROP TRIGGER execution_tasks_status_insert ON execution_tasks")
    op.execute("DROP FUNCTION fsar_task_status_changed()")
    op.execute("DROP TABLE task_events")
