"""`:` command mode and the palette (issue 16 point 9; Pilot, real PostgreSQL): unique
prefixes switch screens and an ambiguous one says so without switching, Tab completes
and the word is suggested as it is typed, up / down walk the history newest first, the
history survives a restart (a private XDG_STATE_HOME), is cleaned when read from a
hostile file and stays in memory when it cannot be written, and ctrl+p offers every
screen's actions, running one on its own screen."""

from __future__ import annotations

import pytest
from textual.command import CommandList, CommandPalette

from fsar_tui.screens.command_line import CommandField, CommandLine
from fsar_tui.screens.help import HelpScreen
from fsar_tui.screens.profiles import ProfilesScreen
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.screens.roi import BREAKDOWNS, RoiScreen
from support.pilot import make_app, until

pytestmark = pytest.mark.services


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


def field(app) -> CommandField:
    """The command line in use: the modal's, or the queue's filter bar."""
    return app.screen.query_one(CommandField)


def messages(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


def shown(widget) -> str:
    """The text the widget draws on its first line."""
    return "".join(segment.text for segment in widget.render_line(0))


async def ready(pilot, app) -> None:
    assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.session.ready)


async def test_a_unique_prefix_switches_and_an_ambiguous_one_does_not(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", *"pro", "enter")
        assert await until(pilot, lambda: "ambiguous: profiles, proposals" in messages(app))
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("colon", *"prof", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("colon", *"ro 14d", "enter")  # the modal command line, an argument too
        assert await until(pilot, lambda: isinstance(app.screen, RoiScreen) and app.screen.days == 14)
        await pilot.press("colon", "2", "enter")  # the screen's number
        assert await until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("colon", "h", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_tab_completes_and_the_word_is_suggested(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", *"prof")
        bar = field(app)
        assert await until(pilot, lambda: shown(bar).strip() == ":profiles")  # "iles" suggested after ":prof"
        await pilot.press("tab")
        assert bar.value == ":profiles " and bar.has_focus
        await pilot.press("enter")
        assert await until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("colon", "p", "tab")
        assert field(app).value == "pro"  # as far as profiles and proposals agree
        await pilot.press("tab")
        assert await until(pilot, lambda: "ambiguous: profiles, proposals" in messages(app))
        await pilot.press("p", "o", "tab", "enter")  # "propo": proposals
        assert await until(pilot, lambda: type(app.screen).__name__ == "ProposalsScreen")
        # On the queue's bar, Tab in a filter (no colon) still moves the focus on.
        await pilot.press("1", "slash", *"status:failed", "tab")
        assert await until(pilot, lambda: not field(app).has_focus)


async def test_up_and_down_walk_the_history_newest_first(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", *"roi 7d", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, RoiScreen))
        await pilot.press("colon", *"prof", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("colon", *"x")
        assert await until(pilot, lambda: isinstance(app.screen, CommandLine))
        line = field(app)
        await pilot.press("up")
        assert line.value == "prof"
        await pilot.press("up")
        assert line.value == "roi 7d"
        await pilot.press("up")
        assert line.value == "roi 7d"  # the oldest
        await pilot.press("down")
        assert line.value == "prof"
        await pilot.press("down")
        assert line.value == "x"  # back to what was typed
        await pilot.press("escape", "1", "colon", "up")
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and field(app).value == ":prof")


async def test_the_history_survives_a_restart(db_dsn, state_home):
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", *"roi 7d", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, RoiScreen))
    assert (state_home / "fsar-tui" / "command_history").read_text() == "roi 7d\n"
    again = make_app(db_dsn)
    async with again.run_test(size=(120, 36)) as pilot:
        await ready(pilot, again)
        await pilot.press("colon", "up")
        assert await until(pilot, lambda: field(again).value == ":roi 7d")


async def test_a_hostile_history_file_is_shown_cleaned(db_dsn, state_home):
    path = state_home / "fsar-tui" / "command_history"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x1b]52;c;aGk=\x07queue \x1b[31m[bold red]boom[/]\x1b[2J\xe2\x80\xae\x00 x\r\n")
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", "up")
        bar = field(app)
        assert await until(pilot, lambda: bar.value == ":queue [bold red]boom[/] x")
        assert "[bold red]boom[/]" in shown(bar) and "\x1b" not in shown(bar)  # markup shown as typed


async def test_history_stays_in_memory_when_it_cannot_be_written(db_dsn, tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", *"roi 7d", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, RoiScreen))
        await pilot.press("colon", "up")
        assert await until(pilot, lambda: isinstance(app.screen, CommandLine) and field(app).value == "roi 7d")
        assert not [n for n in app._notifications if n.severity == "error"], messages(app)


async def test_the_palette_offers_every_screens_actions(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("Screen 3: ROI", "Queue: Cancel (c)", "ROI: Breakdown (b)", "Profiles: Compare (c)"):
            assert title in titles, titles
        await pilot.press("ctrl+p")
        assert await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"ROI: Breakdown (b)")
        options = lambda: app.screen.query_one(CommandList)  # noqa: E731
        assert await until(pilot, lambda: options().option_count > 0)
        assert "ROI: Breakdown (b)" in str(options().get_option_at_index(0).prompt)
        await pilot.press("down", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, RoiScreen) and app.screen.by == BREAKDOWNS[1])
