"""The app never dies on an unexpected database error, and recovers by itself.

While the app runs against a real PostgreSQL: the role's privileges are revoked, a table
the queue screen reads is renamed, a statement times out, the server kills the app's
connections. Each gives a one-line message in words on the affected screen (the
header's problem bar), no traceback, no exit; once the cause is gone the screen reads
again and the message goes away — without a restart.
"""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from fsar_tui.screens.queue import QueueScreen
from fsar_tui.widgets.status_header import StatusHeader
from support.pilot import make_app, table, until
from support.sql import x

# The screens retry a failed read after their REFRESH_S (5 s on the queue): allow two rounds.
RECOVERY_TRIES = 300


@pytest.fixture
def tasks_db(db_dsn):
    x(
        db_dsn,
        """INSERT INTO execution_tasks (task_type, ai_model)
                 SELECT (ARRAY['implement_idea','self_improvement'])[1 + g % 2], 'gpt-4o'
                 FROM generate_series(1, 50) g""",
    )
    return db_dsn


def problem(app) -> str:
    return app.screen.query_one(StatusHeader).problem


def header_text(app) -> str:
    return app.screen.query_one(StatusHeader).render().plain


async def loaded(pilot, app) -> None:
    assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 50)


async def test_revoked_privileges_show_a_line_and_the_screen_recovers_when_granted_again(tasks_db, login):
    role_dsn = login("fsar_operator")
    role = conninfo_to_dict(role_dsn)["user"]
    app = make_app(role_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot, app)
        x(tasks_db, f"REVOKE fsar_operator FROM {role}")
        x(tasks_db, "INSERT INTO execution_tasks (task_type) VALUES ('after_revoke')")
        assert await until(pilot, lambda: "permission denied for table" in problem(app), tries=RECOVERY_TRIES), problem(
            app
        )
        assert "permission denied for table" in header_text(app)  # shown on screen, one line, in words
        assert app.is_running and isinstance(app.screen, QueueScreen)
        assert len(table(app).keys) == 50  # the screen keeps what it had
        await pilot.press("2")  # another screen meets the same refusal, and says so itself
        assert await until(pilot, lambda: "permission denied" in problem(app), tries=RECOVERY_TRIES)
        await pilot.press("1")
        x(tasks_db, f"GRANT fsar_operator TO {role}")
        assert await until(pilot, lambda: problem(app) == "" and len(table(app).keys) == 51, tries=RECOVERY_TRIES), (
            problem(app)
        )
        assert app.is_running


async def test_a_renamed_table_is_named_and_the_screen_recovers_when_it_is_back(tasks_db):
    app = make_app(tasks_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot, app)
        # In a thread: the DDL waits for the app's in-flight read, which needs this event
        # loop to finish its transaction (a blocking call here would deadlock the two).
        await asyncio.to_thread(x, tasks_db, "ALTER TABLE task_counts RENAME TO task_counts_away")
        try:
            assert await until(
                pilot, lambda: 'relation "task_counts" does not exist' in problem(app), tries=RECOVERY_TRIES
            ), problem(app)
            assert app.is_running
        finally:
            await asyncio.to_thread(x, tasks_db, "ALTER TABLE task_counts_away RENAME TO task_counts")
        x(tasks_db, "INSERT INTO execution_tasks (task_type) VALUES ('after_rename')")
        assert await until(pilot, lambda: problem(app) == "" and len(table(app).keys) == 51, tries=RECOVERY_TRIES)


async def test_a_statement_timeout_is_said_as_such_and_passes(tasks_db):
    app = make_app(tasks_db, statement_timeout_ms=300)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot, app)
        blocker = psycopg.connect(tasks_db)
        try:
            # every read of it waits (taken in a thread, for the same reason as the rename's)
            await asyncio.to_thread(blocker.execute, "LOCK TABLE task_counts IN ACCESS EXCLUSIVE MODE")
            assert await until(pilot, lambda: "statement timeout (300 ms)" in problem(app), tries=RECOVERY_TRIES), (
                problem(app)
            )
            assert app.is_running
            # One locked table is not an unreachable server: the header stays "connected".
            assert app.session.state == "connected" and "RECONNECTING" not in header_text(app)
        finally:
            blocker.rollback()
            blocker.close()
        assert await until(pilot, lambda: problem(app) == "", tries=RECOVERY_TRIES), problem(app)


async def test_killed_connections_reconnect_without_a_restart(tasks_db):
    app = make_app(tasks_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot, app)
        dbname = conninfo_to_dict(tasks_db)["dbname"]
        x(
            tasks_db,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'fsar-tui' AND pid <> pg_backend_pid()",
            (dbname,),
        )
        x(tasks_db, "INSERT INTO execution_tasks (task_type) VALUES ('after_kill')")
        assert await until(
            pilot, lambda: len(table(app).keys) == 51 and app.session.state == "connected", tries=RECOVERY_TRIES
        )
        assert problem(app) == "" and app.is_running


async def test_data_a_screen_cannot_show_is_a_problem_line_not_the_end_of_the_app(tasks_db, monkeypatch):
    from fsar_tui.screens import queue

    def broken(self, data):
        raise ValueError("a renderer bug")

    monkeypatch.setattr(queue.QueueScreen, "show_data", broken)
    app = make_app(tasks_db)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: "could not show the data" in problem(app), tries=RECOVERY_TRIES)
        assert "a renderer bug" in problem(app) and app.is_running
        await pilot.press("2")  # the other screens keep working
        assert await until(pilot, lambda: type(app.screen).__name__ == "ProfilesScreen" and problem(app) == "")


async def test_a_payload_nested_3000_deep_is_shown_as_text(tasks_db, run_cli):
    # PostgreSQL accepts it; Python's parser and every recursive walk after it do not. The
    # detail and `tasks show` never parse it (they lay out its text); --format json does,
    # bounded, and gives it as text.
    deep = "[" * 3000 + "]" * 3000
    x(tasks_db, "UPDATE execution_tasks SET payload = %s::jsonb, result = %s::jsonb WHERE id = 1", (deep, deep))
    shown = run_cli("tasks", "show", "1", "--dsn", tasks_db)
    assert shown.returncode == 0, shown.stderr
    assert "\npayload\n  [\n    [\n" in shown.stdout
    as_json = run_cli("tasks", "show", "1", "--format", "json", "--dsn", tasks_db)
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)["payload"]
    assert payload["unparsed_json"] == deep and payload["why"].startswith("nested deeper than 64 levels")
    app = make_app(tasks_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot, app)
        from fsar_tui.screens.task_detail import TaskDetailScreen

        app.push_screen(TaskDetailScreen(1))
        assert await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen))

        def shown_detail() -> str:
            from rich.console import Console

            found = app.screen.query("#detail")
            if not found:
                return ""
            console = Console(width=160, force_terminal=False, color_system=None)
            with console.capture() as cap:
                console.print(found.first().content)
            return cap.get()

        assert await until(pilot, lambda: "payload\n[\n  [\n" in shown_detail(), tries=RECOVERY_TRIES)
        assert problem(app) == "" and app.is_running
