"""Issue 16 points 6–8 (Pilot, real PostgreSQL): what the operator is told, and where.

- A row that the live feed takes out of the queue's view is told on the queue screen,
  where the cursor is — not over screens 2–5 while the queue refreshes behind them; an
  operator who comes back is told then.
- A write key pressed while it does nothing (the header says "actions off", or the
  session is read-only) says why in one line: at 80 columns the key bar does not reach
  the dimmed key.
"""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fsar_tui.screens.profiles import ProfilesScreen
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.widgets.action_dialog import ActionDialog
from support.cut_proxy import CutProxy
from support.pilot import make_app, table, until
from support.sql import x

pytestmark = pytest.mark.services


def told(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


@pytest.fixture
def queued_db(db_dsn):
    x(db_dsn, "INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, 10)")
    return db_dsn


async def test_a_row_leaving_the_view_is_told_on_the_queue_screen_only(queued_db):
    app = make_app(queued_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("slash", *"status:queued", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.matching == 10)
        queue = app.screen
        table(app).move_cursor(row=3)
        held = table(app).current_key
        await pilot.press("2")
        assert await until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        # Live traffic takes the operator's row out of the filter while screen 2 is shown.
        x(queued_db, "UPDATE execution_tasks SET status = 'cancelled', finished_at = now() WHERE id = %s", (held,))
        queue.reload_now()
        assert await until(pilot, lambda: held not in queue.query_one("#tasks").keys)
        await pilot.pause(0.3)
        assert not told(app, "left this view")  # not over screen 2
        await pilot.press("1")
        assert await until(pilot, lambda: told(app, f"task {held} left this view while you were away"))


async def test_a_write_key_of_a_read_only_session_says_why_it_does_nothing(queued_db):
    app = make_app(queued_db, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 10)
        await pilot.press("c")
        assert await until(pilot, lambda: told(app, "Cancel: not available: this session is read-only"))
        await pilot.press("j")  # a key that works says nothing
        await pilot.pause(0.2)
        assert sum("not available" in str(n.message) for n in app._notifications) == 1


async def test_a_write_key_while_actions_are_off_says_why_it_does_nothing(queued_db):
    params = conninfo_to_dict(queued_db)
    proxy = CutProxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    try:
        app = make_app(make_conninfo(queued_db, host="127.0.0.1", port=str(proxy.port)))
        async with app.run_test(size=(80, 24)) as pilot:
            assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 10)
            proxy.cut()
            app.screen.reload_now()  # the screen reads, and meets the cut
            assert await until(pilot, lambda: app.screen.check_action("act", ("cancel",)) is None, tries=400)
            await pilot.press("c")
            assert await until(pilot, lambda: told(app, "Cancel: not sent: actions are off"))
            assert not isinstance(app.screen, ActionDialog)
    finally:
        proxy.close()
