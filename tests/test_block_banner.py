"""Issue 16 point 2 (Pilot, real PostgreSQL): one banner rule for everything that stops
execution — a failing hard gate shows on every screen's header like an FSAR block,
naming the gate, its scope and the key that leads to it, and goes when overridden."""

from __future__ import annotations

import pytest

from fsar_tui.screens.queue import QueueScreen
from fsar_tui.widgets.status_header import StatusHeader
from support.pilot import make_app, until
from support.sql import x

pytestmark = pytest.mark.services


def header_text(app) -> str:
    return app.screen.query_one(StatusHeader).render().plain


async def test_a_failing_hard_gate_is_a_banner_on_every_screen(db_dsn):
    x(
        db_dsn,
        """WITH g AS (INSERT INTO audit_gates (name, metric, scope, time_window, comparator, threshold, hard)
                      VALUES ('ii-failures', 'failure_rate', '{"task_type": "idea_implementation"}',
                              interval '1 hour', '<', 0.2, true) RETURNING id)
           INSERT INTO audit_runs (gate_id, value, verdict) SELECT id, 0.5, 'fail' FROM g""",
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and "BLOCKED" in header_text(app))
        text = header_text(app)
        assert "hard gate ii-failures failed — stops idea_implementation tasks · 4 Audit" in text, text
        for key in ("2", "3", "4", "5"):
            await pilot.press(key)
            assert await until(pilot, lambda: "hard gate ii-failures failed" in header_text(app)), key
        x(
            db_dsn,
            "INSERT INTO audit_gate_overrides (gate_id, actor, reason) "
            "SELECT id, 'ops', 'known incident' FROM audit_gates WHERE name = 'ii-failures'",
        )
        app.read_alert_counts()
        assert await until(pilot, lambda: "BLOCKED" not in header_text(app)), header_text(app)
