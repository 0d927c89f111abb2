"""Count compaction, one transaction at a time: the task writers stop deadlocking each other.

Why: `fsar_compact_task_counts()` (revision 0012), called by the counts trigger on about
one change in 256, deletes the deltas it can see and upserts their sums into
task_counts. At a few hundred claims and finishes a second, two compactions overlap,
and PostgreSQL broke the cycles they formed with "deadlock detected" (the simulator's
workers and enqueuer in benchmark logs, "while deleting tuple … in relation
task_count_deltas" / "while inserting index tuple … in relation task_counts"):
- a compaction's deltas include the uncommitted ones of its own transaction, invisible
  to the other: two compactions then hold disjoint deltas and upsert overlapping keys
  ((queued, type, model) and (running, type, model) of every claim) in their hash
  aggregate's order, which differs between them — each waits for a key the other holds;
- a transaction that compacts twice (the enqueuer's batch of inserts, the reaper's
  UPDATE of many tasks) holds the rows and keys of its first compaction while its second
  waits for another transaction's, which waits for them.
No order of the writers' statements avoids it (a claim is one statement); it is the
compaction's to fix.

Now a compaction first takes a transaction-level advisory lock (COMPACT_LOCK) with
`pg_try_advisory_xact_lock`: taken, it compacts as before, and no other transaction
compacts until this one ends; not taken (another transaction is compacting or has
compacted and not committed yet), it returns at once and leaves the deltas to a later
compaction. So no compaction ever waits on another: neither on the deltas it deletes nor
on the task_counts rows it upserts. Readers sum task_counts and the deltas as before —
a skipped compaction changes no count, only how many deltas wait. The lock is taken
again, not waited for, by the transaction that holds it (a second compaction in it
proceeds). Key 727_005 (727_001: the duration fold; 002: the audit evaluator; 003:
partition maintenance; 004: retention).

Downgrade restores 0012's body (SECURITY DEFINER, as revision 0017 made it).

Revision ID: 0033_count_delta_order
Revises: 0032_partition_limits
"""

from alembic import op

revision = "0033_count_delta_order"
down_revision = "0032_partition_limits"
branch_labels = None
depends_on = None

COMPACT_LOCK = 727_005  # pg advisory lock key: one task-count compaction at a time

# The fold itself is 0012's; revision 0017 made it SECURITY DEFINER with a pinned
# search_path (CREATE OR REPLACE resets what it omits: both are said again).
_FOLD = """
            WITH moved AS (DELETE FROM task_count_deltas RETURNING status, task_type, ai_model, n),
                 summed AS (SELECT status, task_type, ai_model, sum(n) AS n FROM moved
                            GROUP BY status, task_type, ai_model)
            INSERT INTO task_counts AS c (status, task_type, ai_model, n)
            SELECT status, task_type, ai_model, n FROM summed WHERE n <> 0
            ON CONFLICT (status, task_type, ai_model) DO UPDATE SET n = c.n + EXCLUDED.n;
            DELETE FROM task_counts WHERE n = 0;"""

COMPACT = f"""
    CREATE OR REPLACE FUNCTION fsar_compact_task_counts() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
        -- Another transaction compacting (or done and not committed): leave it the deltas.
        IF NOT pg_try_advisory_xact_lock({COMPACT_LOCK}) THEN
            RETURN;
        END IF;{_FOLD}
    END
    $$
"""

COMPACT_0012 = f"""
    CREATE OR REPLACE FUNCTION fsar_compact_task_counts() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $${_FOLD}
    $$
"""


def upgrade() -> None:
    op.execute(COMPACT)


def downgrade() -> None:
    op.execute(COMPACT_0012)
