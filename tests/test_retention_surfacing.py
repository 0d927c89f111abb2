"""Retention made visible (README "Retention"): screen 4's line saying what the scheduled
pass did with retention, or why it could not run, or that it is off; the schedule's turns
between panels (a run refused because another holds the lock is tried again at the next
pass, a run or a lasting failure waits `every`, and a drop by anyone this interval counts
as the interval's run); `tasks show` of a task whose range retention archived."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from conftest import RUN_PREFIX, with_dbname
from fsar_tui.config import RetentionConfig
from fsar_tui.domain.retention import policy_from
from fsar_tui.domain.sanitize import one_line, safe_str
from fsar_tui.screens.audit_rows import retention_line
from fsar_tui.services import retention
from fsar_tui.services.audit_pass import (
    BUSY,
    ELSEWHERE,
    FAILED,
    OFF,
    RAN,
    READ_ONLY,
    RetentionSchedule,
    RetentionStatus,
    summarise,
)
from fsar_tui.services.retention import Outcome, RunReport
from support.pilot import make_app, until
from support.sql import q, x
from test_layout_80x24 import open_audit, painted
from test_retention_cli import db, one_line_error  # noqa: F401 (db: the seeded history, a fixture)

AT = datetime(2026, 1, 2, 7, 41, tzinfo=UTC)
NEXT = datetime(2026, 1, 2, 8, 41, tzinfo=UTC)
EVERY = 3600


def config(archive: Path) -> RetentionConfig:
    return RetentionConfig(task_events="7d", tasks="7d", archive=archive, every_s=EVERY)


class Clock:
    """A panel's monotonic clock, stepped by the test."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def drops(dsn: str) -> int:
    return q(dsn, "SELECT count(*) FROM retention_log WHERE action = 'dropped'")[0][0]


# -- the line, without a database ---------------------------------------------------------------


def line(status, configured=True, read_only=False) -> str:
    return retention_line(status, configured=configured, read_only=read_only).plain


def test_the_line_says_each_state():
    ran = RetentionStatus(RAN, AT, "dropped 3 partition(s), 412,000 rows, archived in /a/b", next_at=NEXT)
    assert line(ran) == (
        "retention · last run 07:41 · next ≤ 08:41 · dropped 3 partition(s), 412,000 rows, archived in /a/b"
    )
    assert line(RetentionStatus(RAN, AT, "nothing to do", next_at=NEXT)).endswith("next ≤ 08:41 · nothing to do")
    failed = RetentionStatus(FAILED, AT, problem="not a member of the tables' owner", next_at=NEXT)
    assert line(failed) == "retention · could not run at 07:41 · next ≤ 08:41 · not a member of the tables' owner"
    assert "retrying at the next check" in line(RetentionStatus(BUSY, AT, problem="another retention run …"))
    elsewhere = RetentionStatus(ELSEWHERE, AT, "dropped 2 partition(s), 10 rows", next_at=NEXT)
    assert (
        line(elsewhere)
        == "retention · ran elsewhere (last drop 07:41) · next ≤ 08:41 · dropped 2 partition(s), 10 rows"
    )
    assert (
        line(RetentionStatus(OFF))
        == line(None, configured=False)
        == ("retention · off ([retention] not set in config.toml)")
    )
    assert "read-only" in line(RetentionStatus(READ_ONLY)) and "read-only" in line(None, read_only=True)
    assert line(None) == "retention · waiting for the first check…"


@given(st.text(max_size=300), st.sampled_from([RAN, FAILED, BUSY, ELSEWHERE]))
def test_the_line_is_one_inert_line_whatever_the_text(text, state):
    shown = retention_line(
        RetentionStatus(state, AT, did=text, problem=text, next_at=NEXT), configured=True, read_only=False
    )
    assert "\n" not in shown.plain and "\x1b" not in shown.plain and "\x07" not in shown.plain
    assert shown.no_wrap
    if state != BUSY:  # the text as typed (inert, redacted, one line): never read as markup
        assert one_line(safe_str(text)) in shown.plain


def test_the_line_does_not_interpret_markup():
    shown = retention_line(RetentionStatus(FAILED, AT, problem="[bold]x[/] [@click=app.quit]q[/]"), configured=True,
                           read_only=False)  # fmt: skip
    assert "[bold]x[/] [@click=app.quit]q[/]" in shown.plain


def outcome(name: str, action: str, reason: str = "old", rows: int | None = 10) -> Outcome:
    return Outcome("task_events", name, None, None, action, reason, rows)


