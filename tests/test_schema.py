"""The schema at head: CHECK constraints, append-only tables, the hash chain, NOTIFY."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest
from psycopg import errors


def run(dsn, sql, params=None):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else None


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO execution_tasks (task_type, status) VALUES ('t', 'pending')",
        "INSERT INTO execution_tasks (task_type, status) VALUES ('t', 'succeeded')",  # terminal without finished_at
        "INSERT INTO execution_tasks (task_type, status, finished_at) VALUES ('t', 'running', now())",
        "INSERT INTO execution_tasks (task_type, attempt, max_attempts) VALUES ('t', 4, 3)",
        "INSERT INTO execution_tasks (task_type, max_attempts) VALUES ('t', 0)",
        "INSERT INTO execution_tasks (task_type, input_tokens) VALUES ('t', -1)",
        "INSERT INTO execution_tasks (task_type, cost_minor) VALUES ('t', 5)",  # cost without currency
        "INSERT INTO execution_tasks (task_type, cost_minor, currency) VALUES ('t', 5, 'usd')",
        (
            "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at) VALUES "
            "('s', 'e', 'refund', 100, 'USD', now())"
        ),
        (
            "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at) VALUES "
            "('s', 'e', 'revenue', -100, 'USD', now())"
        ),
        (
            "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at) VALUES "
            "('s', 'e', 'bonus', 1, 'USD', now())"
        ),
        (
            "INSERT INTO fsar_proposals (id, reported_at, severity, body, source_sha256) VALUES ('p', now(), 11, "
            "'b', repeat('a', 64))"
        ),
        (
            "INSERT INTO fsar_proposals (id, reported_at, severity, body, source_sha256, status) VALUES ('p', now(), "
            "1, 'b', repeat('a', 64), 'maybe')"
        ),
        (
            "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold) VALUES ('g', 'vibes', '1h', "
            "'<', 1)"
        ),
        "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold) VALUES ('g', 'roi', '1h', '!=', 1)",
        "INSERT INTO drift_alerts (indicator, state) VALUES ('i', 'resolved')",  # resolved without resolved_at
    ],
)
def test_check_constraints_reject_impossible_states(db_dsn, sql):
    with pytest.raises(errors.CheckViolation):
        run(db_dsn, sql)


def test_valid_lifecycle_is_accepted(db_dsn):
    ((task_id,),) = run(
        db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('implement_idea', 'gpt-4o') RETURNING id"
    )
    run(
        db_dsn,
        "UPDATE execution_tasks SET status = 'running', attempt = 1, started_at = now() WHERE id = %s",
        (task_id,),
    )
    run(
        db_dsn,
        "UPDATE execution_tasks SET status = 'failed', finished_at = now(), error = 'boom' WHERE id = %s",
        (task_id,),
    )
    run(db_dsn, "UPDATE execution_tasks SET status = 'queued', finished_at = NULL WHERE id = %s", (task_id,))
    assert run(db_dsn, "SELECT status, attempt FROM execution_tasks WHERE id = %s", (task_id,)) == [("queued", 1)]


def test_duplicate_ledger_entry_is_rejected(db_dsn):
    sql = (
        "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at) "
        "VALUES ('stripe', 'evt_1', 'revenue', 100, 'EUR', now())"
    )
    run(db_dsn, sql)
    with pytest.raises(errors.UniqueViolation):
        run(db_dsn, sql)


def insert_action(dsn, action="retry", target="task:1", reason="because"):
    return run(
        dsn,
        "INSERT INTO operator_actions (actor, action, target, reason, before, after) "
        'VALUES (\'alice\', %s, %s, %s, \'{"status": "failed"}\', \'{"status": "queued"}\') '
        "RETURNING seq, prev_hash, hash, db_role",
        (action, target, reason),
    )[0]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE operator_actions SET reason = 'rewritten'",
        "DELETE FROM operator_actions",
        "TRUNCATE operator_actions",
    ],
)
def test_operator_actions_is_append_only(db_dsn, sql):
    insert_action(db_dsn)
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        run(db_dsn, sql)
    assert run(db_dsn, "SELECT count(*), min(reason) FROM operator_actions") == [(1, "because")]


def test_model_prices_and_rollout_revisions_are_append_only(db_dsn):
    run(
        db_dsn,
        "INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, effective_from) "
        "VALUES ('m', 'USD', 1, 2, now())",
    )
    with pytest.raises(errors.InsufficientPrivilege):
        run(db_dsn, "UPDATE model_prices SET input_minor_per_mtok = 0")
    run(db_dsn, "INSERT INTO rollouts (target, kind) VALUES ('model/main', 'model')")
    run(
        db_dsn,
        "INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256) "
        "SELECT id, 1, '{}', repeat('c', 64) FROM rollouts",
    )
    with pytest.raises(errors.InsufficientPrivilege):
        run(db_dsn, "DELETE FROM rollout_revisions")


def test_operator_actions_hash_chain(db_dsn):
    first = insert_action(db_dsn)
    second = insert_action(db_dsn, action="cancel")
    assert first[0] == 1 and first[1] == "0" * 64 and len(first[2]) == 64
    assert second[0] == 2 and second[1] == first[2]
    assert first[3] == run(db_dsn, "SELECT current_user")[0][0]
    assert run(db_dsn, "SELECT fsar_operator_actions_verify()") == [(None,)]


def test_hash_chain_verification_detects_tampering(db_dsn):
    for i in range(3):
        insert_action(db_dsn, target=f"task:{i}")
    # A superuser bypassing the trigger is exactly what verification exists to catch.
    run(db_dsn, "ALTER TABLE operator_actions DISABLE TRIGGER operator_actions_append_only")
    run(db_dsn, "UPDATE operator_actions SET reason = 'forged' WHERE seq = 2")
    assert run(db_dsn, "SELECT fsar_operator_actions_verify()") == [(2,)]


def test_concurrent_operator_actions_keep_one_chain(db_dsn):
    def worker():
        for _ in range(10):
            insert_action(db_dsn)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert run(db_dsn, "SELECT count(*), max(seq) FROM operator_actions") == [(40, 40)]
    assert run(db_dsn, "SELECT fsar_operator_actions_verify()") == [(None,)]


def test_status_changes_write_task_events_and_notify(db_dsn):
    with psycopg.connect(db_dsn, autocommit=True) as listener:
        listener.execute("LISTEN fsar_events")
        ((task_id,),) = run(
            db_dsn,
            "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('self_improvement', 'gpt-4o') RETURNING id",
        )
        run(
            db_dsn,
            (
                "UPDATE execution_tasks SET status = 'running', attempt = 1, worker_id = 'w-1', started_at = now() "
                "WHERE id = %s"
            ),
            (task_id,),
        )
        run(db_dsn, "UPDATE execution_tasks SET priority = 5 WHERE id = %s", (task_id,))  # no status change: no event
        run(db_dsn, "UPDATE execution_tasks SET status = 'succeeded', finished_at = now() WHERE id = %s", (task_id,))
        payloads = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=3)]
    assert [(p["from"], p["to"]) for p in payloads] == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    assert all(
        p["id"] == task_id and p["type"] == "self_improvement" and p["model"] == "gpt-4o" and p["kind"] == "task"
        for p in payloads
    )
    assert payloads[1]["attempt"] == 1
    events = run(
        db_dsn,
        "SELECT from_status, to_status, attempt, worker_id FROM task_events WHERE task_id = %s ORDER BY id",
        (task_id,),
    )
    assert events == [(None, "queued", 0, None), ("queued", "running", 1, "w-1"), ("running", "succeeded", 1, "w-1")]


def test_notify_is_not_sent_for_rolled_back_changes(db_dsn):
    with psycopg.connect(db_dsn, autocommit=True) as listener:
        listener.execute("LISTEN fsar_events")
        with psycopg.connect(db_dsn) as conn:
            conn.execute("INSERT INTO execution_tasks (task_type) VALUES ('implement_idea')")
            conn.rollback()
        run(db_dsn, "INSERT INTO execution_tasks (task_type) VALUES ('committed')")
        got = [json.loads(n.payload)["type"] for n in listener.notifies(timeout=3, stop_after=1)]
    assert got == ["committed"]


def test_bulk_load_setting_skips_trigger(db_dsn):
    with psycopg.connect(db_dsn) as conn:
        conn.execute("SET LOCAL fsar.bulk_load = 'on'")
        conn.execute("INSERT INTO execution_tasks (task_type) VALUES ('implement_idea')")
    assert run(db_dsn, "SELECT count(*) FROM task_events") == [(0,)]


def counts_drift(dsn):
    from fsar_tui.db.tasks import COUNTS_DRIFT_SQL

    return run(dsn, COUNTS_DRIFT_SQL)


def kept_counts(dsn):
    return {
        (s, t, m): n
        for s, t, m, n in run(
            dsn,
            """
        SELECT status, task_type, ai_model, sum(n)::int FROM (SELECT * FROM task_counts UNION ALL
                                                              SELECT * FROM task_count_deltas) c
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0""",
        )
    }


def test_task_counts_follow_every_kind_of_change(db_dsn):
    run(db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) SELECT 'a', 'm1' FROM generate_series(1, 5)")
    run(db_dsn, "INSERT INTO execution_tasks (task_type) VALUES ('b')")  # a legacy row without model
    assert kept_counts(db_dsn) == {("queued", "a", "m1"): 5, ("queued", "b", ""): 1}
    run(
        db_dsn,
        (
            "UPDATE execution_tasks SET status = 'running', started_at = now() WHERE id IN (SELECT id FROM "
            "execution_tasks WHERE task_type = 'a' LIMIT 2)"
        ),
    )
    run(db_dsn, "UPDATE execution_tasks SET ai_model = 'm2' WHERE task_type = 'b'")
    run(db_dsn, "UPDATE execution_tasks SET priority = priority + 1")  # no counted column changes
    with psycopg.connect(db_dsn) as conn:  # rolled back: no trace
        conn.execute("UPDATE execution_tasks SET status = 'cancelled', finished_at = now() WHERE status = 'queued'")
        conn.rollback()
    run(db_dsn, "DELETE FROM execution_tasks WHERE id = (SELECT min(id) FROM execution_tasks WHERE status = 'queued')")
    assert kept_counts(db_dsn) == {("queued", "a", "m1"): 2, ("running", "a", "m1"): 2, ("queued", "b", "m2"): 1}
    run(db_dsn, "SELECT fsar_compact_task_counts()")
    assert run(db_dsn, "SELECT count(*) FROM task_count_deltas") == [(0,)]
    assert kept_counts(db_dsn) == {("queued", "a", "m1"): 2, ("running", "a", "m1"): 2, ("queued", "b", "m2"): 1}
    assert counts_drift(db_dsn) == []
    run(db_dsn, "TRUNCATE execution_tasks CASCADE")
    assert kept_counts(db_dsn) == {} and counts_drift(db_dsn) == []


def test_task_counts_stay_exact_under_concurrent_writers_and_compactions(db_dsn):
    run(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model) SELECT 't' || g % 3, 'm' FROM generate_series(1, 600) g",
    )

    def writer(offset):
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            for i in range(offset, 600, 4):
                conn.execute(
                    "UPDATE execution_tasks SET status = 'running', started_at = now() WHERE id = "
                    "(SELECT min(id) + %s FROM execution_tasks)",
                    (i,),
                )
                if i % 5 == 0:
                    conn.execute("SELECT fsar_compact_task_counts()")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run(db_dsn, "SELECT fsar_compact_task_counts()")
    assert counts_drift(db_dsn) == []
    assert sum(kept_counts(db_dsn).values()) == 600
    assert kept_counts(db_dsn)[("running", "t0", "m")] == 200


def test_bulk_load_adds_one_delta_per_group(db_dsn):
    from fsar_tui.db import bulk

    with psycopg.connect(db_dsn) as conn, bulk.bulk_transaction(conn):
        first = bulk.reserve_task_ids(conn, 3)
        bulk.copy_rows(
            conn, "execution_tasks", ("id", "task_type", "ai_model"), [(first + i, "bulk", "m") for i in range(3)]
        )
        bulk.add_count_deltas(conn, first, first + 2)
    assert kept_counts(db_dsn) == {("queued", "bulk", "m"): 3}
    assert run(db_dsn, "SELECT count(*) FROM task_count_deltas") == [(1,)]
