"""Issue 16 point 6: snapshots at 80×24 of screen 4 (audit & rollback), the rollback
dialog and the task detail, from frozen data and clock (screens 1, 2, 3 and 5 have theirs
in test_snapshots.py and their screens' tests). Regenerate with FSAR_UPDATE_SNAPSHOTS=1
and read them (tests/support/snapshot.py)."""

from __future__ import annotations

import pytest

from fsar_tui import clock
from fsar_tui.screens.audit import AuditScreen
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.screens.task_detail import TaskDetailScreen
from fsar_tui.widgets.rollback_dialog import RollbackDialog
from support.pilot import make_app, table, until
from support.snapshot import check_snapshot, settled_svg
from support.sql import x
from test_snapshots import FROZEN

pytestmark = pytest.mark.services


def dress(app) -> None:
    app.dsn_label = "postgresql://fsar:****@db.example:5432/prod"
    app.server_version = "16.4"
    app.update_headers()


@pytest.fixture
def frozen_rollout_db(rollout_db, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    # Builtin gates would record verdicts at the real time: off for a stable picture.
    x(rollout_db, "UPDATE audit_gates SET enabled = false")
    return rollout_db


async def test_audit_screen_and_rollback_dialog_at_80x24(frozen_rollout_db):
    app = make_app(frozen_rollout_db)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("4")
        assert await until(
            pilot, lambda: isinstance(app.screen, AuditScreen) and app.audit_check is not None, tries=400
        )
        await pilot.pause(0.5)
        dress(app)
        check_snapshot(await settled_svg(app, pilot), "audit_80x24.svg")
        await pilot.press("R")
        assert await until(pilot, lambda: isinstance(app.screen, RollbackDialog))
        await pilot.pause(0.5)
        check_snapshot(await settled_svg(app, pilot), "rollback_dialog_80x24.svg")


async def test_task_detail_at_80x24(db_dsn, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    x(
        db_dsn,
        """INSERT INTO execution_tasks (task_type, ai_model, status, attempt, worker_id, created_at, queued_at,
                                        started_at, finished_at, error, payload)
           VALUES ('implement_idea', 'gpt-4o', 'failed', 1, 'sim-ops-1-2', timestamptz '2026-01-02 12:00:00+00',
                   timestamptz '2026-01-02 12:00:00+00', timestamptz '2026-01-02 12:00:05+00',
                   timestamptz '2026-01-02 12:01:05+00', 'TimeoutError: model call exceeded 120s',
                   '{"idea": "landing copy", "steps": ["draft", "review"]}')""",
    )
    x(db_dsn, "UPDATE task_events SET at = timestamptz '2026-01-02 12:00:00+00' + id * interval '1 second'")
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 1)
        await pilot.press("enter")
        assert await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen))
        await pilot.pause(1.0)
        dress(app)
        check_snapshot(await settled_svg(app, pilot), "task_detail_80x24.svg")
