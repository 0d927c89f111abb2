"""Helpers shared by the Pilot tests of the screens: the app under test and waiting on it."""

from __future__ import annotations

from fsar_tui.app import FsarApp
from fsar_tui.config import Settings
from fsar_tui.widgets.keyed_table import KeyedTable


def make_app(dsn, **settings) -> FsarApp:
    return FsarApp(settings=Settings(dsn=dsn, live="notify", **settings), dsn=dsn)


async def until(pilot, predicate, tries=200):
    """Poll predicate for up to tries × 50 ms; its last value."""
    for _ in range(tries):
        if predicate():
            return True
        await pilot.pause(0.05)
    return predicate()


def table(app) -> KeyedTable:
    return app.screen.query_one(KeyedTable)


def live_connected(app) -> bool:
    return app.live is not None and app.live.source is not None and app.live.source.state == "connected"
