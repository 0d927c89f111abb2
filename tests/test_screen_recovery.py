"""What the review of the screen base found still stuck after the cause went away, or
silent while it lasted (Pilot, real PostgreSQL):
- a failing scheduled audit pass is said on screen 4, and readiness is not called
  "every rollback ready" while it fails;
- a role granted fsar_operator after the app started gets its action keys without a
  restart (and loses them when revoked);
- the queue's next-page loader's problem line goes once the rows read again.
"""

from __future__ import annotations

import asyncio

import pytest
from psycopg.conninfo import conninfo_to_dict

from fsar_tui.screens.audit import AuditScreen
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel
from support.pilot import make_app, table, until
from support.rollouts import insert_rollout
from support.sql import x

pytestmark = pytest.mark.services


def targets_status(app) -> str:
    return app.screen.query_one("#targets-status", TextPanel).text.plain


def problem(app) -> str:
    return app.screen.query_one(StatusHeader).problem


async def test_a_failing_audit_pass_is_said_and_readiness_is_not_claimed(db_dsn):
    insert_rollout(db_dsn)
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        assert await until(pilot, lambda: isinstance(app.screen, AuditScreen) and "checked" in targets_status(app))
        assert "every rollback ready" in targets_status(app)
        # In a thread: DDL waits for in-flight reads, which need this event loop to finish.
        await asyncio.to_thread(x, db_dsn, "ALTER TABLE rollout_revisions RENAME TO rollout_revisions_away")
        try:
            await pilot.press("e")
            assert await until(pilot, lambda: "last pass FAILED" in targets_status(app)), targets_status(app)
            assert "rollout_revisions" in targets_status(app)  # the cause, in words
            assert "every rollback ready" not in targets_status(app)
        finally:
            await asyncio.to_thread(x, db_dsn, "ALTER TABLE rollout_revisions_away RENAME TO rollout_revisions")
        await pilot.press("e")
        assert await until(pilot, lambda: "every rollback ready" in targets_status(app)), targets_status(app)
        assert "FAILED" not in targets_status(app)


async def test_a_grant_after_start_offers_the_actions_without_a_restart(db_dsn, login):
    x(db_dsn, "INSERT INTO execution_tasks (task_type, status) VALUES ('implement_idea', 'queued')")
    role_dsn = login("fsar_viewer")
    role = conninfo_to_dict(role_dsn)["user"]
    app = make_app(role_dsn)
    app.PRIVILEGES_EVERY_S = 0.5
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 1)
        assert app.session.read_only and not app.can("act")
        x(db_dsn, f"GRANT fsar_operator TO {role}")
        assert await until(pilot, lambda: app.can("act") and not app.session.read_only)
        assert app.screen.check_action("act", ("cancel",)) is True
        x(db_dsn, f"REVOKE fsar_operator FROM {role}")
        assert await until(pilot, lambda: not app.can("act") and app.session.read_only)


async def test_the_next_page_problem_goes_when_rows_read_again(db_dsn, login):
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, 700)",
    )
    role_dsn = login("fsar_operator")
    role = conninfo_to_dict(role_dsn)["user"]
    app = make_app(role_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) >= 100)
        x(db_dsn, f"REVOKE fsar_operator FROM {role}")
        app.screen.load_more()
        assert await until(pilot, lambda: "queue-more" in app.screen.problems, tries=300), app.screen.problems
        assert "permission denied" in problem(app)
        x(db_dsn, f"GRANT fsar_operator TO {role}")
        assert await until(pilot, lambda: problem(app) == "" and not app.screen.problems, tries=300), problem(app)


async def test_an_action_whose_connection_dies_mid_write_says_the_outcome_is_unknown(db_dsn):
    """The change was sent and the connection died before the reply: the panel cannot
    know whether the COMMIT happened, and must not say "NOT applied"."""
    import psycopg

    from fsar_tui.widgets.action_dialog import ActionDialog
    from support.sql import q

    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, status) SELECT 'implement_idea', 'queued' FROM generate_series(1, 5)",
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 5)
        with psycopg.connect(db_dsn) as holder:
            holder.execute("SELECT id FROM execution_tasks FOR UPDATE")  # the cancel's UPDATE waits on these
            await pilot.press("c")
            assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
            await pilot.press(*"stuck", "enter")

            def waiting() -> list:
                return q(db_dsn, "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s",
                         (holder.info.backend_pid,))  # fmt: skip

            assert await until(pilot, lambda: bool(waiting()), tries=200)
            for (pid,) in waiting():
                x(db_dsn, "SELECT pg_terminate_backend(%s)", (pid,))
            assert await until(pilot, lambda: any("outcome UNKNOWN" in str(n.message) for n in app._notifications))
        assert not any("NOT applied" in str(n.message) for n in app._notifications)
        assert app.is_running


@pytest.mark.slow
async def test_write_keys_are_off_while_the_database_is_unreachable(own_cluster):

    from fsar_tui.db.migrations import migrate
    from fsar_tui.widgets.action_dialog import ActionDialog

    dsn = own_cluster.dsn()
    migrate(dsn)
    x(dsn, "INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, 5)")
    app = make_app(dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 5)
        assert app.screen.check_action("act", ("cancel",)) is True
        own_cluster.stop()
        app.screen.dirty = True
        assert await until(pilot, lambda: app.session.state == "reconnecting", tries=400)
        assert app.screen.check_action("act", ("cancel",)) is None  # shown disabled, not hidden
        # The header follows the session once a second.
        assert await until(pilot, lambda: "actions off" in str(app.screen.query_one(StatusHeader).render()))
        await pilot.press("c")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ActionDialog)  # no dialog that could only fail
        own_cluster.start()
        assert await until(pilot, lambda: app.session.state == "connected", tries=600)
        assert app.screen.check_action("act", ("cancel",)) is True
