"""Issue 16 point 8 (Pilot, real PostgreSQL): stuck work is visible. Running tasks whose
lease expired (no live worker renewed it) are marked on screen 1 and counted in every
screen's header; the workers panel says how long ago each worker and the fleet last
reported — a fleet that is down is the first thing the operator sees.

A worker's report is what the worker itself did (db/tasks.fleet_health): a claim, the end
of an attempt it wrote, or a live lease it holds. The status trigger names the task's
worker on every event, so an operator's cancel and the lease reaper's requeue carry the
dead worker's id: neither may bring it back to life on the panel."""

from __future__ import annotations

import asyncio
import re

import pytest

from fsar_tui.db import executor
from fsar_tui.db.connect import aconnect
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel
from support.pilot import make_app, until
from support.sql import q, x

pytestmark = pytest.mark.services


def panel(app, name: str) -> str:
    return app.screen.query_one(f"#{name}", TextPanel).text.plain


def header_text(app) -> str:
    return app.screen.query_one(StatusHeader).render().plain


def dead_fleet(dsn: str) -> None:
    """A seeded-looking database with no simulator: 36 tasks "running" for ~50 minutes on
    workers w-0 … w-5, their leases long gone, the last worker event 49 minutes ago."""
    x(
        dsn,
        """INSERT INTO execution_tasks (task_type, status, attempt, max_attempts, worker_id, started_at,
                                        lease_expires_at)
           SELECT 'implement_idea', 'running', 1, 3, 'w-' || g % 6, now() - interval '50 minutes',
                  now() - interval '45 minutes'
           FROM generate_series(1, 36) g""",
    )
    x(dsn, "UPDATE task_events SET at = now() - interval '49 minutes'")


async def test_a_dead_fleet_is_the_first_thing_said(db_dsn):
    dead_fleet(db_dsn)
    x(
        db_dsn,
        """INSERT INTO execution_tasks (task_type, status, attempt, worker_id, started_at, lease_expires_at)
           VALUES ('implement_idea', 'running', 1, 'w-live', now(), now() + interval '5 minutes')""",
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and "LEASE EXPIRED" in panel(app, "running")
        )
        running = panel(app, "running")
        # The panel is 29 columns wide at 160: the alarm has a line of its own, whole.
        lines = running.split("\n")
        assert lines[0] == "running (37)" and lines[1] == "36 LEASE EXPIRED", running
        # The oldest shown first, each marked, as many as the panel holds; the last line
        # says how many more (issue 16 point 6: a cut is never silent).
        rows, more = lines[2:-1], lines[-1]
        assert rows and all(row.startswith("✗") for row in rows), running
        assert more == f"… {37 - len(rows)} more", running
        # The one worker holding a live lease is the one worker listed; the dead are not.
        assert await until(pilot, lambda: re.match(r"workers \(1\) · last( report)? ", panel(app, "workers")))
        assert "w-live" in panel(app, "workers") and "w-0" not in panel(app, "workers"), panel(app, "workers")
        app.read_alert_counts()
        assert await until(pilot, lambda: "36 LEASE EXPIRED — no worker alive?" in header_text(app))
        await pilot.press("2")  # every screen's header says it
        assert await until(pilot, lambda: "36 LEASE EXPIRED" in header_text(app))


async def test_an_operators_cancel_and_the_reaper_are_not_worker_reports(db_dsn, login, run_cli):
    dead_fleet(db_dsn)
    operator = login("fsar_operator")
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.fleet is not None)
        silent = r"workers \(0\) · last( report)? 49m\d\ds ago$"  # 29 columns: "last 49m05s ago"
        assert await until(pilot, lambda: re.match(silent, panel(app, "workers"))), panel(app, "workers")
        # The operator cancels one stuck task; the lease reaper requeues the others.
        ((task_id, worker),) = q(db_dsn, "SELECT id, worker_id FROM execution_tasks ORDER BY id DESC LIMIT 1")
        done = await asyncio.to_thread(run_cli, "tasks", "cancel", str(task_id), "--reason", "stuck", "--dsn", operator)
        assert done.returncode == 0, done.stderr

        async def reap() -> int:
            conn = await aconnect(db_dsn)
            try:
                return len(await executor.reap_expired(conn))
            finally:
                await conn.close()

        assert await reap() == 35
        # Both wrote events that name the dead workers, just now.
        fresh = q(db_dsn, "SELECT to_status, worker_id FROM task_events WHERE at > now() - interval '1 minute'")
        assert ("cancelled", worker) in fresh and sum(1 for s, _ in fresh if s == "queued") == 35, fresh
        app.screen.reload_now()
        assert await until(pilot, lambda: app.screen.fleet is not None and app.screen.fleet.running == 0)
        await pilot.pause(0.2)
        workers = panel(app, "workers")
        # Still no worker, and the fleet's last report is still the one 49 minutes ago.
        assert re.match(silent, workers), workers
        assert "w-" not in workers, workers


