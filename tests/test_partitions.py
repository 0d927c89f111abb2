"""Revision 0029: execution_tasks partitioned by id, task_events by day — adopted without a
copy and without losing a row, the triggers firing once, partitions made ahead and out of
DEFAULT, a writer waiting (not failing) through the adoption, the downgrade keeping every
row, and no partition carrying a grant (db/partitions.py, db/partition_functions.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from fsar_tui.db import partitions, privileges
from fsar_tui.db.migrations import downgrade, head_revision, migrate
from fsar_tui.db.partition_functions import CHUNK
from support.sql import q, x

BEFORE = "0028_cost_integrity"
TABLES = ("execution_tasks", "task_events")
# Every row of each table, in id order, as text: equal before and after means the same rows.
FINGERPRINT = {
    "execution_tasks": "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM execution_tasks t",
    "task_events": "SELECT count(*), md5(string_agg(e::text, '|' ORDER BY e.id)) FROM task_events e",
    "ledger_entries": "SELECT count(*), md5(string_agg(l::text, '|' ORDER BY l.id)) FROM ledger_entries l",
}
COUNTS = """SELECT status, task_type, ai_model, sum(n) FROM (SELECT * FROM task_counts UNION ALL
            SELECT * FROM task_count_deltas) c GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3"""
ACTUAL_COUNTS = """SELECT status, task_type, coalesce(ai_model, ''), count(*) FROM execution_tasks
                   GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""


def fingerprint(dsn: str) -> dict[str, tuple]:
    return {table: q(dsn, sql)[0] for table, sql in FINGERPRINT.items()}