def test_the_run_report_in_one_line():
    report = RunReport(False, {}, AT, archive="/var/arch/20260102T074100Z")
    assert summarise(report) == "nothing to do"
    report.outcomes = [outcome("p0", "kept", "within the policy"), outcome("p1", "dropped"), outcome("p2", "dropped")]
    assert summarise(report) == "dropped 2 partition(s), 20 rows, archived in /var/arch/20260102T074100Z"
    busy = "the table stayed busy (3 tries of 2000 ms for its lock): kept, next run"
    report.outcomes.append(outcome("p3", "kept", busy))
    assert summarise(report).endswith(f"; kept 1 for the next run: p3: {busy}")
    # Planned keeps are not failures, whatever their reason says.
    only = RunReport(False, {}, AT, outcomes=[outcome("p4", "kept", "duration samples … (next run)")])
    assert summarise(only) == "nothing to do"


# -- the schedule between panels, against one database --------------------------------------------


def test_two_panels_take_one_turn_per_interval(db, tmp_path):  # noqa: F811
    cfg = config(tmp_path)
    clock_a, clock_b = Clock(), Clock()
    a, b = RetentionSchedule(clock_a), RetentionSchedule(clock_b)
    seen: list[tuple[str | None, str | None]] = []

    def b_tries_meanwhile(_archive: Path) -> None:  # A holds the run's lock here
        if not seen:
            seen.append(b.apply(db, cfg, None))

    a.after_write = b_tries_meanwhile
    done, problem = a.apply(db, cfg, None)
    assert problem is None and done is not None and done.startswith("dropped "), (done, problem)
    assert a.status is not None and a.status.state == RAN and a.status.next_at is not None
    # B met A's run: it says so and looks again at its next pass, not in an hour.
    assert seen[0][0] is None and (seen[0][1] or "").startswith("another retention run or restore is in progress")
    assert b.status is not None and b.status.state == BUSY
    assert b.due_s is not None and b.due_s <= clock_b.t
    dropped, runs = drops(db), list(tmp_path.iterdir())
    assert dropped > 0 and len(runs) == 1

    clock_a.t += 60
    clock_b.t += 60
    assert a.apply(db, cfg, None) == (None, None)  # A's interval is not over
    # B's retry finds A's drops of this interval: it does not run a second time.
    assert b.apply(db, cfg, None) == (None, None)
    assert b.status is not None and b.status.state == ELSEWHERE, b.status
    assert (
        b.status.did == f"dropped {dropped} partition(s), {q(db, 'SELECT sum(rows) FROM retention_log')[0][0]:,} rows"
    )
    assert b.status.next_at is not None and b.status.at is not None and b.status.next_at > b.status.at
    assert b.due_s is not None and b.due_s > clock_b.t + 60  # not at the next pass: about an hour on
    assert drops(db) == dropped and list(tmp_path.iterdir()) == runs
    clock_b.t += 60
    assert b.apply(db, cfg, None) == (None, None) and b.status.state == ELSEWHERE


def test_a_panel_refused_by_another_holder_runs_at_its_next_pass(db, tmp_path):  # noqa: F811
    cfg = config(tmp_path)
    clock = Clock()
    panel = RetentionSchedule(clock)
    with retention.run_lock(db, None):  # a restore (or cron's run) holding the database's lock
        assert panel.apply(db, cfg, None)[1] is not None
    assert panel.status is not None and panel.status.state == BUSY and drops(db) == 0
    clock.t += 60  # the next pass: the other dropped nothing, so this one runs
    done, problem = panel.apply(db, cfg, None)
    assert problem is None and (done or "").startswith("dropped ") and drops(db) > 0
    assert panel.status.state == RAN
    clock.t += 60
    assert panel.apply(db, cfg, None) == (None, None)


def test_a_lasting_failure_waits_the_interval(db, tmp_path, server_dsn):  # noqa: F811
    role = f"{RUN_PREFIX}_surfacing_viewer"
    x(server_dsn, f"DROP ROLE IF EXISTS {role}")
    x(server_dsn, f"CREATE ROLE {role} LOGIN IN ROLE fsar_viewer")
    try:
        viewer = with_dbname(server_dsn, q(db, "SELECT current_database()")[0][0]) + f" user={role}"
        cfg, clock = config(tmp_path), Clock()
        panel = RetentionSchedule(clock)
        done, problem = panel.apply(viewer, cfg, None)
        assert done is None and "not a member of the tables' owner" in (problem or "")
        assert panel.status is not None and panel.status.state == FAILED and panel.status.next_at is not None
        clock.t += 60
        assert panel.apply(viewer, cfg, None) == (None, None)  # not every minute: it would only say it again
        clock.t += EVERY
        assert "not a member" in (panel.apply(viewer, cfg, None)[1] or "")
        assert drops(db) == 0
    finally:
        x(server_dsn, f"DROP ROLE IF EXISTS {role}")


# -- screen 4 ---------------------------------------------------------------------------------------


def retention_status_line(app) -> str:
    return app.screen.query_one("#retention-status").content.plain


