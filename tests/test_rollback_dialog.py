"""Issue 16 review point 6 (Pilot, real PostgreSQL): at 80×24 the rollback dialog shows
what is confirmed — the tasks of the type in flight and the gates' last verdicts, a
failing one first — above the diff, which gets the rows left, scrolls, and says how many
of its lines are cut; no row of the dialog is blank. Read from the painted screen."""

from __future__ import annotations

import pytest

from fsar_tui.widgets.rollback_dialog import RollbackDialog
from support.pilot import make_app, until
from support.sql import x
from test_layout_80x24 import open_audit, painted

pytestmark = pytest.mark.services

KEYS = "enter: next / confirm · esc: cancel"


def in_flight_and_a_failing_gate(dsn: str) -> None:
    x(
        dsn,
        "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, worker_id, started_at, lease_expires_at) "
        "SELECT 'implement_idea', 'gpt-4o', 'running', 1, 'w-' || i, now(), now() + interval '1 hour' "
        "FROM generate_series(1, 2) i",
    )
    x(
        dsn,
        # Always fails (fewer than 0 open blocking proposals), however often screen 4 runs it.
        """INSERT INTO audit_gates (name, metric, scope, time_window, comparator, threshold)
           VALUES ('zz-ii-never', 'open_blocking_proposals', '{"task_type": "implement_idea"}',
                   interval '1 hour', '<', 0)""",
    )


def dialog_rows(app) -> list[str]:
    """The dialog's rows as painted, inside its border (top and bottom border rows excluded)."""
    rows = painted(app).splitlines()
    top = next(i for i, row in enumerate(rows) if "▀▀▀" in row)
    bottom = next(i for i, row in enumerate(rows) if "▄▄▄" in row)
    return [row.strip().strip("█").strip() for row in rows[top + 1 : bottom]]


async def open_dialog(pilot, app) -> None:
    await open_audit(pilot, app)
    await pilot.press("R")
    assert await until(pilot, lambda: isinstance(app.screen, RollbackDialog))
    assert await until(pilot, lambda: KEYS in painted(app))
    await pilot.pause(0.3)


async def test_at_80x24_what_is_confirmed_shows_and_the_diff_gets_the_rest(rollout_db):
    in_flight_and_a_failing_gate(rollout_db)
    app = make_app(rollout_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_dialog(pilot, app)
        rows = dialog_rows(app)
        text = "\n".join(rows)
        assert "tasks of this type in flight: 2" in text, text
        assert "last gate verdicts: fail 1: zz-ii-never · " in text, text  # failing first, by name
        assert rows[-1] == KEYS and "" not in rows, text  # no blank row in the dialog
        assert len(rows) == 24 - 2, text  # the whole height, the border around it
        more = [row for row in rows if "more lines of the diff" in row]
        assert len(more) == 1 and more[0].startswith("↓ "), text
        assert '"prompt_version": "v8"' in text and "--- revision 2 (active)" in text  # the diff, from its top
        below = int(more[0].split()[1])
        await pilot.press("pagedown")  # the name field has the focus: pgdn scrolls the diff
        await pilot.pause(0.3)
        after = "\n".join(dialog_rows(app))
        assert "↑ " in after and "--- revision 2 (active)" not in after, after
        assert '+  "prompt_version": "v7"' in after or f"↓ {below}" not in after, after
        for _ in range(5):
            await pilot.press("pagedown")
        await pilot.pause(0.3)
        end = "\n".join(dialog_rows(app))
        assert '"tools": [' in end or '"temperature": 0.2' in end, end  # the diff's end is reachable
        assert "↓ " not in end and "tasks of this type in flight: 2" in end, end


async def test_a_diff_that_fits_is_shown_whole_with_nothing_said_about_cuts(rollout_db):
    in_flight_and_a_failing_gate(rollout_db)
    app = make_app(rollout_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_dialog(pilot, app)
        rows = dialog_rows(app)
        text = "\n".join(rows)
        assert "more lines" not in text and "--- revision 2 (active)" in text and '+  "temperature": 0.2' in text
        assert rows[-1] == KEYS and "" not in rows, text
        await pilot.press(*"prompt/implement", "enter")  # a wrong name: the problem takes a row of its own
        assert await until(pilot, lambda: "type exactly prompt/implement_idea to confirm" in painted(app))
        assert dialog_rows(app)[-2:] == ["type exactly prompt/implement_idea to confirm", KEYS]
