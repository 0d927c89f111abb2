"""Per-attempt history: the events trail keeps each attempt's error.

Until now a task kept one error (execution_tasks.error), overwritten by every attempt's
end, and task_events (task, from, to, attempt, worker, at) said "running → queued" for
an earlier attempt with no reason. From here the status trigger writes `task_events.error`
on the event that ends an attempt badly — the task leaves 'running' for 'queued' (an
executor retry, the lease reaper) or reaches 'failed' — with the error its writer set in
the same UPDATE (NEW.error). Every other event has NULL there:
- 'succeeded' and 'cancelled': a success has no error, and the row's error column then
  still holds an earlier attempt's (the claim does not clear it), as it does under an
  operator's cancel;
- an operator's requeue of a running task (fsar_task_action, which runs with
  `fsar.bulk_load` pinned 'off' — the trigger reads that setting as "an operator's
  action"): the error column is then the attempt before's, not this one's.
The attempt, worker and times were already on the trail: an attempt is the event into
'running' (number, worker, start) and the next event out of it (end, outcome, error).
No table is added (no privilege to declare: task_events is written by this SECURITY
DEFINER trigger only, and read by fsar_viewer like every table).

The kept error is the whole text up to 4,096 characters; a longer one keeps its first
and last 2,048 (a Python traceback's exception is its last line) around a line saying
how many characters were not kept. The task's own error column keeps the last one whole.

Large tables: adding the nullable column is a catalog change (no rewrite), and existing
rows keep NULL — earlier attempts' errors were not recorded before revision 0022 (they
are gone; the task's error column still holds its last one). The partial index on the
failing events' times (`task_events_failures_idx`, for the "failing now" view: failures
in the last 15 min / 1 h / 24 h without walking every event of the day) is built in this
transaction and reads task_events once while status changes wait on its lock: 0.5 s
for 3.2 M events (254 MB, a 1 M-task seed, warm cache, this 2-core machine; the whole
upgrade 1.6 s) — about 5 s per 10 M tasks, longer when the table is not in memory.

Downgrade drops the index and the column and puts back the trigger function as
revisions 0004 and 0020 left it.

Revision ID: 0022_attempt_history
Revises: 0021_attack_fixes
"""

from alembic import op

revision = "0022_attempt_history"
down_revision = "0021_attack_fixes"
branch_labels = None
depends_on = None

# The events the "failing now" view counts (db/attempts.FAILURE_SQL repeats it: the
# planner uses a partial index only for a query whose WHERE implies its predicate).
FAILURE = "(to_status = 'failed' OR (from_status = 'running' AND to_status = 'queued'))"
ERROR_KEPT = 4096

TRIGGER_0022 = f"""
    CREATE OR REPLACE FUNCTION fsar_task_status_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
        old_status text := CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END;
        attempt_error text;
    BEGIN
        -- Bulk loaders (fsar-tui seed) write task_events themselves and set this.
        IF current_setting('fsar.bulk_load', true) = 'on' THEN
            RETURN NULL;
        END IF;
        -- The error of an attempt that ended badly, written with its end (revision 0022);
        -- an operator's action (fsar.bulk_load pinned 'off') writes no error of its own.
        IF (NEW.status = 'failed' OR (old_status = 'running' AND NEW.status = 'queued'))
           AND current_setting('fsar.bulk_load', true) IS DISTINCT FROM 'off' THEN
            attempt_error := CASE WHEN length(NEW.error) <= {ERROR_KEPT} THEN NEW.error
                                  ELSE left(NEW.error, {ERROR_KEPT // 2})
                                       || E'\\n[… ' || (length(NEW.error) - {ERROR_KEPT})
                                       || E' characters not kept …]\\n'
                                       || right(NEW.error, {ERROR_KEPT // 2}) END;
        END IF;
        INSERT INTO task_events (task_id, from_status, to_status, attempt, worker_id, error)
        VALUES (NEW.id, old_status, NEW.status, NEW.attempt, NEW.worker_id, attempt_error);
        PERFORM pg_notify('fsar_events', json_build_object(
            'kind', 'task', 'id', NEW.id, 'type', NEW.task_type,
            'model', left(NEW.ai_model, 64), 'from', old_status, 'to', NEW.status,
            'attempt', NEW.attempt)::text);
        RETURN NULL;
    END
    $$
"""

# Revision 0004's body, SECURITY DEFINER with a pinned search_path since revision 0020.
TRIGGER_0004 = """
    CREATE OR REPLACE FUNCTION fsar_task_status_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
"""


def upgrade() -> None:
    op.execute("ALTER TABLE task_events ADD COLUMN error text")
    op.execute(f"CREATE INDEX task_events_failures_idx ON task_events (at) WHERE {FAILURE}")
    op.execute(TRIGGER_0022)


def downgrade() -> None:
    op.execute(TRIGGER_0004)
    op.execute("DROP INDEX task_events_failures_idx")
    op.execute("ALTER TABLE task_events DROP COLUMN error")