async def test_each_worker_says_when_it_last_reported(db_dsn):
    x(
        db_dsn,
        """INSERT INTO execution_tasks (task_type, status, attempt, worker_id, started_at, finished_at,
                                        lease_expires_at)
           VALUES ('implement_idea', 'running', 1, 'w-live', now(), NULL, now() + interval '5 minutes'),
                  ('implement_idea', 'running', 1, 'w-done', now(), NULL, now() + interval '5 minutes'),
                  ('implement_idea', 'running', 1, 'w-gone', now(), NULL, now() - interval '1 minute')""",
    )
    # w-done finished its task (a report it wrote); w-gone's claim is older than the window.
    x(
        db_dsn,
        """UPDATE execution_tasks SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL
           WHERE worker_id = 'w-done'""",
    )
    x(db_dsn, "UPDATE task_events SET at = now() - interval '10 minutes' WHERE worker_id = 'w-live'")
    x(db_dsn, "UPDATE task_events SET at = now() - interval '2 minutes' WHERE worker_id = 'w-done'")
    x(db_dsn, "UPDATE task_events SET at = now() - interval '20 minutes' WHERE worker_id = 'w-gone'")
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and "w-done" in panel(app, "workers"))
        workers = panel(app, "workers").split("\n")
        # The title: how many report, and the fleet's newest report (w-live's lease, in force now).
        assert re.fullmatch(r"workers \(2\) · last( report)? \d+\.\ds ago", workers[0]), workers
        # Each worker: tasks running on it (lease not run out), how long since it reported, its name.
        assert re.fullmatch(r"·0▶ +2m0\ds w-done", workers[1]), workers
        assert re.fullmatch(r"·1▶ +\d+\.\ds w-live", workers[2]), workers
        assert len(workers) == 3, workers  # w-gone: lease expired, no report in the window


async def test_the_newest_report_is_looked_for_among_the_newest_events_only(db_dsn):
    # A dead fleet whose last report is older than REPORT_SEARCH events (tasks still being
    # enqueued): each refresh reads at most that many events and says how far back it looked.
    from datetime import timedelta

    from fsar_tui.db.tasks import REPORT_SEARCH, fleet_health
    from fsar_tui.screens.queue_rows import workers_rows

    dead_fleet(db_dsn)
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, %s)",
        (REPORT_SEARCH,),
    )

    async def health():
        conn = await aconnect(db_dsn)
        try:
            return await fleet_health(conn)
        finally:
            await conn.close()

    dark = await health()
    enqueued = "SELECT min(at) FROM task_events WHERE from_status IS NULL AND to_status = 'queued'"
    ((oldest_looked_at,),) = q(db_dsn, enqueued)  # the newest REPORT_SEARCH events are these
    assert dark.last_report is None and dark.searched_since == oldest_looked_at, dark
    assert (dark.running, dark.lease_expired, dark.live_leases) == (36, 36, 0)
    heads, rows = workers_rows([], {}, dark, oldest_looked_at + timedelta(minutes=2), 40)
    assert [h.plain for h in heads] == ["workers (0) · no report for over 2m00s"] and rows == []
    # One claim, and the fleet's newest report is found at once.
    x(
        db_dsn,
        """UPDATE execution_tasks SET status = 'running', attempt = 1, worker_id = 'w-back', started_at = now(),
                  lease_expires_at = now() - interval '1 second'
           WHERE id = (SELECT max(id) FROM execution_tasks)""",
    )
    ((claimed,),) = q(db_dsn, "SELECT max(at) FROM task_events WHERE worker_id = 'w-back'")
    assert (await health()).last_report == claimed