async def test_screen_4_says_what_the_scheduled_retention_did(db, tmp_path):  # noqa: F811
    app = make_app(db, retention=config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_audit(pilot, app)
        assert await until(pilot, lambda: "last run" in retention_status_line(app), tries=400)
        shown = retention_status_line(app)
        assert shown.startswith("retention · last run ") and " · next ≤ " in shown and "dropped " in shown, shown
        assert "retention · last run" in painted(app)  # on screen at 80×24, with the tables
        assert "operator log" in painted(app) and "rollouts" in painted(app)
    assert drops(db) > 0


async def test_screen_4_says_why_retention_could_not_run_and_when_it_is_off(db, tmp_path):  # noqa: F811
    (tmp_path / "not-a-dir").write_text("a file where the archive directory should be")
    app = make_app(db, retention=RetentionConfig(task_events="7d", archive=tmp_path / "not-a-dir" / "x"))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_audit(pilot, app)
        assert await until(pilot, lambda: "could not run" in retention_status_line(app), tries=400)
        assert "cannot create an archive directory" in retention_status_line(app), retention_status_line(app)
    assert drops(db) == 0
    off = make_app(db)
    async with off.run_test(size=(80, 24)) as pilot:
        await open_audit(pilot, off)
        assert retention_status_line(off) == "retention · off ([retention] not set in config.toml)"


# -- tasks show of an archived task ---------------------------------------------------------------


def test_tasks_show_of_an_archived_task_says_where_it_went(run_cli, db, tmp_path):  # noqa: F811
    archive = tmp_path / "archive"
    done = run_cli("retention", "run", "--tasks", "7d", "--archive", str(archive), "--dsn", db)
    assert done.returncode == 0, done.stderr
    partition, lower, upper, manifest = q(
        db,
        "SELECT partition, lower_bound, upper_bound, manifest FROM retention_log "
        "WHERE table_name = 'execution_tasks' AND action = 'dropped' AND lower_bound IS NOT NULL ORDER BY id LIMIT 1",
    )[0]
    task_id = int(lower) + (int(upper) - int(lower)) // 2
    assert q(db, "SELECT count(*) FROM execution_tasks WHERE id = %s", (task_id,)) == [(0,)]

    for fmt in ("text", "json"):
        shown = run_cli("tasks", "show", str(task_id), "--format", fmt, "--dsn", db)
        assert shown.returncode == 1 and shown.stdout == ""
        said = one_line_error(shown)
        assert f"task {task_id} was archived by retention on " in said, said
        assert f"partition {partition}" in said and f"archive manifest {manifest}" in said
        assert said.endswith(f"bring it back with `fsar-tui retention restore {manifest}`")
        assert Path(manifest).exists()

    missing = run_cli("tasks", "show", "999999999", "--dsn", db)  # never existed: as before
    assert missing.returncode == 1 and one_line_error(missing) == "fsar-tui: task 999999999 does not exist"

    # The way back it names works, and the task is there again.
    assert run_cli("retention", "restore", manifest, "--dsn", db).returncode == 0
    back = run_cli("tasks", "show", str(task_id), "--format", "json", "--dsn", db)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["id"] == task_id


def test_a_task_dropped_without_an_archive_says_it_is_gone(run_cli, db):  # noqa: F811
    policy = policy_from(None, "7d")
    report = retention.run(db, policy, archive_root=None, no_archive=True)
    gone = next(o for o in report.outcomes if o.action == "dropped" and o.table == "execution_tasks")
    shown = run_cli("tasks", "show", str(gone.lower), "--dsn", db)
    assert shown.returncode == 1
    said = one_line_error(shown)
    assert "archived by retention" in said and "without an archive: its row is gone for good" in said, said
    assert "retention restore" not in said


def test_only_a_range_dropped_and_not_restored_holds_an_archived_task(db, tmp_path):  # noqa: F811
    from fsar_tui.db.connect import connect
    from fsar_tui.db.retention_lookup import archived_task
    from fsar_tui.services.retention_restore import restore

    report = retention.run(db, policy_from(None, "7d"), archive_root=tmp_path)
    gone = next(o for o in report.outcomes if o.action == "dropped" and o.table == "execution_tasks")
    assert isinstance(gone.lower, int) and isinstance(gone.upper, int)
    with connect(db) as conn:
        found = archived_task(conn, gone.lower)
        assert found is not None and found.partition == gone.name and found.manifest == gone.manifest
        for outside in (gone.upper, gone.lower - 1):  # the bounds: lower inclusive, upper exclusive
            other = archived_task(conn, outside)
            assert other is None or other.partition != gone.name
    restore(db, Path(str(gone.manifest)))
    with connect(db) as conn:
        assert archived_task(conn, gone.lower) is None
