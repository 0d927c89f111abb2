"""`:` command mode and the palette (issue 16 point 9; Pilot, real PostgreSQL): unique
prefixes switch screens and an ambiguous one says so without switching, Tab completes
and the word is suggested as it is typed, up / down walk the history newest first, the
history survives a restart (a private XDG_STATE_HOME), is cleaned when read from a
hostile file and stays in memory when it cannot be written, and ctrl+p offers every
screen's actions, running one on its own screen.

What the terminal shows, at 80×24 (read from the painted screen, not the widgets): the
`:` line on screens 2–5 is one row with the colon, what is typed and the suggestion,
above a key bar that names ⏎, esc, tab and ↑; while an input has focus the key bar
keeps `q` Quit and `?` Help (dimmed, "after esc"), and they work after esc; Tab in a
burst of keys completes before the keys after it; a junk line of megabytes in the
history file is skipped whole (the file is read backwards in blocks, split at newlines
only), and the real commands around it are still recalled."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual import events
from textual.command import CommandList, CommandPalette

from fsar_tui.screens.command_history_file import load, newest_lines
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


def painted(app) -> list[str]:
    """The screen as the terminal shows it, one string per row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def burst(app, *keys: str) -> None:
    """Keys arriving at once, as over SSH: all queued before the app handles the first."""
    for key in keys:
        character = {"tab": "\t", "space": " "}.get(key, key if len(key) == 1 else None)
        app.post_message(events.Key(key, character))


def bottom(app, rows: int = 1) -> str:
    """The last `rows` rows as painted, joined with newlines."""
    return "\n".join(painted(app)[-rows:])


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


async def test_the_command_line_on_screen_2_shows_what_is_typed_at_80x24(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await pilot.press("2")
        assert await until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("colon", *"prof")
        assert await until(pilot, lambda: isinstance(app.screen, CommandLine) and field(app).value == "prof")
        # The prompt row: the colon, "prof" typed, "iles" suggested; under it the key bar.
        assert await until(pilot, lambda: painted(app)[-2].strip() == ":profiles"), bottom(app, 3)
        keys = painted(app)[-1]
        for hint in ("⏎  Run", "esc  Back", "tab  Complete", "↑  History", "q  Quit", "?  Help"):
            assert hint in keys, keys
        assert field(app).region.height == 1 and field(app).region.bottom == 23  # one row, above the bar
        assert "type × model groups" in painted(app)[1]  # the screen underneath is still shown
        await pilot.press("tab", *"24h")
        assert await until(pilot, lambda: painted(app)[-2].strip() == ":profiles 24h"), bottom(app, 3)
        await pilot.press("enter")
        assert await until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("3", "colon", "up")  # a recall is shown too, on screen 3
        assert await until(pilot, lambda: painted(app)[-2].strip() == ":profiles 24h"), bottom(app, 3)
        await pilot.press("escape", "colon", *"ro", "tab")
        assert await until(pilot, lambda: painted(app)[-2].strip() == ":roi"), bottom(app, 3)


async def test_q_and_help_stay_on_the_key_bar_while_an_input_has_focus(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        assert await until(pilot, lambda: bottom(app).startswith(" q  Quit  ?  Help "))
        await pilot.press("slash")
        assert await until(pilot, lambda: field(app).has_focus)
        assert await until(pilot, lambda: "⏎  Apply" in bottom(app)), bottom(app)
        keys = bottom(app)
        for hint in ("esc  Back", "q  Quit", "?  Help", "after esc"):
            assert hint in keys, keys
        assert "Complete" not in keys  # a filter: tab moves on
        await pilot.press("colon")  # the bar as a command line
        assert await until(pilot, lambda: "⏎  Run" in bottom(app) and "tab  Complete" in bottom(app)), bottom(app)
        assert "q  Quit" in bottom(app) and "?  Help" in bottom(app)
        await pilot.press("q", "question_mark")  # characters here
        assert field(app).value == ":q?" and isinstance(app.screen, QueueScreen)
        await pilot.press("escape")  # and after esc they are keys again
        assert await until(pilot, lambda: bottom(app).startswith(" q  Quit  ?  Help "))
        await pilot.press("question_mark")
        assert await until(pilot, lambda: isinstance(app.screen, HelpScreen))


def write_history_with_junk(path) -> None:
    """Real commands around a 5 MB line of junk holding every line break but newline."""
    junk = ("x" * 399 + "\r").encode() + b"\x0b\x0c\x1c\x1d\x1e" + "\x85\u2028\u2029".encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"audit\nroi 7d\n" + junk * (5_000_000 // len(junk)) + b"\nqueue status:failed\n")


def test_a_junk_line_in_the_history_file_is_skipped_whole(tmp_path):
    path = tmp_path / "command_history"
    write_history_with_junk(path)
    assert load(path) == ["queue status:failed", "roi 7d", "audit"]
    path.write_bytes("queue\x0cstatus:failed\rx\u2028\n".encode() + b"y" * 1001 + b"\nroi\n")
    assert len(load(path)) == 2 and load(path)[0] == "roi"  # one entry a line; 1,001 characters: none


@given(
    st.binary(max_size=200).map(lambda b: b.replace(b"\x00", b"\n")),
    st.integers(1, 250),
    st.integers(0, 30),
    st.integers(1, 40),
)
def test_reading_backwards_in_blocks_gives_the_whole_lines_newest_first(data, limit, longest, block):
    start = max(0, len(data) - limit)
    lines = data[start:].split(b"\n")
    if start and data[start - 1 : start] != b"\n":
        lines = lines[1:]  # cut by the limit
    expected = [line for line in reversed(lines) if len(line) <= longest]
    assert list(newest_lines(io.BytesIO(data), limit, longest, block)) == expected


async def test_the_real_commands_around_a_junk_line_are_recalled(db_dsn, state_home):
    write_history_with_junk(state_home / "fsar-tui" / "command_history")
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await pilot.press("2")
        assert await until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("colon")
        assert await until(pilot, lambda: isinstance(app.screen, CommandLine))
        recalled = []
        for _ in range(5):
            await pilot.press("up")
            recalled.append(field(app).value)
        assert recalled == ["queue status:failed", "roi 7d", "audit", "audit", "audit"]
        assert await until(pilot, lambda: painted(app)[-2].strip() == ":audit")


async def test_tab_in_a_burst_completes_before_the_keys_after_it(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        burst(app, "colon", *"prof", "tab", *"12h")  # the queue's bar
        assert await until(pilot, lambda: field(app).value == ":profiles 12h"), field(app).value
        await pilot.press("escape", "2", "colon")  # the modal line on screen 2
        assert await until(pilot, lambda: isinstance(app.screen, CommandLine))
        burst(app, *"ro", "tab", *"7d")
        assert await until(pilot, lambda: field(app).value == "roi 7d"), field(app).value
