"""Pilot tests of screen 4's operator action log against a real database."""

from __future__ import annotations

import json

import pytest

from fsar_tui.domain.task_filter import FilterError
from fsar_tui.screens.audit import AuditScreen, parse_log_filter
from support.pilot import make_app, until
from support.sql import x
from test_action_log import as_superuser_without_trigger, record_actions


def log_keys(app):
    return app.screen.query_one("#log").keys


def status(app) -> str:
    return app.screen.query_one("#log-status").content.plain


async def test_the_action_log_lists_filters_and_shows_the_chain_state(db_dsn):
    record_actions(db_dsn)
    x(
        db_dsn,
        "INSERT INTO operator_actions (actor, action, target, reason) VALUES ('mallory', 'retry', 'task:7', %s)",
        ("\x1b]52;c;cGF5bG9hZA==\x07[bold]ok[/]",),
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("4")
        assert isinstance(app.screen, AuditScreen)
        assert await until(pilot, lambda: log_keys(app) == [7, 6, 5, 4, 3, 2, 1])
        assert await until(pilot, lambda: "log verified" in status(app)), status(app)
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
        # A superuser's edit with the trigger disabled, and the database's verify function
        # replaced by one that always says "intact": the screen judges in the client.
        as_superuser_without_trigger(db_dsn, "UPDATE operator_actions SET reason = 'x' WHERE seq = 3")
        x(
            db_dsn,
            "CREATE OR REPLACE FUNCTION fsar_operator_actions_verify() RETURNS bigint "
            "LANGUAGE sql AS 'SELECT NULL::bigint'",
        )
        app.screen.last_verify = 0.0
        app.screen.schedule.mark()
        assert await until(pilot, lambda: "LOG NOT TRUSTWORTHY" in status(app)), status(app)
        assert "seq 3" in status(app) or "fsar_operator_actions_verify" in status(app), status(app)


def test_log_filter_terms():
    assert parse_log_filter("actor:ops action=retry target:task:")["target"] == "task:"
    assert "since" in parse_log_filter("since:2h")
    for bad in ("who:me", "actor:", "since:soon"):
        with pytest.raises(FilterError):
            parse_log_filter(bad)


# -- rollouts, gates and alerts on screen 4 -------------------------------------------------------

from fsar_tui.db import rollouts  # noqa: E402
from fsar_tui.db.connect import connect  # noqa: E402
from fsar_tui.widgets.rollback_dialog import RollbackDialog  # noqa: E402
from support.rollouts import active, revisions  # noqa: E402 (rollout_db: a fixture in conftest.py)
from support.sql import q  # noqa: E402

TARGET = "prompt/implement_idea"


def cell(app, table_id, key, column) -> str:
    return app.screen.query_one(f"#{table_id}").get_row(key)[column + 1].plain  # [0]: the mark column


def notes(app) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


async def open_audit(pilot, app):
    assert await until(pilot, lambda: app.session.ready)
    await pilot.press("4")
    assert await until(pilot, lambda: app.screen.query_one("#targets").keys == [TARGET])
    assert await until(
        pilot, lambda: cell(app, "targets", TARGET, 5).startswith("ready · verified 0 min ago"), tries=400
    ), cell(app, "targets", TARGET, 5)


async def test_keyboard_rollback_previews_confirms_by_name_and_records(rollout_db):
    app = make_app(rollout_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_audit(pilot, app)
        assert "every rollback ready" in app.screen.query_one("#targets-status").content.plain
        await pilot.press("R")
        assert await until(pilot, lambda: isinstance(app.screen, RollbackDialog))
        preview = "\n".join(app.screen.query_one(part).render().plain for part in ("#facts", "#diff-text"))
        assert "revision 2 (active) -> a new revision copying revision 1" in preview
        assert '-  "prompt_version": "v8"' in preview and '+  "prompt_version": "v7"' in preview
        assert "tasks of this type in flight: 0" in preview
        await pilot.press(*"prompt/implement", "enter")  # not the full name: refused, still open
        await pilot.pause(0.1)
        assert isinstance(app.screen, RollbackDialog) and active(rollout_db) == 2
        await pilot.press(*"_idea", "enter", *"v8 breaks PR tests", "enter")
        assert await until(pilot, lambda: active(rollout_db) == 3)
        assert await until(pilot, lambda: "revision 3 (a copy of 1) is active" in notes(app))
    assert revisions(rollout_db)[-1][3] == 1 and revisions(rollout_db)[-1][1] == revisions(rollout_db)[0][1]
    assert q(rollout_db, "SELECT action, target, reason FROM operator_actions") == [
        ("rollback", f"rollout:{TARGET}", "v8 breaks PR tests")
    ]


async def test_keyboard_rollback_loses_a_race_and_says_who_won(rollout_db):
    app = make_app(rollout_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_audit(pilot, app)
        await pilot.press("R")
        assert await until(pilot, lambda: isinstance(app.screen, RollbackDialog))
        with connect(rollout_db, autocommit=True) as conn:  # another operator, first
            rollouts.rollback(conn, TARGET, 1, expected_active=2, actor="alice", reason="faster")
        await pilot.press(*TARGET, "enter", *"me too", "enter")
        assert await until(pilot, lambda: "changed while you decided" in notes(app))
        assert "alice" in notes(app)
    assert active(rollout_db) == 3 and len(revisions(rollout_db)) == 3  # no double rollback
    assert [r[0] for r in q(rollout_db, "SELECT claimed_os_user FROM operator_actions")] == ["alice"]


async def test_blocking_gate_is_shown_and_overridden_with_a_reason(db_dsn):
    x(
        db_dsn,
        "INSERT INTO audit_gates (name, metric, scope, time_window, comparator, threshold, hard) "
        "VALUES ('no-blockers', 'open_blocking_proposals', '{\"task_type\": \"implement_idea\"}', '1h', '<', 0, "
        "true)",
    )  # `< 0` never passes
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("4")
        gates = app.screen.query_one("#gates")
        assert await until(
            pilot,
            lambda: "no-blockers" in gates.keys and cell(app, "gates", "no-blockers", 0) == "FAIL · BLOCKING",
            tries=400,
        )
        assert "1 BLOCKING execution" in app.screen.query_one("#gates-status").content.plain
        gates.focus()
        gates.move_cursor(row=gates.keys.index("no-blockers"))
        await pilot.press("o")
        await pilot.press(*"known false alarm", "enter")
        assert await until(pilot, lambda: q(db_dsn, "SELECT count(*) FROM execution_blocks") == [(0,)])
        assert await until(pilot, lambda: cell(app, "gates", "no-blockers", 0) == "fail · overridden")
    assert q(db_dsn, "SELECT action, target, reason FROM operator_actions ORDER BY seq") == [
        ("gate_blocked", "gate:no-blockers", "audit pass verdict: fail"),  # the pass's verdict (revision 0021)
        ("gate_override", "gate:no-blockers", "known false alarm"),
    ]


async def test_firing_alert_shows_in_the_header_and_is_acknowledged(db_dsn):
    x(
        db_dsn,
        "INSERT INTO drift_alerts (indicator, scope, baseline, current) "
        'VALUES (\'failure_rate\', \'{"task_type": "implement_idea", "ai_model": "gpt-4o"}\', 0.05, 0.4)',
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 40)) as pilot:
        header = lambda: app.screen.query_one("StatusHeader").render().plain  # noqa: E731
        assert await until(pilot, lambda: "ALERTS: 1 firing" in header())
        await pilot.press("4")
        alerts = app.screen.query_one("#alerts")
        assert await until(pilot, lambda: alerts.row_count == 1)
        assert cell(app, "alerts", alerts.keys[0], 1) == "FIRING"
        alerts.focus()
        await pilot.press("a", *"new prompt rolling out", "enter")
        assert await until(
            pilot,
            lambda: q(db_dsn, "SELECT state, ack_reason FROM drift_alerts") == [("acked", "new prompt rolling out")],
        )
        assert await until(pilot, lambda: "alerts: 0 firing, 1 acked" in header())


async def test_read_only_removes_rollback_override_and_ack(rollout_db):
    app = make_app(rollout_db, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("4")
        assert await until(pilot, lambda: app.screen.query_one("#targets").keys == [TARGET])
        assert await until(pilot, lambda: "hash checked (read-only" in cell(app, "targets", TARGET, 5), tries=400)
        await pilot.press("R")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, RollbackDialog) and active(rollout_db) == 2
        bound = {b.binding.id for b in app.screen.active_bindings.values()}
        assert not {"audit.rollback", "audit.override", "audit.ack"} & bound


async def test_a_drift_alert_indicator_is_inert_on_screen(db_dsn):
    # An operator role may INSERT into drift_alerts: an OSC 52 clipboard write or markup in
    # the indicator must reach the terminal as plain, inert text.
    x(
        db_dsn,
        "INSERT INTO drift_alerts (indicator, scope, baseline, current) VALUES (%s, %s, 0.05, 0.4)",
        ("\x1b]52;c;SGVsbG8=\x07[bold]failure_rate[/]", json.dumps({"task_type": "\x1b[2Jimpl"})),
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        alerts = app.screen.query_one("#alerts")
        assert await until(pilot, lambda: alerts.row_count == 1)
        shown = [str(c) for c in alerts.get_row(alerts.keys[0])]
        assert not any("\x1b" in c or "\x07" in c for c in shown), shown
        assert "[bold]failure_rate[/]" in shown[3] and "impl" in shown[4]
