"""Retention's archives under attack and after accidents (README "Retention": "Nothing lost
by accident", "Archive format"): restore checks an archive against the database's own
retention_log (a self-consistent tampered file, a foreign one, reordered column names
are refused; `--not-in-log` for disaster recovery), loads into whatever partition covers
the range (after a downgrade below 0029 and back), files 0600 in 0700 directories and a
writable root refused, the owner named when a non-owner restores, a full disk and a
kill -9 leave nothing behind but archives that are needed, and a day dropped twice
leaves two restorable archives."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from conftest import RUN_PREFIX, create_database, drop_database, with_dbname
from fsar_tui import clock
from fsar_tui.db import partitions
from fsar_tui.db import retention as retention_db
from fsar_tui.domain.retention import policy_from
from fsar_tui.errors import CheckFailed
from fsar_tui.services import retention
from fsar_tui.services import retention_archive as files
from fsar_tui.services.retention_restore import restore
from fsar_tui.sim.seed import seed_history
from support import retention as history
from support.sql import q, x
from test_retention_cli import one_line_error

EVENTS_7D = policy_from("7d", None)
BOTH_7D = policy_from("7d", "7d")


def seeded(server_dsn: str, template_db: str, what: str, seed: int) -> Iterator[str]:
    """A database of 20 days of history laid out in small ranges (tests/support/retention.py)."""
    name = history.clone_name(f"{RUN_PREFIX}_{what}")
    dsn = create_database(server_dsn, name, template=template_db)
    history.lay_out(dsn)
    seed_history(dsn, days=20, tasks=1500, seed=seed)
    try:
        yield dsn
    finally:
        drop_database(server_dsn, name)


@pytest.fixture
def db(server_dsn, template_db):
    yield from seeded(server_dsn, template_db, "retention_arch", 3)


@pytest.fixture
def other_db(server_dsn, template_db):
    """Another database with a history of its own (another seed): its archives are foreign."""
    yield from seeded(server_dsn, template_db, "retention_other", 11)


def dropped(report: retention.RunReport, table: str) -> list[retention.Outcome]:
    return [o for o in report.outcomes if o.action == "dropped" and o.table == table]


def restored_rows(dsn: str) -> int:
    return int(q(dsn, "SELECT count(*) FROM retention_log WHERE action = 'restored'")[0][0])


def wait_for(condition, what: str) -> None:
    """Poll a condition the test drives to (a safety net, not a timing assertion)."""
    import time

    for _ in range(1200):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


# -- (d) the archive against the database's own retention_log ------------------------------


def forge_first_worker(rows: bytes) -> bytes:
    """The first event's worker_id (COPY text: tab-separated, in the manifest's column order) changed."""
    first, rest = rows.split(b"\n", 1)
    fields = first.split(b"\t")
    fields[5] = b"forged-worker"
    return b"\t".join(fields) + b"\n" + rest


def test_a_self_consistent_tampered_archive_is_refused(run_cli, db, tmp_path):
    report = retention.run(db, EVENTS_7D, archive_root=tmp_path / "a", now=clock.now())
    o = dropped(report, "task_events")[0]
    manifest = Path(o.manifest or "")
    # One row's error text changed, and the manifest recomputed: the file verifies
    # against its manifest, but not against what the log recorded when it was dropped.
    history.rewrite_rows(manifest, forge_first_worker)
    assert files.verify_file(manifest)[2] == []
    done = run_cli("retention", "restore", str(manifest), "--dsn", db)
    line = one_line_error(done)
    assert done.returncode == 1 and str(manifest) in line
    assert "retention_log" in line and "nothing restored" in line
    assert history.range_rows(db, "task_events", o.lower, o.upper) == 0 and restored_rows(db) == 0
    # A row count edited alone (and the checksums recomputed): refused on the count.
    history.rewrite_rows(manifest, lambda rows: rows.split(b"\n", 1)[1])
    with pytest.raises(CheckFailed, match=r"rows .* differ"):
        restore(db, manifest)
    assert restored_rows(db) == 0


def test_reordered_column_names_are_refused(db, tmp_path):
    report = retention.run(db, EVENTS_7D, archive_root=tmp_path, now=clock.now())
    o = dropped(report, "task_events")[0]
    manifest = Path(o.manifest or "")
    original = manifest.read_text()
    history.swap_columns(manifest, "input_tokens", "output_tokens")  # both bigint: the types still fit
    assert files.verify_file(manifest)[2] == []  # the data's checksums do not cover the names
    with pytest.raises(CheckFailed, match="retention_log"):
        restore(db, manifest, dry_run=True)
    with pytest.raises(CheckFailed, match="retention_log"):
        restore(db, manifest)
    assert history.range_rows(db, "task_events", o.lower, o.upper) == 0
    # A drop logged before the log's digest covered the columns (the plain data digest):
    # still accepted as is, and the reordered names still refused (out of the table's order).
    x(
        db,
        "UPDATE retention_log SET sha256 = %s WHERE partition = %s",
        (json.loads(original)["sha256_uncompressed"], o.name),
    )
    with pytest.raises(CheckFailed, match="order"):
        restore(db, manifest)
    manifest.write_text(original)
    assert restore(db, manifest).rows == o.rows
    assert history.range_rows(db, "task_events", o.lower, o.upper) == o.rows


def test_a_foreign_archive_is_refused_unless_not_in_log_says_so(run_cli, db, other_db, tmp_path):
    now = clock.now()
    mine = retention.run(db, BOTH_7D, archive_root=tmp_path / "mine", now=now)
    theirs = retention.run(other_db, BOTH_7D, archive_root=tmp_path / "theirs", now=now)
    # The same partition name dropped in both databases, with other rows: refused.
    same = {o.name for o in dropped(mine, "task_events")} & {o.name for o in dropped(theirs, "task_events")}
    foreign = Path(next(o.manifest for o in dropped(theirs, "task_events") if o.name in same) or "")
    done = run_cli("retention", "restore", str(foreign), "--dsn", db)
    assert done.returncode == 1 and "retention_log" in one_line_error(done)
    # A task range this database never dropped (the other's ids): no entry at all.
    x(db, "DELETE FROM retention_log WHERE table_name = 'execution_tasks'")
    task_archive = Path(dropped(theirs, "execution_tasks")[0].manifest or "")
    none = run_cli("retention", "restore", str(task_archive), "--dsn", db)
    line = one_line_error(none)
    assert none.returncode == 1 and "no 'dropped' entry" in line and "--not-in-log" in line
    assert restored_rows(db) == 0
    # Disaster recovery: said explicitly, the file is still verified against its manifest…
    data = history.archive_of(task_archive)
    good = data.read_bytes()
    data.write_bytes(good[:-9])
    cut = run_cli("retention", "restore", str(task_archive), "--not-in-log", "--dsn", db)
    assert cut.returncode == 1 and "fails verification" in cut.stderr.splitlines()[0]
    data.write_bytes(good)
    # …and then loaded, logged as restored.
    ok = run_cli("retention", "restore", str(task_archive), "--not-in-log", "--dsn", db)
    assert ok.returncode == 0 and ok.stdout.startswith("restored"), ok.stderr
    o = dropped(theirs, "execution_tasks")[0]
    assert history.range_rows(db, "execution_tasks", o.lower, o.upper) == o.rows
    assert restored_rows(db) == 1


# -- (e) restore into whatever partition covers the range ------------------------------------


def test_restore_after_a_downgrade_below_0029_loads_into_the_adopted_partition(db, tmp_path):
    from fsar_tui.db.migrations import downgrade, migrate

    tasks_before = history.rows_md5(db, "execution_tasks")
    events_before = history.rows_md5(db, "task_events")
    report = retention.run(db, BOTH_7D, archive_root=tmp_path, now=clock.now())
    assert dropped(report, "execution_tasks") and dropped(report, "task_events")
    downgrade(db, "0028_cost_integrity")
    migrate(db)  # *_p0 re-adopted: it covers every id and every past day; the log is gone
    with psycopg.connect(db) as conn:
        assert [p.name for p in partitions.list_partitions(conn, "execution_tasks")][0] == "execution_tasks_p0"
    o = dropped(report, "execution_tasks")[0]
    with pytest.raises(CheckFailed, match="no 'dropped' entry"):
        restore(db, Path(o.manifest or ""))
    for done in report.dropped:
        restore(db, Path(done.manifest or ""), not_in_log=True)
    assert history.rows_md5(db, "execution_tasks") == tasks_before
    assert history.rows_md5(db, "task_events") == events_before
    with psycopg.connect(db) as conn:  # no partition was made: p0 covered every range
        assert o.name not in {p.name for p in partitions.list_partitions(conn, "execution_tasks")}
    # Checked by primary key, not by range: the same archive again is refused, nothing written.
    with pytest.raises(CheckFailed, match="already"):
        restore(db, Path(o.manifest or ""), not_in_log=True)
    assert history.rows_md5(db, "execution_tasks") == tasks_before


# -- (f) archives are raw rows: protected like database backups ------------------------------


def test_archives_are_private_whatever_the_umask(db, tmp_path):
    root = tmp_path / "new" / "root"
    old = os.umask(0)
    try:
        report = retention.run(db, EVENTS_7D, archive_root=root, now=clock.now())
    finally:
        os.umask(old)
    assert report.archive
    run_dir = Path(report.archive)
    for d in (root, run_dir):
        assert d.stat().st_mode & 0o777 == 0o700, d
    written = list(run_dir.iterdir())
    assert written and all(p.stat().st_mode & 0o777 == 0o600 for p in written)


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_group_or_world_writable_root_is_refused(run_cli, db, tmp_path, mode):
    root = tmp_path / "shared"
    root.mkdir()
    root.chmod(mode)
    done = run_cli("retention", "run", "--task-events", "7d", "--archive", str(root), "--dsn", db)
    line = one_line_error(done)
    assert done.returncode == 2 and str(root) in line and "writable" in line
    assert list(root.iterdir()) == [] and q(db, "SELECT count(*) FROM retention_log") == [(0,)]


# -- (k) accidents ---------------------------------------------------------------------------


def test_restore_as_a_non_owner_names_the_owner_in_one_line(run_cli, db, server_dsn, tmp_path):
    report = retention.run(db, EVENTS_7D, archive_root=tmp_path / "a", now=clock.now())
    manifest = dropped(report, "task_events")[0].manifest or ""
    role = f"{RUN_PREFIX}_restorer"
    x(server_dsn, f"DROP ROLE IF EXISTS {role}")
    x(server_dsn, f"CREATE ROLE {role} LOGIN IN ROLE fsar_operator")
    try:
        dsn = with_dbname(server_dsn, q(db, "SELECT current_database()")[0][0]) + f" user={role}"
        done = run_cli("retention", "restore", manifest, "--dsn", dsn)
        line = one_line_error(done)
        assert done.returncode == 2, done.stderr
        assert "needs the tables' owner" in line and "fsar-tui migrate" in line
        assert "permission denied" not in line
        dry = run_cli("retention", "restore", manifest, "--dry-run", "--dsn", dsn)
        assert dry.returncode == 0 and dry.stdout.startswith("would restore"), dry.stderr
    finally:
        x(server_dsn, f"DROP ROLE IF EXISTS {role}")
    assert restored_rows(db) == 0


def _small_files(limit: int):
    def apply() -> None:  # a file past `limit` bytes fails with EFBIG, as a full disk fails a write
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_drops_nothing_and_leaves_no_partial_run(db, isolated_env, tmp_path):
    root = tmp_path / "archive"
    root.mkdir(mode=0o700)
    events = history.names_of(db, "task_events")
    env = {**isolated_env, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "fsar_tui", "retention", "run", "--task-events", "7d", "--archive", str(root),
         "--dsn", db],
        capture_output=True, text=True, env=env, cwd=tmp_path, preexec_fn=_small_files(4096), timeout=300,
    )  # fmt: skip
    line = one_line_error(done)
    assert done.returncode == 1 and "internal error" not in line
    assert "archive write failed" in line and str(root) in line and "nothing dropped" in line
    assert list(root.iterdir()) == []  # the run's directory and every file in it removed
    assert history.names_of(db, "task_events") == events and q(db, "SELECT count(*) FROM retention_log") == [(0,)]


def test_a_full_disk_after_some_archives_removes_them_all(db, tmp_path, monkeypatch):
    import errno

    real = files.ArchiveWriter.write
    writers: list[object] = []

    def write(self, data: bytes) -> None:
        if self not in writers:
            writers.append(self)
        if len(writers) >= 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, data)

    monkeypatch.setattr(files.ArchiveWriter, "write", write)
    with pytest.raises(CheckFailed, match=r"archive write failed in .*No space left on device.*nothing dropped") as exc:
        retention.run(db, EVENTS_7D, archive_root=tmp_path, now=clock.now())
    assert str(tmp_path) in exc.value.message
    assert list(tmp_path.iterdir()) == [] and q(db, "SELECT count(*) FROM retention_log") == [(0,)]


# The run, in a process of its own, stopped while it writes its third archive (the first
# two written, the third's temporary file open) and saying so on stdout: killed there.
KILLED_RUN = """
import signal, sys
from pathlib import Path
from fsar_tui.domain import retention_manifest as m
from fsar_tui.domain.retention import policy_from
from fsar_tui.services import retention, retention_archive as files

