"""Issue 16 point 8 (Pilot, real PostgreSQL): stuck work is visible. Running tasks whose
lease expired (no live worker renewed it) are marked on screen 1 and counted in every
screen's header; the workers panel says how long ago a worker last reported — a fleet
that is down is the first thing the operator sees."""

from __future__ import annotations

import pytest

from fsar_tui.screens.queue import QueueScreen
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel
from support.pilot import make_app, until
from support.sql import x

pytestmark = pytest.mark.services


def panel(app, name: str) -> str:
    return app.screen.query_one(f"#{name}", TextPanel).text.plain


def header_text(app) -> str:
    return app.screen.query_one(StatusHeader).render().plain


async def test_a_dead_fleet_is_the_first_thing_said(db_dsn):
    # A seeded-looking database with no simulator: 36 tasks "running" for ~50 minutes,
    # their leases long gone, the last worker event 49 minutes ago.
    x(
        db_dsn,
        """INSERT INTO execution_tasks (task_type, status, attempt, worker_id, started_at, lease_expires_at)
           SELECT 'implement_idea', 'running', 1, 'w-' || g % 6, now() - interval '50 minutes',
                  now() - interval '45 minutes'
           FROM generate_series(1, 36) g""",
    )
    x(db_dsn, "UPDATE task_events SET at = now() - interval '49 minutes'")
    x(
        db_dsn,
        """INSERT INTO execution_tasks (task_type, status, attempt, worker_id, started_at, lease_expires_at)
           VALUES ('implement_idea', 'running', 1, 'w-live', now(), now() + interval '5 minutes')""",
    )
    x(db_dsn, "UPDATE task_events SET at = now() - interval '49 minutes'")
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and "LEASE EXPIRED" in panel(app, "running")
        )
        running = panel(app, "running")
        assert "running (37) · 36 LEASE EXPIRED — no worker alive?" in running, running
        # The oldest shown first, each marked, as many as the panel holds; the last line
        # says how many more (issue 16 point 6: a cut is never silent).
        lines = running.split("\n")
        rows, more = lines[1:-1], lines[-1]
        assert rows and all(row.startswith("✗") for row in rows), running
        assert more == f"… {37 - len(rows)} more", running
        assert "workers (0) · last report 49m" in panel(app, "workers"), panel(app, "workers")
        app.read_alert_counts()
        assert await until(pilot, lambda: "36 LEASE EXPIRED — no worker alive?" in header_text(app))
        await pilot.press("2")  # every screen's header says it
        assert await until(pilot, lambda: "36 LEASE EXPIRED" in header_text(app))