def where_rows_are(dsn: str, table: str) -> dict[str, int]:
    return dict(q(dsn, f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1"))


def legacy_history(dsn: str, n: int = 50_000) -> None:
    """n more legacy rows (ids with gaps, every legacy status) at the legacy shape."""
    x(
        dsn,
        f"""INSERT INTO execution_tasks (id, task_type, status, payload, worker_id, created_at, started_at, finished_at)
           SELECT g * 25 + g % 7, (ARRAY['implement_idea', 'idea_implementation', 'self_improvement'])[1 + g % 3],
                  CASE g % 10 WHEN 0 THEN 'queued' WHEN 1 THEN 'running' WHEN 2 THEN 'failed' ELSE 'succeeded' END,
                  jsonb_build_object('n', g), CASE WHEN g % 10 <> 0 THEN 'w-' || g % 5 END,
                  timestamp '2026-01-01' + g * interval '1 minute',
                  CASE WHEN g % 10 <> 0 THEN timestamp '2026-01-01' + g * interval '1 minute' + interval '3 s' END,
                  CASE WHEN g % 10 >= 2 THEN timestamp '2026-01-01' + g * interval '1 minute' + interval '40 s' END
           FROM generate_series(1, {int(n)}) g""",
    )
    x(dsn, "SELECT setval('execution_tasks_id_seq', (SELECT max(id) FROM execution_tasks))")


def some_events(dsn: str) -> None:
    """Status changes at 0028, so task_events has rows to adopt."""
    x(
        dsn,
        "UPDATE execution_tasks SET status = 'running', attempt = 1, started_at = now(), worker_id = 'w-9' "
        "WHERE id IN (SELECT id FROM execution_tasks WHERE status = 'queued' ORDER BY id LIMIT 700)",
    )


def test_legacy_adoption_keeps_every_row(legacy_dsn):
    legacy_history(legacy_dsn)
    ids = q(legacy_dsn, "SELECT count(*), sum(id), max(id) FROM execution_tasks")[0]
    migrate(legacy_dsn, BEFORE)
    some_events(legacy_dsn)
    before = fingerprint(legacy_dsn)
    assert before["execution_tasks"][0] == 50_004 and before["task_events"][0] == 700

    result = migrate(legacy_dsn)

    assert result.after == head_revision() and "0029_partitions" in result.applied
    assert fingerprint(legacy_dsn) == before
    assert q(legacy_dsn, "SELECT count(*), sum(id), max(id) FROM execution_tasks")[0] == ids
    # Adopted, not copied: every old row is in the first partition, none in DEFAULT.
    assert where_rows_are(legacy_dsn, "execution_tasks") == {"execution_tasks_p0": 50_004}
    assert where_rows_are(legacy_dsn, "task_events") == {"task_events_p0": 700}
    with psycopg.connect(legacy_dsn) as conn:
        tasks = partitions.list_partitions(conn, "execution_tasks")
        assert tasks[0] == partitions.Partition("execution_tasks", "execution_tasks_p0", None, 2 * CHUNK, False)
        assert [(p.lower, p.upper) for p in tasks[1:-1]] == [(2 * CHUNK, 3 * CHUNK), (3 * CHUNK, 4 * CHUNK)]
        assert tasks[-1].is_default and tasks[-1].name == "execution_tasks_default"
        events = partitions.list_partitions(conn, "task_events")
        tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        assert events[0].name == "task_events_p0" and events[0].lower is None and events[0].upper == tomorrow
        days = [p for p in events if not p.is_default][1:]
        assert days[0].lower == tomorrow and all(a.upper == b.lower for a, b in zip(days, days[1:], strict=False))
        assert days[-1].upper >= tomorrow + timedelta(days=partitions.EVENT_DAYS_AHEAD)
    # The adopted rows' counts are as they were, and equal a recount.
    assert q(legacy_dsn, COUNTS) == q(legacy_dsn, ACTUAL_COUNTS)


def test_new_rows_land_in_their_partitions_and_each_trigger_fires_once(db_dsn):
    x(db_dsn, "SELECT setval('execution_tasks_id_seq', %s)", (2 * CHUNK + 41,))
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        tid, where = conn.execute(
            "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('implement_idea', 'gpt-4o') "
            "RETURNING id, tableoid::regclass::text"
        ).fetchone()
        conn.execute(
            "UPDATE execution_tasks SET status = 'running', attempt = 1, started_at = now() WHERE id = %s", (tid,)
        )
        conn.execute("UPDATE execution_tasks SET status = 'succeeded', finished_at = now() WHERE id = %s", (tid,))
        later = conn.execute(
            "INSERT INTO task_events (task_id, to_status, attempt, at) "
            "VALUES (%s, 'queued', 0, now() + interval '3 days') "
            "RETURNING tableoid::regclass::text",
            (tid,),
        ).fetchone()[0]
    assert tid == 2 * CHUNK + 42 and where == "execution_tasks_2000000_3000000"
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert later == f"task_events_{(datetime.now(UTC) + timedelta(days=3)):%Y%m%d}"
    events = q(
        db_dsn,
        "SELECT from_status, to_status, tableoid::regclass::text FROM task_events WHERE task_id = %s ORDER BY id",
        (tid,),
    )
    assert events[:3] == [
        (None, "queued", f"task_events_{today}"),
        ("queued", "running", f"task_events_{today}"),
        ("running", "succeeded", f"task_events_{today}"),
    ]
    assert len(events) == 4  # three from the trigger (once each) and the one inserted above
    assert q(db_dsn, COUNTS) == q(db_dsn, ACTUAL_COUNTS) == [("succeeded", "implement_idea", "gpt-4o", 1)]
    with psycopg.connect(db_dsn) as conn:
        assert partitions.rows_in_default(conn, "execution_tasks") == 0
        assert partitions.rows_in_default(conn, "task_events") == 0


# One workload, with its times fixed, run on a partitioned database and on one at 0028.
WORKLOAD = (
    (
        "INSERT INTO execution_tasks (task_type, ai_model, created_at, queued_at) "
        "SELECT (ARRAY['implement_idea', 'self_improvement'])[1 + g % 2], (ARRAY['gpt-4o', 'o3', NULL])[1 + g % 3], "
        "date_trunc('hour', now()) - interval '3 hours', date_trunc('hour', now()) - interval '3 hours' "
        "FROM generate_series(1, 120) g"
    ),
    (
        "UPDATE execution_tasks SET status = 'running', attempt = 1, worker_id = 'w' || id % 3, "
        "started_at = queued_at + id * interval '1 s', lease_expires_at = now() + interval '1 hour' WHERE id % 5 <> 0"
    ),
    "UPDATE execution_tasks SET status = 'queued', error = 'lost ' || id WHERE status = 'running' AND id % 7 = 0",
    (
        "UPDATE execution_tasks SET status = 'succeeded', finished_at = started_at + (id % 11) * interval '1 minute', "
        "input_tokens = id * 10, output_tokens = id WHERE status = 'running' AND id % 2 = 0"
    ),
    (
        "UPDATE execution_tasks SET status = 'failed', finished_at = started_at + interval '90 s', error = 'boom' "
        "WHERE status = 'running'"
    ),
    (
        "UPDATE execution_tasks SET status = 'cancelled', finished_at = queued_at + interval '1 hour' "
        "WHERE status = 'queued' AND id % 2 = 1"
    ),
    "SELECT fsar_compact_task_counts()",
    "SELECT fsar_fold_duration_samples()",
)
OUTCOMES = {
    "events": "SELECT task_id, from_status, to_status, attempt, worker_id, error, input_tokens, output_tokens, "
    "model_cost_minor, compute_cost_minor FROM task_events ORDER BY id",
    "counts": "SELECT * FROM task_counts ORDER BY 1, 2, 3",
    "rollups": "SELECT * FROM duration_rollups ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9",
    "costs": "SELECT * FROM cost_rollups ORDER BY 1, 2, 3, 4, 5, 6",
    "tasks": "SELECT id, status, attempt, cost_minor, waste_minor, unpriced_attempts FROM execution_tasks ORDER BY id",
}


def test_triggers_do_exactly_what_they_did_on_the_plain_tables(db_dsn, empty_dsn):
    migrate(empty_dsn, BEFORE)
    assert q(empty_dsn, "SELECT relkind FROM pg_class WHERE oid = 'execution_tasks'::regclass") == [("r",)]
    assert q(db_dsn, "SELECT relkind FROM pg_class WHERE oid = 'execution_tasks'::regclass") == [("p",)]
    for dsn in (db_dsn, empty_dsn):
        for statement in WORKLOAD:
            x(dsn, statement)
    for name, sql in OUTCOMES.items():
        partitioned, plain = q(db_dsn, sql), q(empty_dsn, sql)
        assert partitioned == plain, name
        assert plain, name  # the workload reached every one of them


def _writer(dsn: str, stop: threading.Event, committed: list[int], errors: list[BaseException]) -> None:
    """The executing system: insert, claim, finish, record revenue — one transaction a task."""
    try:
        with psycopg.connect(dsn) as conn:
            while not stop.is_set():
                with conn.transaction():
                    tid = conn.execute(
                        "INSERT INTO execution_tasks (task_type) VALUES ('self_improvement') RETURNING id"
                    ).fetchone()[0]
                    conn.execute(
                        "UPDATE execution_tasks SET status = 'running', attempt = 1, started_at = now(), "
                        "worker_id = 'fleet' WHERE id = %s",
                        (tid,),
                    )
                    conn.execute(
                        "UPDATE execution_tasks SET status = 'succeeded', finished_at = now() WHERE id = %s", (tid,)
                    )
                    conn.execute(
                        "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, "
                        "task_id) VALUES ('fleet', 'r' || %s, 'revenue', 100, 'USD', now(), %s)",
                        (tid, tid),
                    )
                committed.append(tid)
    except BaseException as exc:  # whatever it is, the test reports it
        errors.append(exc)


def _until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_writer_during_the_adoption_waits_and_loses_nothing(legacy_dsn):
    legacy_history(legacy_dsn, 5_000)
    migrate(legacy_dsn, BEFORE)
    stop, committed, errors = threading.Event(), [], []
    writer = threading.Thread(target=_writer, args=(legacy_dsn, stop, committed, errors))
    writer.start()
    # A transaction of the fleet is open when the migration starts: the migration waits for it.
    blocker = psycopg.connect(legacy_dsn)
    held = blocker.execute("INSERT INTO execution_tasks (task_type) VALUES ('implement_idea') RETURNING id").fetchone()[
        0
    ]
    outcome: list[object] = []
    migration = threading.Thread(target=lambda: outcome.append(migrate(legacy_dsn)))
    try:
        _until(lambda: len(committed) >= 20, "the writer's first tasks")
        migration.start()
        waiting = """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                     AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"""
        # The migration waits on the open transaction, and the writer queues behind it.
        _until(lambda: q(legacy_dsn, waiting)[0][0] >= 2, "the migration and the writer to wait on the lock")
        during = len(committed)
        blocker.execute("UPDATE execution_tasks SET status = 'cancelled', finished_at = now() WHERE id = %s", (held,))
        blocker.commit()
        migration.join(120)
        assert not migration.is_alive()
        after = len(committed)
        _until(lambda: len(committed) >= after + 20, "the writer's tasks after the migration")
    finally:
        stop.set()
        writer.join(60)
        blocker.close()
    assert errors == [] and len(outcome) == 1 and outcome[0].after == head_revision()
    assert during <= after  # nothing committed while the migration held the tables
    ids = sorted(committed)
    assert q(legacy_dsn, "SELECT count(*) FROM execution_tasks WHERE id = ANY (%s)", (ids,)) == [(len(ids),)]
    per_task = q(
        legacy_dsn,
        "SELECT task_id, array_agg(to_status ORDER BY id) FROM task_events WHERE task_id = ANY (%s) GROUP BY 1",
        (ids + [held],),
    )
    assert len(per_task) == len(ids) + 1
    assert all(s == (["queued", "cancelled"] if t == held else ["queued", "running", "succeeded"]) for t, s in per_task)
    assert q(legacy_dsn, "SELECT count(*) FROM ledger_entries WHERE task_id = ANY (%s)", (ids,)) == [(len(ids),)]
    assert q(legacy_dsn, COUNTS) == q(legacy_dsn, ACTUAL_COUNTS)
    with psycopg.connect(legacy_dsn) as conn:
        assert partitions.rows_in_default(conn, "execution_tasks") == 0
        assert partitions.rows_in_default(conn, "task_events") == 0


def test_ensure_partitions_is_idempotent_and_two_at_once_take_turns(db_dsn):
    now = datetime.now(UTC)
    barrier = threading.Barrier(2)
    created: list[list[str]] = []

    def ensure() -> None:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            barrier.wait()
            created.append(partitions.ensure_partitions(conn, now=now, task_ids_ahead=6 * CHUNK, event_days_ahead=30))

    threads = [threading.Thread(target=ensure) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(created) == 2
    made = created[0] + created[1]
    assert len(made) == len(set(made)) and sorted(len(c) for c in created)[0] == 0  # the second found it done
    assert {f"execution_tasks_{n * CHUNK}_{(n + 1) * CHUNK}" for n in range(3, 7)} <= set(made)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert partitions.ensure_partitions(conn, now=now, task_ids_ahead=6 * CHUNK, event_days_ahead=30) == []
        for table in TABLES:
            ranges = [p for p in partitions.list_partitions(conn, table) if not p.is_default]
            assert all(a.upper == b.lower for a, b in zip(ranges, ranges[1:], strict=False)), table
        days = partitions.list_partitions(conn, "task_events")
        last = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=31)
        assert [p.upper for p in days if not p.is_default][-1] == last


def test_rows_caught_by_default_are_moved_out_without_a_trigger_firing(db_dsn):
    far = 50 * CHUNK + 5
    x(
        db_dsn,
        "INSERT INTO execution_tasks (id, task_type, status, attempt, started_at, finished_at) "
        "VALUES (%s, 'implement_idea', 'succeeded', 1, now() - interval '1 minute', now())",
        (far,),
    )
    x(
        db_dsn,
        "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, task_id) "
        "VALUES ('test', 'far', 'revenue', 500, 'EUR', now(), %s)",
        (far,),
    )
    x(
        db_dsn,
        "INSERT INTO task_events (task_id, to_status, attempt, at) VALUES (%s, 'queued', 0, '2020-02-29 23:59:59+00')",
        (far,),
    )
    # A foreign key to the tasks (revision 0029's ledger_entries_task_id_fkey; 0030 drops that one):
    # a referenced row in DEFAULT forbids detaching it, so the move drops and re-adds such keys.
    x(
        db_dsn,
        "ALTER TABLE ledger_entries ADD CONSTRAINT test_task_fk FOREIGN KEY (task_id) REFERENCES execution_tasks (id)",
    )
    assert where_rows_are(db_dsn, "execution_tasks") == {"execution_tasks_default": 1}
    before = fingerprint(db_dsn), q(db_dsn, COUNTS), q(db_dsn, "SELECT count(*) FROM task_duration_samples")
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert partitions.rows_in_default(conn, "execution_tasks") == 1
        assert partitions.rows_in_default(conn, "task_events") == 1
        made = partitions.ensure_partitions(conn, now=datetime.now(UTC))
        assert partitions.rows_in_default(conn, "execution_tasks") == 0
        assert partitions.rows_in_default(conn, "task_events") == 0
    assert {"execution_tasks_50000000_51000000", "task_events_20200229"} <= set(made)
    assert where_rows_are(db_dsn, "execution_tasks") == {"execution_tasks_50000000_51000000": 1}
    assert q(db_dsn, "SELECT tableoid::regclass::text FROM task_events WHERE at < '2021-01-01'") == [
        ("task_events_20200229",)
    ]
    # Nothing fired: the same rows, counts and samples; the ledger's key is back, validated, on the parent.
    assert (fingerprint(db_dsn), q(db_dsn, COUNTS), q(db_dsn, "SELECT count(*) FROM task_duration_samples")) == before
    assert q(
        db_dsn,
        "SELECT confrelid::regclass::text, convalidated FROM pg_constraint "
        "WHERE conname = 'test_task_fk' AND conparentid = 0",
    ) == [("execution_tasks", True)]


def test_create_partition_returns_an_existing_range_and_refuses_an_overlap(db_dsn):
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert partitions.create_task_partition(conn, CHUNK, 2 * CHUNK) == "execution_tasks_1000000_2000000"
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="overlaps partition execution_tasks_p0"):
            partitions.create_task_partition(conn, CHUNK // 2, CHUNK + 1)
        day = (datetime.now(UTC) + timedelta(days=90)).date()
        assert partitions.create_event_partition(conn, day) == f"task_events_{day:%Y%m%d}"
        assert partitions.create_event_partition(conn, day) == f"task_events_{day:%Y%m%d}"


def test_downgrade_keeps_every_row_and_upgrading_again_too(db_dsn):
    x(db_dsn, "SELECT setval('execution_tasks_id_seq', %s)", (CHUNK - 3,))
    for statement in WORKLOAD[:6]:  # ids on both sides of p0's bound, events of today
        x(db_dsn, statement)
    x(db_dsn, "INSERT INTO task_events (task_id, to_status, attempt, at) VALUES (1, 'queued', 0, '2021-06-01')")
    x(
        db_dsn,
        "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, task_id) "
        "SELECT 'test', 'e' || id, 'revenue', 100, 'USD', now(), id FROM execution_tasks WHERE id % 10 = 0",
    )
    assert len(where_rows_are(db_dsn, "execution_tasks")) == 2 and "task_events_default" in where_rows_are(
        db_dsn, "task_events"
    )
    before = fingerprint(db_dsn), q(db_dsn, COUNTS)

    downgrade(db_dsn, BEFORE)

    assert q(db_dsn, "SELECT relname, relkind FROM pg_class WHERE relname = ANY (%s) ORDER BY 1", (list(TABLES),)) == [
        ("execution_tasks", "r"),
        ("task_events", "r"),
    ]
    assert q(db_dsn, "SELECT count(*) FROM pg_class WHERE relispartition") == [(0,)]
    assert (fingerprint(db_dsn), q(db_dsn, COUNTS)) == before
    assert q(db_dsn, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'task_events_pkey'") == [
        ("PRIMARY KEY (id)",)
    ]
    assert q(
        db_dsn, "SELECT confrelid::regclass::text FROM pg_constraint WHERE conname = 'ledger_entries_task_id_fkey'"
    ) == [("execution_tasks",)]
    migrate(db_dsn)
    assert (fingerprint(db_dsn), q(db_dsn, COUNTS)) == before


def test_seeded_history_lands_in_day_and_id_partitions_not_in_default(db_dsn):
    from fsar_tui.sim.seed import seed_history

    seed_history(db_dsn, days=30, tasks=3_000, seed=3)
    with psycopg.connect(db_dsn) as conn:
        assert partitions.rows_in_default(conn, "execution_tasks") == 0
        assert partitions.rows_in_default(conn, "task_events") == 0
    days = where_rows_are(db_dsn, "task_events")
    assert len(days) >= 30 and all(name.startswith("task_events_20") for name in days)


def test_partitions_carry_no_grant_and_security_audit_passes(db_dsn, login, run_cli):
    operator = login("fsar_operator")
    with psycopg.connect(operator, autocommit=True) as conn:  # the audit pass's role makes partitions too
        made = partitions.ensure_partitions(conn, now=datetime.now(UTC), event_days_ahead=40)
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="more than a day"):
            partitions.ensure_partitions(conn, now=datetime.now(UTC) + timedelta(days=400))
    assert made
    grants = """SELECT c.relname FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
                WHERE c.relispartition AND a.grantee <> c.relowner"""
    assert q(db_dsn, grants) == []
    assert q(db_dsn, "SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class WHERE relispartition") == [
        (q(db_dsn, "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE relname = 'alembic_version'")[0][0],)
    ]
    viewer = login("fsar_viewer")
    assert q(viewer, "SELECT count(*) FROM execution_tasks") == [(0,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        q(viewer, "SELECT count(*) FROM execution_tasks_p0")
    audit = run_cli("security-audit", "--dsn", operator)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # A grant on a partition widens nothing the matrix sees — the audit names it anyway.
    x(db_dsn, "GRANT SELECT ON execution_tasks_p0 TO fsar_viewer")
    with psycopg.connect(db_dsn) as conn:
        found = privileges.undeclared_grants(conn)
    assert any("fsar_viewer may SELECT on partition execution_tasks_p0" in f for f in found), found
    # A role outside the fsar roles: what it may hold on the parent (SELECT), not more (DELETE).
    fleet = login()
    fleet_role = q(fleet, "SELECT current_user")[0][0]
    x(db_dsn, f"GRANT SELECT, DELETE ON task_events_default TO {fleet_role}")
    with psycopg.connect(db_dsn) as conn:
        found = [f for f in privileges.undeclared_grants(conn) if fleet_role in f]
    x(db_dsn, f"REVOKE ALL ON task_events_default FROM {fleet_role}")  # before the login is dropped
    assert len(found) == 1 and found[0].startswith(f"{fleet_role} may DELETE on partition task_events_default"), found
    assert run_cli("security-audit", "--dsn", operator).returncode == 1


def test_the_audit_pass_moves_rows_out_of_default_as_an_operator(db_dsn, login):
    from fsar_tui.services.audit_pass import scheduled_check

    far = 70 * CHUNK
    x(db_dsn, "INSERT INTO execution_tasks (id, task_type) VALUES (%s, 'implement_idea')", (far,))
    check = scheduled_check(login("fsar_operator"), read_only=False)  # as the app's pass runs in production
    # The row's chunk (the row moved in); the chunks ahead follow the sequence, not a stray id.
    assert check.partition_problem is None and check.partitions_created == ["execution_tasks_70000000_71000000"]
    assert where_rows_are(db_dsn, "execution_tasks") == {"execution_tasks_70000000_71000000": 1}
    again = scheduled_check(login("fsar_operator"), read_only=False)
    assert again.partition_problem is None and again.partitions_created == []


def test_maintenance_waits_for_a_bulk_load_instead_of_deadlocking_with_it(db_dsn):
    loader = psycopg.connect(db_dsn)
    loader.execute("LOCK TABLE execution_tasks IN SHARE ROW EXCLUSIVE MODE")  # as db/bulk.bulk_transaction
    outcome: list[object] = []

    def maintain() -> None:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            try:
                outcome.append(partitions.ensure_partitions(conn, now=datetime.now(UTC), task_ids_ahead=9 * CHUNK))
            except psycopg.Error as exc:
                outcome.append(exc)

    waiting = """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                 AND wait_event_type = 'Lock' AND query LIKE '%%fsar_ensure_partitions%%'"""
    maintenance = threading.Thread(target=maintain)
    try:
        maintenance.start()
        _until(lambda: q(db_dsn, waiting)[0][0] == 1, "the maintenance to wait at the table")
        # The loader makes its own partitions meanwhile: no deadlock, it goes first.
        made = partitions.ensure_range(
            loader,
            first_id=20 * CHUNK,
            last_id=20 * CHUNK + 10,
            first_day=datetime.now(UTC).date(),
            last_day=datetime.now(UTC).date(),
        )
        loader.commit()
    finally:
        loader.close()
        maintenance.join(60)
    assert made == ["execution_tasks_20000000_21000000"]
    assert len(outcome) == 1
    # After the loader's commit it either went on or gave up after its lock_timeout: never a deadlock.
    assert not isinstance(outcome[0], psycopg.errors.DeadlockDetected), outcome
