"""Retention against a real PostgreSQL (issue 18, point 2): archive then drop, every figure
over 30 days the same before, after and after a restore, queued and running tasks
untouched, archives verified (a corrupt one is refused and drops nothing), restore brings
the rows back exactly, a second run is a no-op, and it runs while the fleet writes."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from conftest import RUN_PREFIX, create_database, drop_database, with_dbname
from fsar_tui import clock
from fsar_tui.db import partitions
from fsar_tui.db.roi import COST_DRIFT_SQL
from fsar_tui.db.tasks import task_detail_sync
from fsar_tui.domain.retention import policy_from
from fsar_tui.errors import CheckFailed, UsageError
from fsar_tui.services import retention
from fsar_tui.services.retention_restore import restore
from fsar_tui.sim.seed import seed_history
from support import retention as history
from support.sql import q, x

POLICY = policy_from("7d", "14d")  # both inside the 30-day windows the figures cover


@pytest.fixture(scope="module")
def seeded(server_dsn, template_db):
    """A database with the laid-out history, cloned by each test (seeding once)."""
    name = history.clone_name(f"{RUN_PREFIX}_retention_src")
    dsn = create_database(server_dsn, name, template=template_db)
    history.lay_out(dsn)
    seed_history(dsn, days=history.DAYS, tasks=history.TASKS, seed=7)
    history.add_old_unfinished(dsn, clock.now())
    history.add_retired_idea(dsn, clock.now())
    history.add_gates(dsn)
    history.fold(dsn)
    try:
        yield name
    finally:
        drop_database(server_dsn, name)


@pytest.fixture
def db(server_dsn, seeded):
    name = history.clone_name(f"{RUN_PREFIX}_retention")
    dsn = create_database(server_dsn, name, template=seeded)
    try:
        yield dsn
    finally:
        drop_database(server_dsn, name)


def names(dsn: str, table: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {p.name for p in partitions.list_partitions(conn, table)}


def manifests(root: Path) -> list[Path]:
    return sorted(root.rglob("*.manifest.json"))


def test_archive_drop_restore_keeps_every_figure(db, tmp_path):
    now = clock.now()
    before = history.figures(db, now)
    tasks_before = history.rows_md5(db, "execution_tasks")
    events_before = history.rows_md5(db, "task_events")
    assert q(db, COST_DRIFT_SQL) == []
    assert before["completions"][history.RETIRED_IDEA].finished_at < now - timedelta(days=37)

    report = retention.run(db, POLICY, archive_root=tmp_path, now=now)

    dropped = {o.table: [] for o in report.outcomes}
    for o in report.dropped:
        dropped[o.table].append(o)
    assert len(dropped["task_events"]) >= 30 and len(dropped["execution_tasks"]) >= 4
    assert all(o.action == "dropped" and o.manifest for o in report.dropped)
    # The figures come from the rollups: the same to the last digit, with rows gone from
    # inside the 30-day window.
    assert q(db, "SELECT min(finished_at) < %s FROM execution_tasks WHERE id >= %s", (now - timedelta(days=20),
             history.FIRST_ID)) == [(False,)]  # fmt: skip
    assert q(db, "SELECT count(*) FROM execution_tasks WHERE id = %s", (history.RETIRED_TASK,)) == [(0,)]
    assert history.figures(db, now) == before
    assert q(db, COST_DRIFT_SQL) != []  # a recount of the table now misses the archived rows
    # Queued and running tasks older than the cutoff: untouched, their range kept and why.
    assert q(db, "SELECT id, status FROM execution_tasks WHERE id < %s ORDER BY id", (history.FIRST_ID,)) == [
        (history.OLD_QUEUED, "queued"),
        (history.OLD_RUNNING, "running"),
    ]
    lowest = next(o for o in report.outcomes if o.table == "execution_tasks" and o.lower is None)
    assert lowest.action == "kept" and "2 task(s) queued, running" in lowest.reason
    # Every archive verifies against its manifest; rows and checksums add up.
    archived = manifests(tmp_path)
    assert len(archived) == len(report.dropped)
    for m in archived:
        doc = json.loads(m.read_text())
        assert doc["rows"] > 0 and doc["schema_revision"] and doc["columns"][0] == ["id", "bigint"]
        assert m.with_name(doc["file"]).stat().st_size == doc["bytes_compressed"]
    assert sum(json.loads(m.read_text())["rows"] for m in archived if "execution_tasks" in m.name) == (
        tasks_before[0] - history.rows_md5(db, "execution_tasks")[0]
    )

    # A second run is a no-op: nothing to do, no archive written.
    again = retention.run(db, POLICY, archive_root=tmp_path, now=now)
    assert again.nothing_to_do and again.archive is None
    assert manifests(tmp_path) == archived

    # Restore everything: the same rows, byte for byte, and still the same figures (the
    # triggers did not count the rows a second time).
    for m in archived:
        restore(db, m)
    assert history.rows_md5(db, "execution_tasks") == tasks_before
    assert history.rows_md5(db, "task_events") == events_before
    assert q(db, COST_DRIFT_SQL) == []
    assert history.figures(db, now) == before


def test_restoring_rows_that_exist_is_refused_and_writes_nothing(db, tmp_path):
    now = clock.now()
    report = retention.run(db, POLICY, archive_root=tmp_path, now=now)
    m = Path(next(o.manifest for o in report.dropped if o.table == "execution_tasks"))
    restore(db, m)
    count = history.rows_md5(db, "execution_tasks")
    with pytest.raises(CheckFailed, match="already"):
        restore(db, m)
    assert history.rows_md5(db, "execution_tasks") == count
    assert q(db, "SELECT count(*) FROM retention_log WHERE action = 'restored'") == [(1,)]


def test_a_corrupt_archive_is_refused(db, tmp_path):
    report = retention.run(db, POLICY, archive_root=tmp_path, now=clock.now())
    o = next(o for o in report.dropped if o.table == "execution_tasks")
    m = Path(o.manifest or "")
    archive = m.with_name(json.loads(m.read_text())["file"])
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(CheckFailed, match="fails verification"):
        restore(db, m)
    assert o.name not in names(db, "execution_tasks")
    assert q(db, "SELECT count(*) FROM execution_tasks WHERE id >= %s AND id < %s", (o.lower, o.upper)) == [(0,)]


def test_a_verification_failure_drops_nothing(db, tmp_path):
    tasks_before, events_before = names(db, "execution_tasks"), names(db, "task_events")
    rows_before = history.rows_md5(db, "execution_tasks")

    def corrupt(path: Path) -> None:
        with open(path, "r+b") as fh:
            fh.seek(20)
            byte = fh.read(1)
            fh.seek(20)
            fh.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(CheckFailed, match=r"archive verification failed for .*\.copy\.gz.*nothing dropped"):
        retention.run(db, POLICY, archive_root=tmp_path, now=clock.now(), after_write=corrupt)
    assert names(db, "execution_tasks") == tasks_before and names(db, "task_events") == events_before
    assert history.rows_md5(db, "execution_tasks") == rows_before
    assert q(db, "SELECT count(*) FROM retention_log") == [(0,)]


def test_dry_run_says_what_and_why_and_writes_nothing(db, tmp_path):
    report = retention.run(db, POLICY, archive_root=tmp_path, dry_run=True, now=clock.now())
    assert report.dropped and all(o.action == "would drop" and o.rows for o in report.dropped)
    reasons = {o.reason for o in report.outcomes if o.action == "kept"}
    assert any("queued, running" in r for r in reasons)
    assert any("within 14d" in r for r in reasons) and any("within 7d" in r for r in reasons)
    assert any("DEFAULT" in r for r in reasons) and any("next task id" in r for r in reasons)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    assert q(db, "SELECT count(*) FROM retention_log") == [(0,)]


def test_rows_the_rollups_have_not_counted_are_kept(db, tmp_path):
    # As after an upgrade whose backfill has not run: old finished tasks not counted yet.
    x(db, "UPDATE rollup_state SET backfill_target = %s, backfilled_upto = 0, epoch = now()", (history.TOP,))
    report = retention.run(db, POLICY, archive_root=tmp_path, dry_run=True, now=clock.now())
    kept = [o for o in report.outcomes if o.table == "execution_tasks" and "not counted by the rollups" in o.reason]
    assert kept and not [o for o in report.dropped if o.table == "execution_tasks"]


def test_a_policy_shorter_than_a_gate_reads_is_refused(db, tmp_path):
    x(
        db,
        "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold) "
        "VALUES ('retry-30d', 'retry_rate', '30 days', '<=', 0.5)",
    )
    with pytest.raises(UsageError, match="tasks 14d is shorter than 30d: gate retry-30d"):
        retention.run(db, POLICY, archive_root=tmp_path, now=clock.now())
    assert names(db, "task_events") and q(db, "SELECT count(*) FROM retention_log") == [(0,)]


def test_a_disabled_gate_counts_in_the_floors(db, tmp_path):
    # Enabled later it would read 30 days of tasks: the policy is refused now, not then.
    x(
        db,
        "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold, enabled) "
        "VALUES ('retry-30d-off', 'retry_rate', '30 days', '<=', 0.5, false)",
    )
    with pytest.raises(UsageError, match="tasks 14d is shorter than 30d: gate retry-30d-off"):
        retention.run(db, POLICY, archive_root=tmp_path, now=clock.now())
    assert q(db, "SELECT count(*) FROM retention_log") == [(0,)]


def test_a_gate_reaching_into_archived_history_is_refused_and_never_measured_short(db, tmp_path):
    from fsar_tui.domain.gates import Gate
    from fsar_tui.services.gates import refuse_if_archived, run_gates

    now = clock.now()
    report = retention.run(db, POLICY, archive_root=tmp_path, now=now)
    assert any(o.table == "execution_tasks" for o in report.dropped)
    newest = q(db, "SELECT max(newest_at) FROM retention_log WHERE table_name = 'execution_tasks'")[0][0]
    assert newest is not None and newest < now - timedelta(days=14)  # the drop's own facts, logged
    # `audit gate add` of a 30-day retry gate: refused in one line.
    gate = Gate(0, "retry-30d", "retry_rate", {}, 30 * 86400, "<=", 0.5, False)
    with pytest.raises(UsageError, match=r"^gate retry-30d not enabled: history archived: gate retry-30d reads tasks"):
        refuse_if_archived(db_conn := psycopg.connect(db, autocommit=True), gate, now)
    # One that reads no further back than what is kept, or reads the rollups: allowed.
    refuse_if_archived(db_conn, Gate(0, "retry-7d", "retry_rate", {}, 7 * 86400, "<=", 0.5, False), now)
    refuse_if_archived(db_conn, Gate(0, "fail-30d", "failure_rate", {}, 30 * 86400, "<=", 0.5, False), now)
    # Enabled behind the CLI's back (plain SQL): its verdict is an error saying why, not a
    # rate over the tasks that are left.
    x(
        db,
        "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold) "
        "VALUES ('retry-30d', 'retry_rate', '30 days', '<=', 0.5)",
    )
    (verdict,) = [v for g, v in run_gates(db_conn, "retry-30d", now)]
    assert verdict.verdict == "error" and verdict.details["why"].startswith("history archived: gate retry-30d")
    # and `audit run --strict` (the CI step) does not pass a gate nobody could measure
    from fsar_tui.cli import main as cli_main

    assert cli_main(["--dsn", db, "audit", "run", "--gate", "retry-30d", "--strict"]) == 1
    # Restored, the history is whole again: measured.
    for m in manifests(tmp_path):
        restore(db, m)
    (verdict,) = [v for g, v in run_gates(db_conn, "retry-30d", now)]
    assert verdict.verdict != "error", verdict.details
    db_conn.close()


def test_a_restored_partition_is_not_archived_again_by_the_next_run(db, tmp_path):
    now = clock.now()
    # A range named as legacy adoption names it: restored, its rows go into a partition
    # made for the range under another name — the restore must still count for it.
    with psycopg.connect(db) as conn:
        ranges = [p for p in partitions.list_partitions(conn, "execution_tasks") if isinstance(p.lower, int)]
    oldest = min(ranges, key=lambda p: int(p.lower or 0))
    x(db, f"ALTER TABLE {oldest.name} RENAME TO execution_tasks_p0")
    first = retention.run(db, POLICY, archive_root=tmp_path / "first", now=now)
    day = next(o for o in first.dropped if o.table == "task_events")
    p0 = next(o for o in first.dropped if o.name == "execution_tasks_p0")
    restore(db, Path(day.manifest or ""))
    restore(db, Path(p0.manifest or ""))
    assert "execution_tasks_p0" not in names(db, "execution_tasks")  # back under another name
    again = retention.run(db, POLICY, archive_root=tmp_path / "again", now=now + timedelta(hours=1))
    for o in (o for o in again.outcomes if (o.table, o.lower) in {(day.table, day.lower), (p0.table, p0.lower)}):
        assert o.action == "kept" and o.reason.startswith("restored "), o
    assert {(o.table, o.lower) for o in again.dropped}.isdisjoint({(day.table, day.lower), (p0.table, p0.lower)})
    # Once the restore is older than the policy, it goes again like any other day.
    later = retention.run(db, POLICY, archive_root=tmp_path / "later", now=now + timedelta(days=8))
    assert day.name in {o.name for o in later.dropped}


def test_a_customers_foreign_key_keeps_task_ranges_and_a_failed_drop_leaves_no_archive(db, tmp_path):
    # A customer's table referencing tasks: PostgreSQL would refuse every detach, and a
    # run that archived first and failed after left a full copy behind every hour.
    x(db, "CREATE TABLE task_notes (id serial PRIMARY KEY, task_id bigint REFERENCES execution_tasks (id), note text)")
    # A customer's view on one day's partition: DROP of that day fails after the archive.
    with psycopg.connect(db) as conn:
        days = [p for p in partitions.list_partitions(conn, "task_events") if p.lower is not None]
    pinned = min(days, key=lambda p: p.lower or clock.now())
    x(db, f"CREATE VIEW first_day AS SELECT * FROM {pinned.name}")
    report = retention.run(db, POLICY, archive_root=tmp_path, now=clock.now())
    tasks_out = [o for o in report.outcomes if o.table == "execution_tasks" and o.action != "kept"]
    assert tasks_out == []
    assert any("task_notes references execution_tasks" in o.reason for o in report.outcomes)
    (failed,) = report.failed
    assert failed.name == pinned.name and "could not drop it" in failed.reason and failed.manifest is None
    assert pinned.name in names(db, "task_events")  # whole: its transaction rolled back
    assert report.dropped and all(o.table == "task_events" for o in report.dropped)
    kept_archives = {json.loads(m.read_text())["partition"] for m in manifests(tmp_path)}
    assert kept_archives == {o.name for o in report.dropped}  # none for the day that stayed


def test_task_detail_says_its_early_events_were_archived(db, tmp_path):
    now = clock.now()
    retention.run(db, policy_from("7d", None), archive_root=tmp_path, now=now)
    old = q(
        db,
        "SELECT id FROM execution_tasks WHERE id >= %s AND created_at < %s ORDER BY id LIMIT 1",
        (history.SEED_FIRST, now - timedelta(days=9)),
    )
    recent = q(
        db, "SELECT id FROM execution_tasks WHERE created_at > %s ORDER BY id LIMIT 1", (now - timedelta(days=2),)
    )
    with psycopg.connect(db) as conn:
        detail = task_detail_sync(conn, old[0][0])
        assert detail is not None and detail["events"] == []
        assert detail["events_archived_before"] is not None
        assert detail["events_archived_before"] <= now - timedelta(days=7)
        fresh = task_detail_sync(conn, recent[0][0])
        assert fresh is not None and fresh["events"] and fresh["events_archived_before"] is None


def test_it_runs_while_the_fleet_writes(db, tmp_path):
    stop = threading.Event()
    errors: list[BaseException] = []
    written = [0]

    def fleet() -> None:  # inserts, claims and finishes tasks as an executor would, without pause
        try:
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '30s'")
                while not stop.is_set():
                    (tid,) = conn.execute(
                        "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('implement_idea', 'gpt-4o') "
                        "RETURNING id"
                    ).fetchone() or (0,)
                    conn.execute(
                        "UPDATE execution_tasks SET status = 'running', started_at = now(), worker_id = 'w' "
                        "WHERE id = %s",
                        (tid,),
                    )
                    conn.execute(
                        "UPDATE execution_tasks SET status = 'succeeded', finished_at = now() WHERE id = %s", (tid,)
                    )
                    written[0] += 1
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=fleet)
    writer.start()
    try:
        report = retention.run(db, POLICY, archive_root=tmp_path, now=clock.now())
    finally:
        stop.set()
        writer.join(30)
    assert errors == []
    assert written[0] > 0 and report.dropped and all(o.action == "dropped" for o in report.dropped)


def test_only_the_tables_owner_drops(db, tmp_path, server_dsn):
    role = f"{RUN_PREFIX}_viewer"
    x(server_dsn, f"DROP ROLE IF EXISTS {role}")
    x(server_dsn, f"CREATE ROLE {role} LOGIN IN ROLE fsar_viewer")
    try:
        viewer = with_dbname(server_dsn, q(db, "SELECT current_database()")[0][0]) + f" user={role}"
        plan = retention.run(viewer, POLICY, archive_root=tmp_path, dry_run=True, now=clock.now())
        assert plan.dropped  # any role may look
        with pytest.raises(UsageError, match="not a member of the tables' owner"):
            retention.run(viewer, POLICY, archive_root=tmp_path, now=clock.now())
    finally:
        x(server_dsn, f"DROP ROLE IF EXISTS {role}")


def test_the_scheduled_check_runs_retention_only_when_configured_and_writable(db, tmp_path):
    from fsar_tui.config import RetentionConfig
    from fsar_tui.services.audit_pass import scheduled_check

    cfg = RetentionConfig(task_events="7d", tasks="14d", archive=tmp_path)
    assert scheduled_check(db, read_only=False).retention is None  # no [retention]: off
    assert scheduled_check(db, read_only=True, retention=cfg).retention is None
    assert q(db, "SELECT count(*) FROM retention_log") == [(0,)]
    result = scheduled_check(db, read_only=False, retention=cfg)
    assert result.retention_problem is None and (result.retention or "").startswith("dropped ")
    assert manifests(tmp_path) and q(db, "SELECT count(*) > 0 FROM retention_log WHERE action = 'dropped'") == [(True,)]
