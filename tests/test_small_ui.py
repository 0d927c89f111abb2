"""Issue 16 point 9, the app's small confusions (Pilot, real PostgreSQL): ctrl+c says how
to quit in plain words, the help overlay is titled with the screen's name and lists the
screen's keys before Textual's internals, read-only mode does not advertise R/o/a in
screen 4's panel titles, and worker names are cut from the middle with an ellipsis."""

from __future__ import annotations

import pytest

from fsar_tui.screens.audit import AuditScreen
from fsar_tui.screens.help import HelpScreen
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.widgets.text_panel import TextPanel
from support.pilot import make_app, until
from support.sql import x

pytestmark = pytest.mark.services


async def test_ctrl_c_and_help_speak_plainly(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        await pilot.press("ctrl+c")
        await pilot.pause()
        messages = [str(n.message) for n in app._notifications]
        assert any("press q" in m for m in messages) and not any("[b]" in m for m in messages), messages
        await pilot.press("question_mark")
        assert await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert help_screen.title_text == "Queue"
        ids = [row[2] for row in help_screen.rows]
        assert ids[0].startswith("queue."), ids  # the screen's own keys first
        assert ids.index("-") > max(i for i, v in enumerate(ids) if v.startswith("queue."))  # internals last


async def test_read_only_does_not_advertise_write_keys_in_panel_titles(db_dsn):
    app = make_app(db_dsn, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("4")
        assert await until(pilot, lambda: isinstance(app.screen, AuditScreen))
        await pilot.pause(1.0)
        titles = " | ".join(p.text.plain for p in app.screen.query(TextPanel) if "title" in p.classes)
        for hint in ("R rollback", "o override", "a acknowledge"):
            assert hint not in titles, titles


async def test_worker_names_are_cut_in_the_middle(db_dsn):
    x(db_dsn, "INSERT INTO execution_tasks (task_type) VALUES ('implement_idea')")
    x(
        db_dsn,
        """UPDATE execution_tasks SET status = 'running', attempt = 1, worker_id = 'sim-host-a-1234-worker-17',
                  started_at = now(), lease_expires_at = now() + interval '5 minutes'""",
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        # Drawn for the panel's width (29 columns at 160): both ends kept, cut once.
        workers = app.screen.query_one("#workers", TextPanel)
        assert await until(pilot, lambda: "sim-host-…orker-17" in workers.text.plain), workers.text.plain


async def test_a_roi_window_in_hours_says_it_is_rounded_to_days(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("colon", *"roi 2h", "enter")
        assert await until(
            pilot, lambda: any("2h is shown as 1 day(s) (today)" in str(n.message) for n in app._notifications)
        )


async def test_acting_on_a_filter_of_more_than_ten_thousand_is_refused_not_cut(db_dsn):
    from fsar_tui.widgets.action_dialog import ActionDialog
    from support.sql import q

    x(db_dsn, "INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, 10050)")
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.matching is not None)
        await pilot.press("a", "c")  # arm the whole filter, then cancel
        assert await until(pilot, lambda: any("more than 10,000" in str(n.message) for n in app._notifications))
        assert not isinstance(app.screen, ActionDialog)
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks WHERE status = 'cancelled'") == [(0,)]
