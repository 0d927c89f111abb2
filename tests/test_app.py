"""The app shell (placeholder until the queue-screen issue) against a real database."""

from __future__ import annotations

from fsar_tui.app import FsarApp
from fsar_tui.config import Settings
from fsar_tui.widgets.status_line import StatusLine


async def wait_for(pilot, predicate, tries=100):
    for _ in range(tries):
        if predicate():
            return True
        await pilot.pause(0.05)
    return predicate()


async def test_app_connects_and_says_it_is_a_placeholder(db_dsn):
    dsn = db_dsn + " password=NotShown"
    app = FsarApp(settings=Settings(dsn=dsn), dsn=dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        status = app.screen.query_one(StatusLine)
        assert await wait_for(pilot, lambda: "connected" in status.text), status.text
        assert "PostgreSQL" in status.text and "NotShown" not in status.text and "****" in status.text
        placeholder = str(app.screen.query_one("#placeholder").render())
        assert "PLACEHOLDER" in placeholder
        await pilot.press("q")
    assert app.return_code == 0 or app.return_code is None


async def test_app_shows_connection_failure_without_crashing():
    dsn = "postgresql://u:pw@127.0.0.1:1/db"
    app = FsarApp(settings=Settings(dsn=dsn), dsn=dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        status = app.screen.query_one(StatusLine)
        assert await wait_for(pilot, lambda: "connection refused" in status.text), status.text
        assert "pw@" not in status.text
