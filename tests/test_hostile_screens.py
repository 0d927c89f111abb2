"""Every screen and dialog of the app over the hostile fixture (support/hostile.py), under
Textual's Pilot against a real PostgreSQL: after each step the whole screen is rendered
to the bytes a terminal would receive, and none of them is a control, ESC sequence
(beyond the colour and cursor sequences Textual draws with), bidi or invisible format
character; markup the agents wrote shows as typed; the app never dies; every key is
handled (the step's wait returns) — with the 10 MB, 3,000-deep and 1 MB-error tasks
among the rows.

The tmux run of the same fixture, recording the raw pane output and tmux's paste
buffers, is tests/test_e2e_tmux_hostile.py.
"""

from __future__ import annotations

import time

import pytest

from fsar_tui.screens.queue import QueueScreen
from support.hostile import populate, unsafe_in
from support.pilot import make_app, table, until

pytestmark = pytest.mark.services

# A key that takes longer than this to be handled is a frozen UI, not a slow machine.
FROZEN_S = 10.0


def terminal_bytes(app) -> str:
    """What the terminal would receive for a full redraw of the current screen."""
    return app.screen._compositor.render_full_update().render_segments(app.console)


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


class Walk:
    def __init__(self, app, pilot) -> None:
        self.app, self.pilot = app, pilot
        self.slowest = (0.0, "")
        self.steps: list[str] = []

    async def key(self, *keys: str, settle: float = 0.3) -> None:
        for key in keys:
            started = time.monotonic()
            await self.pilot.press(key)
            await self.pilot.pause()
            took = time.monotonic() - started
            self.slowest = max(self.slowest, (took, key))
        await self.pilot.pause(settle)
        self.check(" ".join(keys))

    def check(self, step: str) -> None:
        self.steps.append(step)
        assert self.app.is_running, f"the app ended at {step}"
        leaked = unsafe_in(terminal_bytes(self.app), ui=True)
        assert leaked == [], f"{step} on {type(self.app.screen).__name__}: {leaked}"


async def test_every_screen_and_dialog_stays_inert_over_hostile_data(db_dsn):
    ids = populate(db_dsn)
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        walk = Walk(app, pilot)
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) >= 100)
        walk.check("queue")
        assert "[b]x[/]" in screen_text(app)  # the agent's markup, shown as typed
        await walk.key("G")
        await walk.key("g")
        for row, task in enumerate(table(app).keys):
            if task == str(ids.task):
                table(app).move_cursor(row=row)
        await walk.key("enter", settle=1.0)  # the hostile task's detail
        await walk.key("j", "j", "pagedown", "end")
        await walk.key("escape")
        for heavy in (ids.big, ids.deep, ids.long_error):
            await walk.key("slash")
            for ch in f"id:{heavy}":
                await pilot.press(ch)
            await walk.key("enter", settle=1.0)
            await walk.key("g", "enter", settle=1.5)  # opening the 10 MB / deep / 1 MB-error task
            await walk.key("end", "escape")
            await walk.key("escape")
        await walk.key("c")  # the action dialog on the hostile row
        await walk.key("escape")
        await walk.key("question_mark")
        await walk.key("escape")
        await walk.key("2", settle=1.5)  # profiles: hostile types and models
        await walk.key("j", "j", "enter")
        await walk.key("escape")
        await walk.key("3", settle=1.5)  # ROI: hostile ideas
        await walk.key("tab", "j")
        await walk.key("4", settle=1.5)  # audit: hostile gates, alerts, rollouts
        await walk.key("tab", "j", "tab", "j")
        await walk.key("R")  # the rollback dialog
        await walk.key("escape")
        await walk.key("a")  # ack dialog
        await walk.key("escape")
        await walk.key("5", settle=1.5)  # proposals: hostile ids, bodies, risks
        await walk.key("enter", settle=1.0)
        await walk.key("j", "j", "end")
        await walk.key("escape")
        await walk.key("colon")
        for ch in "queue \x1b]52;c;SGk=\x07":
            await pilot.press(ch if ch.isprintable() else "space")
        await walk.key("enter")
        assert app.is_running
    assert walk.slowest[0] < FROZEN_S, walk.slowest


async def test_a_widget_that_forgets_to_sanitise_still_draws_nothing_unsafe(db_dsn):
    """The line filter is the boundary: raw hostile text in a plain Static (as a new column
    or toast written without safe_text would put it) reaches the terminal inert."""
    from rich.text import Text
    from textual.widgets import Static

    from support.hostile import HOSTILE

    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        await app.screen.mount(Static(Text(HOSTILE)))
        app.notify(HOSTILE, markup=False)
        await pilot.pause(0.5)
        drawn = terminal_bytes(app)
        assert "<csi:" in drawn and "<bidi:" in drawn  # the text is drawn…
        assert unsafe_in(drawn, ui=True) == []  # …without what made it hostile
