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
        assert "BLOCKED · 4 Audit · hard gate ii-failures stops idea_implementation: failed" in text, text
        for key in ("2", "3", "4", "5"):
            await pilot.press(key)
            assert await until(pilot, lambda: "hard gate ii-failures stops" in header_text(app)), key
        x(
            db_dsn,
            "INSERT INTO audit_gate_overrides (gate_id, actor, reason) "
            "SELECT id, 'ops', 'known incident' FROM audit_gates WHERE name = 'ii-failures'",
        )
        app.read_alert_counts()
        assert await until(pilot, lambda: "BLOCKED" not in header_text(app)), header_text(app)


# -- the banner keeps what matters when cut (issue 16, review point 4) ----------------------

HOSTILE_GATE = "[@click=app.quit]zz[/]_" + "x" * 100  # 123 characters, markup that must stay literal
HOSTILE_ID = "fsar_[@click=app.quit]" + "y" * 100 + "_TAIL1"  # 128 characters, an id an agent wrote


def hostile_blocks(dsn: str) -> None:
    """Two failing hard gates (a hostile name scoped to implement_idea, strict_si to
    self_improvement) and a blocking FSAR proposal with a 128-character id."""
    assert len(HOSTILE_ID) == 128
    for name, task_type in ((HOSTILE_GATE, "implement_idea"), ("strict_si", "self_improvement")):
        x(
            dsn,
            """WITH g AS (INSERT INTO audit_gates (name, metric, scope, time_window, comparator, threshold, hard)
                          VALUES (%s, 'failure_rate', jsonb_build_object('task_type', %s::text),
                                  interval '1 hour', '<', 0.2, true) RETURNING id)
               INSERT INTO audit_runs (gate_id, value, verdict) SELECT id, 0.5, 'fail' FROM g""",
            (name, task_type),
        )
    x(
        dsn,
        "INSERT INTO fsar_proposals (id, reported_at, severity, block_execution, task_type, body, source_sha256) "
        "VALUES (%s, now(), 9, true, 'idea_implementation', 'x', repeat('a', 64))",
        (HOSTILE_ID,),
    )


def banner_row(app) -> str:
    """The banner as the terminal shows it (its row of the painted screen)."""
    from test_layout_80x24 import painted

    rows = [row for row in painted(app).splitlines() if "BLOCKED" in row]
    return rows[0].strip() if rows else ""


@pytest.mark.parametrize("width", [80, 200])
async def test_the_banner_keeps_count_key_scope_and_reason_past_a_long_name(db_dsn, width):
    hostile_blocks(db_dsn)
    app = make_app(db_dsn)
    async with app.run_test(size=(width, 24)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and "BLOCKED" in banner_row(app))
        row = banner_row(app)
        # The count, the key, what and the scope; the name literal (not markup) and cut in its middle.
        assert row.startswith("BLOCKED ×3 · 4 Audit · hard gate [@click="), row
        assert row.endswith("xxx stops implement_idea: failed" + (" · 5 Proposals" if width == 200 else "")), row
        assert "…" in row and len(row) <= width - 2  # nothing cut at the end
        await pilot.press("4")  # every screen, the same rule
        assert await until(pilot, lambda: banner_row(app) == row), banner_row(app)


async def test_a_long_proposal_id_is_abbreviated_and_its_tail_shows(db_dsn):
    hostile_blocks(db_dsn)
    x(db_dsn, "INSERT INTO audit_gate_overrides (gate_id, actor, reason) SELECT id, 'ops', 'known' FROM audit_gates")
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: "proposal fsar_" in banner_row(app))
        row = banner_row(app)
        assert row.startswith("BLOCKED · 5 Proposals · proposal fsar_["), row  # terser words at 80 columns
        assert row.endswith("…TAIL1 stops idea_implementation: sev 9"), row
        await pilot.resize_terminal(200, 24)
        wide = "BLOCKED · 5 Proposals · FSAR proposal fsar_[@click=app.quit]yyy"
        assert await until(pilot, lambda: banner_row(app).startswith(wide)), banner_row(app)
        assert banner_row(app).endswith("yyy_TAIL1 stops idea_implementation: severity 9")
