"""Pilot tests of screen 4's operator action log against a real database."""

from __future__ import annotations

import pytest

from fsar_tui.screens.audit import AuditScreen, parse_log_filter
from fsar_tui.domain.task_filter import FilterError
from support.pilot import make_app, until
from support.sql import x
from test_action_log import as_superuser_without_trigger, record_actions


def log_keys(app):
    return app.screen.query_one("#log").keys


def status(app) -> str:
    return app.screen.query_one("#log-status").content.plain


async def test_the_action_log_lists_filters_and_shows_the_chain_state(db_dsn):
    record_actions(db_dsn)
    x(db_dsn, "INSERT INTO operator_actions (actor, action, target, reason) "
              "VALUES ('mallory', 'retry', 'task:7', %s)", ("\x1b]52;c;cGF5bG9hZA==\x07[bold]ok[/]",))
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: app.pool is not None)
        await pilot.press("4")
        assert isinstance(app.screen, AuditScreen)
        assert await until(pilot, lambda: log_keys(app) == [7, 6, 5, 4, 3, 2, 1])
        assert "chain intact" in status(app)
        row = app.screen.query_one("#log").get_row(7)
        assert "\x1b" not in row[-1].plain and "[bold]ok[/]" in row[-1].plain  # inert, no escape sequences
        await pilot.press("colon", *"audit action:cancel", "enter")
        assert await until(pilot, lambda: log_keys(app) == [6, 3])
        assert "filter: action:cancel" in status(app)
        await pilot.press("colon", *"audit nonsense", "enter")  # a bad filter keeps the current one
        await pilot.pause(0.2)
        assert log_keys(app) == [6, 3]
        await pilot.press("escape")
        assert await until(pilot, lambda: len(log_keys(app)) == 7)
        # A superuser's edit with the trigger disabled: the next chain check says so.
        as_superuser_without_trigger(db_dsn, "UPDATE operator_actions SET reason = 'x' WHERE seq = 3")
        app.screen.last_verify = 0.0
        app.screen.schedule.mark()
        assert await until(pilot, lambda: "CHAIN BROKEN at seq 3" in status(app))


def test_log_filter_terms():
    assert parse_log_filter("actor:ops action=retry target:task:")["target"] == "task:"
    assert "since" in parse_log_filter("since:2h")
    for bad in ("who:me", "actor:", "since:soon"):
        with pytest.raises(FilterError):
            parse_log_filter(bad)
