"""Issue 16 point 1 (Pilot, real PostgreSQL): a new or changed filter — typed, a drill-down,
`:queue …`, `esc` — opens at the top of its sort (the newest matches are never hidden
above the viewport), the bar shows exactly the filter in force, and the live feed taking
the operator's row out of the view says so."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from fsar_tui.messages import ApplyFilter
from fsar_tui.screens.queue import QueueScreen
from support.pilot import make_app, table, until
from support.sql import x

pytestmark = pytest.mark.services


@pytest.fixture
def mixed_db(db_dsn):
    # 300 tasks; every third failed, the newest failures last-created (highest ids).
    x(
        db_dsn,
        """INSERT INTO execution_tasks (task_type, status, attempt, started_at, finished_at, error, created_at)
           SELECT 'self_improvement', CASE WHEN g % 3 = 0 THEN 'failed' ELSE 'queued' END,
                  CASE WHEN g % 3 = 0 THEN 1 ELSE 0 END,
                  CASE WHEN g % 3 = 0 THEN now() END, CASE WHEN g % 3 = 0 THEN now() END,
                  CASE WHEN g % 3 = 0 THEN 'boom' END, now() - (300 - g) * interval '1 minute'
           FROM generate_series(1, 300) g""",
    )
    return db_dsn


def bar(app) -> str:
    return app.screen.query_one("#filter", Input).value


async def test_a_new_filter_opens_at_the_top_and_the_bar_says_what_is_in_force(mixed_db):
    app = make_app(mixed_db)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 100)
        table(app).move_cursor(row=60)  # the operator is low on the page
        await pilot.press("slash", *"status:failed", "enter")
        assert await until(pilot, lambda: app.screen.matching == 100 and table(app).keys)
        newest_failed = max(table(app).keys)
        assert table(app).cursor_row == 0 and table(app).current_key == newest_failed
        assert bar(app) == "status:failed"
        table(app).move_cursor(row=40)
        app.screen.post_message(ApplyFilter("status:queued"))  # what a drill-down and `:queue …` send
        assert await until(pilot, lambda: app.screen.matching == 200 and table(app).cursor_row == 0)
        assert bar(app) == "status:queued"  # a drill-down or `:queue …` shows in the bar too
        table(app).move_cursor(row=30)
        await pilot.press("escape")  # esc clears the filter: all tasks, from the top
        assert await until(pilot, lambda: app.screen.matching == 300 and table(app).cursor_row == 0)
        assert bar(app) == ""
        await pilot.press("s")  # a new sort opens at its top too
        await pilot.pause(0.5)
        assert await until(pilot, lambda: table(app).cursor_row == 0)


async def test_the_live_feed_taking_the_operators_row_away_says_so(mixed_db):
    app = make_app(mixed_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("slash", *"status:queued", "enter")
        assert await until(pilot, lambda: app.screen.matching == 200 and table(app).keys)
        table(app).move_cursor(row=5)
        held = table(app).current_key
        x(mixed_db, "UPDATE execution_tasks SET status = 'cancelled', finished_at = now() WHERE id = %s", (held,))
        app.screen.reload_now()
        assert await until(pilot, lambda: held not in table(app).keys)
        assert await until(
            pilot, lambda: any(f"task {held} left this view" in str(n.message) for n in app._notifications)
        )