real, seen = files.ArchiveWriter.write, []

def write(self, data):
    if self not in seen:
        seen.append(self)
    if len(seen) == 3:
        print("writing the third", flush=True)
        signal.pause()
    real(self, data)

files.ArchiveWriter.write = write
retention.run(sys.argv[1], policy_from("7d", None), archive_root=Path(sys.argv[2]))
"""


def others(dsn: str) -> int:
    sessions = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    return int(q(dsn, sessions)[0][0])


def test_after_a_kill_9_the_next_run_removes_temporaries_and_reports_orphans(db, isolated_env, tmp_path):
    root = tmp_path / "archive"
    now = clock.now()
    # A complete run of the oldest days first: its archives are of dropped partitions.
    first = retention.run(db, policy_from("14d", None), archive_root=root, now=now)
    kept_dir = Path(first.archive or "")
    (kept_dir / files.RUN_COMPLETE).unlink()  # as if killed after its drops, before it finished
    kept_files = sorted(kept_dir.iterdir())
    victims = [o.name for o in retention.run(db, EVENTS_7D, archive_root=root, dry_run=True, now=now).dropped]
    assert len(victims) >= 3
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, db, str(root)],
        env=isolated_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "writing the third\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    wait_for(lambda: others(db) == 0, "the killed run's sessions end")
    (killed,) = [d for d in root.iterdir() if d != kept_dir]
    orphans = sorted(p for p in killed.iterdir() if p.name.endswith(".manifest.json"))
    temporaries = [p for p in killed.iterdir() if p.name.endswith(".tmp")]
    assert len(orphans) == 2 and len(temporaries) == 1
    assert history.names_of(db, "task_events") >= set(victims)  # nothing was dropped

    report = retention.run(db, EVENTS_7D, archive_root=root, now=now)
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    notes = "\n".join(report.notes)
    assert f"removed 1 temporary file(s) interrupted runs left in {killed}" in notes
    for orphan in orphans:
        assert str(orphan) in notes and orphan.exists()  # reported, never deleted
    assert f"{kept_dir}{os.sep}" not in notes  # its archives are of dropped partitions: needed, not orphans
    assert sorted(kept_dir.iterdir()) == sorted([*kept_files, kept_dir / files.RUN_COMPLETE])  # and now complete
    assert {o.name for o in dropped(report, "task_events")} == set(victims)
    # Their partitions are dropped now, with the same rows: the orphans are copies of what
    # was dropped, restorable, and no longer reported; their directory is complete.
    again = retention.run(db, EVENTS_7D, archive_root=root, now=now)
    assert again.nothing_to_do and again.notes == [] and (killed / files.RUN_COMPLETE).exists()


def test_a_day_dropped_twice_leaves_two_restorable_archives(db, tmp_path):
    now = clock.now()
    first = retention.run(db, EVENTS_7D, archive_root=tmp_path, now=now)
    day = dropped(first, "task_events")[0]
    assert isinstance(day.lower, datetime)
    rows = day.rows or 0
    # A late event for that day: caught by DEFAULT, then moved into the day's partition,
    # made again by the partition maintenance.
    x(
        db,
        "INSERT INTO task_events (task_id, from_status, to_status, attempt, at) "
        "VALUES (%s, 'running', 'succeeded', 1, %s)",
        (history.OLD_RUNNING, day.lower.replace(hour=12)),
    )
    with psycopg.connect(db, autocommit=True) as conn:
        partitions.ensure_partitions(conn, now=now)
    assert day.name in history.names_of(db, "task_events")
    second = retention.run(db, EVENTS_7D, archive_root=tmp_path, now=now)
    again = next(o for o in dropped(second, "task_events") if o.name == day.name)
    assert again.rows == 1 and again.manifest != day.manifest
    assert Path(day.manifest or "").exists() and Path(again.manifest or "").exists()
    # Both back, in either order: the second into the partition the first made. With only
    # the late event's back, the day's first drop is still out, and the readers of the log
    # say so (pairing restores with their drop's digest, not "the partition's last action").
    restore(db, Path(again.manifest or ""))
    life = {"created_at": day.lower, "finished_at": day.upper}  # a task living that day only
    with psycopg.connect(db) as conn:
        assert retention_db.events_archived_before(conn, life) == day.upper
    restore(db, Path(day.manifest or ""))
    with psycopg.connect(db) as conn:
        assert retention_db.events_archived_before(conn, life) is None
    assert history.range_rows(db, "task_events", day.lower, day.upper) == rows + 1
    with pytest.raises(CheckFailed, match="already"):
        restore(db, Path(day.manifest or ""))
