"""The app shell's connection handling: masked DSN, failure shown, never a crash."""

from __future__ import annotations

from fsar_tui.app import FsarApp
from fsar_tui.config import Settings
from fsar_tui.widgets.status_header import StatusHeader


async def wait_for(pilot, predicate, tries=200):
    for _ in range(tries):
        if predicate():
            return True
        await pilot.pause(0.05)
    return predicate()


async def test_header_shows_masked_dsn_server_and_state(db_dsn):
    dsn = db_dsn + " password=NotShown"
    app = FsarApp(settings=Settings(dsn=dsn), dsn=dsn)
    async with app.run_test(size=(200, 24)) as pilot:
        header = app.screen.query_one(StatusHeader)
        assert await wait_for(pilot, lambda: header.state == "connected" and header.server)
        text = str(header.render())
        assert "NotShown" not in text and "****" in text and f"PG {header.server}" in text


async def test_unreachable_database_is_shown_and_retried_without_crashing():
    dsn = "postgresql://u:pw@127.0.0.1:1/db"
    app = FsarApp(settings=Settings(dsn=dsn), dsn=dsn)
    async with app.run_test(size=(200, 24)) as pilot:
        header = app.screen.query_one(StatusHeader)
        assert await wait_for(pilot, lambda: "connection refused" in header.state)
        assert "pw@" not in str(header.render()) and app.is_running


def test_sixteen_colour_terminals_get_the_ansi_theme():
    from fsar_tui.app import theme_for

    assert theme_for("xterm", None) == "ansi-dark" and theme_for("linux", "") == "ansi-dark"
    assert theme_for("xterm-256color", None) is None and theme_for("xterm", "truecolor") is None
    assert theme_for("screen-256color", None) is None and theme_for(None, None) is None
