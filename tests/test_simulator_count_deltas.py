"""The simulator's writers no longer deadlock each other on the task counts (revision 0033).

Two transactions that each change tasks and compact the counts twice — as the
simulator's enqueuer (a batch of inserts) and reaper (many tasks in one UPDATE) do, the
trigger compacting on about one change in 256 — used to hold the task_counts keys of
their first compaction while their second waited for the other's: PostgreSQL's
"deadlock detected". Now the second transaction's compactions step aside (the deltas
wait for a later one) and every count stays exact.
"""

from __future__ import annotations

import threading

import psycopg

from fsar_tui.db.migrations import downgrade, migrate
from fsar_tui.db.tasks import COUNTS_DRIFT_SQL
from support.sql import q


def _change(conn: psycopg.Connection, task_type: str) -> None:
    """A task change (its trigger appends the deltas), then a compaction, as the trigger's
    draw of 1 in 256 would run it."""
    conn.execute("INSERT INTO execution_tasks (task_type, ai_model) VALUES (%s, 'gpt-4o')", (task_type,))
    conn.execute("SELECT fsar_compact_task_counts()")


def test_two_transactions_compacting_twice_in_crossed_order_do_not_deadlock(db_dsn):
    errors: list[BaseException] = []
    with psycopg.connect(db_dsn) as first, psycopg.connect(db_dsn) as second:
        _change(first, "implement_idea")  # first holds implement_idea's count row …
        _change(second, "self_improvement")  # … second self_improvement's (before 0033)

        def second_then_implement_idea() -> None:
            try:
                _change(second, "implement_idea")  # waited for first (before 0033)
            except psycopg.Error as exc:
                errors.append(exc)

        waiter = threading.Thread(target=second_then_implement_idea)
        waiter.start()
        try:
            _change(first, "self_improvement")  # … which waited for second: a cycle
        except psycopg.Error as exc:
            errors.append(exc)
        waiter.join()
        first.commit()
        second.commit()
    assert errors == []
    assert q(db_dsn, COUNTS_DRIFT_SQL) == []
    # The deltas the second transaction left are folded by the next compaction.
    with psycopg.connect(db_dsn) as conn:
        conn.execute("SELECT fsar_compact_task_counts()")
    assert q(db_dsn, "SELECT count(*) FROM task_count_deltas") == [(0,)]
    assert q(db_dsn, "SELECT task_type, n::int FROM task_counts ORDER BY 1") == [
        ("implement_idea", 2),
        ("self_improvement", 2),
    ]
    assert q(db_dsn, COUNTS_DRIFT_SQL) == []


def test_0033_down_and_up(db_dsn):
    source = "SELECT prosrc, prosecdef FROM pg_proc WHERE proname = 'fsar_compact_task_counts'"
    assert "pg_try_advisory_xact_lock" in q(db_dsn, source)[0][0] and q(db_dsn, source)[0][1]
    downgrade(db_dsn, "0032_partition_limits")
    assert "pg_try_advisory_xact_lock" not in q(db_dsn, source)[0][0] and q(db_dsn, source)[0][1]
    migrate(db_dsn)
    assert "pg_try_advisory_xact_lock" in q(db_dsn, source)[0][0]
