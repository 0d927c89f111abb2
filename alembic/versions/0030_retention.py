"""Retention (issue 18, point 2): what dropping old partitions needs from the schema.

`fsar-tui retention run` archives old partitions of execution_tasks and task_events
(revision 0029) and drops them; every figure over any window must stay what it was.

1. `idea_completion_days`: the one figure that read raw tasks arbitrarily far back is
   ROI's "completing task" attribution (db/idea_completions.py): for each idea, its last
   successful idea_implementation / implement_idea task finished before the window's
   end, however old. Before a task partition is dropped, retention keeps, per idea and
   UTC day, the day's last such task of the range (type, model, rollout revision, finish,
   id); the read takes the newest of the live tasks and of these rows. ROI windows end at
   a UTC midnight (db/roi.day_bounds), so the last completion before the end is the last
   of some earlier day: the answer is the same as before the drop, exactly. Its size is
   ideas × days (40 ideas × a year ≈ 15 k rows), not tasks.
2. `retention_log`: every partition dropped (with its archive's manifest, row count and
   checksum) or restored, by whom and when — what `tasks show` reads to say "events
   before <date> archived by retention" instead of an empty history.
3. The foreign key ledger_entries.task_id → execution_tasks(id) is dropped, as revision
   0011 dropped task_events'. PostgreSQL refuses to drop a task partition while a ledger
   entry references one of its rows, and ON DELETE SET NULL would erase the money's link
   to its task for good. task_id stays what it always was in practice: a historical
   reference, written by the ingestion only for a task that exists (db/stripe.py), that
   resolves against the table or, once the range is dropped, against its archive.

Ownership: retention runs as the tables' owner (DETACH/DROP need it); the viewer reads
both tables through the default privileges of revision 0017. Nobody else writes them.

Downgrade drops the two tables and puts the foreign key back NOT VALID when ledger
entries reference archived tasks (validated otherwise), so a downgrade never fails on
history retention has already dropped.

Revision ID: 0030_retention
Revises: 0029_partitions
"""

from alembic import op

revision = "0030_retention"
down_revision = "0029_partitions"
branch_labels = None
depends_on = None

# Every foreign key of ledger_entries that references execution_tasks, whatever its name
# (revision 0029 re-creates constraints it moves rows under).
DROP_TASK_FKEYS = """
    DO $$
    DECLARE
        c record;
    BEGIN
        FOR c IN SELECT conname FROM pg_constraint
                 WHERE conrelid = 'ledger_entries'::regclass AND contype = 'f'
                   AND confrelid = 'execution_tasks'::regclass
        LOOP
            EXECUTE format('ALTER TABLE ledger_entries DROP CONSTRAINT %I', c.conname);
        END LOOP;
    END
    $$
"""


def upgrade() -> None:
    op.execute(DROP_TASK_FKEYS)
    op.execute("""
        CREATE TABLE idea_completion_days (
            idea_id             text        NOT NULL,
            day                 date        NOT NULL,
            finished_at         timestamptz NOT NULL,
            task_id             bigint      NOT NULL,
            task_type           text        NOT NULL,
            ai_model            text,
            rollout_revision_id bigint,
            PRIMARY KEY (idea_id, day),
            CHECK ((finished_at AT TIME ZONE 'UTC')::date = day)
        )
    """)
    # The read's probe: an idea's newest row before an instant.
    op.execute("CREATE INDEX idea_completion_days_finish_idx ON idea_completion_days (idea_id, finished_at, task_id)")
    op.execute("""
        CREATE TABLE retention_log (
            id          bigserial   PRIMARY KEY,
            at          timestamptz NOT NULL DEFAULT now(),
            action      text        NOT NULL CHECK (action IN ('dropped', 'restored')),
            table_name  text        NOT NULL CHECK (table_name IN ('execution_tasks', 'task_events')),
            partition   text        NOT NULL,
            lower_bound text,
            upper_bound text,
            rows        bigint      NOT NULL CHECK (rows >= 0),
            manifest    text,
            sha256      text,
            actor       text        NOT NULL DEFAULT session_user
        )
    """)
    op.execute("CREATE INDEX retention_log_table_idx ON retention_log (table_name, partition, id)")


def downgrade() -> None:
    op.execute("DROP TABLE retention_log")
    op.execute("DROP TABLE idea_completion_days")
    op.execute("""
        ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_task_id_fkey
        FOREIGN KEY (task_id) REFERENCES execution_tasks (id) ON DELETE SET NULL NOT VALID
    """)
    op.execute("""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM ledger_entries l WHERE l.task_id IS NOT NULL
                           AND NOT EXISTS (SELECT 1 FROM execution_tasks t WHERE t.id = l.task_id)) THEN
                ALTER TABLE ledger_entries VALIDATE CONSTRAINT ledger_entries_task_id_fkey;
            ELSE
                RAISE NOTICE 'ledger entries reference archived tasks: ledger_entries_task_id_fkey stays NOT VALID';
            END IF;
        END $$
    """)
