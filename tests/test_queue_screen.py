"""Pilot tests of the shell and the queue screen against a real database."""

from __future__ import annotations

import psycopg
import pytest

from fsar_tui.app import FsarApp
from fsar_tui.config import Settings
from fsar_tui.screens.audit import AuditScreen
from fsar_tui.screens.proposals import ProposalsScreen
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.screens.roi import RoiScreen
from fsar_tui.screens.task_detail import TaskDetailScreen
from fsar_tui.widgets.action_dialog import ActionDialog
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.status_header import StatusHeader
from support.pilot import make_app, table, until

EVIL_ERROR = "[bold red]x[/] \x1b]52;c;ZXZpbA==\x07\x1b[2J key sk-live-abcdefghijklmnopqrstu mail bob@example.com"


@pytest.fixture
def queue_db(db_dsn):
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("""INSERT INTO execution_tasks (task_type, ai_model, status, attempt, started_at, finished_at,
            error,
                                                     worker_id)
                        SELECT (ARRAY['implement_idea','self_improvement','idea_implementation'])[1 + g % 3], 'gpt-4o',
                               CASE WHEN g % 4 = 0 THEN 'failed' WHEN g % 4 = 1 THEN 'succeeded' ELSE 'queued' END,
                               CASE WHEN g % 4 IN (0, 1) THEN 1 ELSE 0 END,
                               CASE WHEN g % 4 IN (0, 1) THEN now() - interval '2 minutes' END,
                               CASE WHEN g % 4 IN (0, 1) THEN now() - interval '1 minute' END,
                               CASE WHEN g % 4 = 0 THEN 'TimeoutError: model call exceeded 120s' END,
                               CASE WHEN g % 4 IN (0, 1) THEN 'w-' || (g % 5) END
                        FROM generate_series(1, 400) g""")
        conn.execute("UPDATE execution_tasks SET error = %s WHERE id = 400", (EVIL_ERROR,))
    return db_dsn


def row_status(app, key) -> str:
    return str(table(app).get_row(str(key))[2])


def rendered(renderable) -> str:
    from rich.console import Console

    console = Console(width=160, force_terminal=False, color_system=None)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get()


def db_count(dsn, where):
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM execution_tasks WHERE {where}").fetchone()[0]


def actions(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT actor, action, target, reason, before, after FROM operator_actions ORDER BY seq"
        ).fetchall()


async def test_navigation_screens_help_command_mode(queue_db):
    app = make_app(queue_db)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: len(table(app).keys) == 100)
        await pilot.press("3")
        assert isinstance(app.screen, RoiScreen)
        await pilot.press("4")
        assert isinstance(app.screen, AuditScreen)  # rollouts, gates, alerts, the action log
        await pilot.press("5")
        assert isinstance(app.screen, ProposalsScreen)
        await pilot.press("1")
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("question_mark")
        assert "HelpScreen" == type(app.screen).__name__
        await pilot.press("escape")
        await pilot.press("colon", *"roi 7d", "enter")
        assert isinstance(app.screen, RoiScreen)
        assert await until(pilot, lambda: app.screen.days == 7)
        await pilot.press("colon", *"queue status=failed", "enter")
        assert isinstance(app.screen, QueueScreen)
        assert await until(
            pilot, lambda: table(app).keys and all(row_status(app, k) == "failed" for k in table(app).keys)
        )
        # j/k/g/G move the cursor; enter opens the task; esc comes back.
        await pilot.press("j", "j", "k")
        assert table(app).cursor_row == 1
        await pilot.press("G")
        assert table(app).cursor_row == len(table(app).keys) - 1
        await pilot.press("g")
        assert table(app).cursor_row == 0
        first = table(app).current_key
        await pilot.press("enter")
        assert isinstance(app.screen, TaskDetailScreen) and app.screen.task_id == first
        await pilot.press("escape")
        assert isinstance(app.screen, QueueScreen)
        header = app.screen.query_one(StatusHeader)
        assert await until(pilot, lambda: header.live == "notify")
        assert "connected" in str(header.render())


async def test_filter_language_is_applied_server_side_and_errors_do_not_apply(queue_db):
    app = make_app(queue_db)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: len(table(app).keys) == 100)
        await pilot.press("slash", *"status:failed type:self_improvement", "enter")
        expected = db_count(queue_db, "status = 'failed' AND task_type = 'self_improvement'")
        assert await until(pilot, lambda: app.screen.matching == expected)
        assert all(row_status(app, k) == "failed" for k in table(app).keys) and len(table(app).keys) == expected
        await pilot.press("slash", *"colour:red", "enter")
        await pilot.pause(0.2)
        assert app.screen.filter_text == "status:failed type:self_improvement"  # unchanged
        await pilot.press("escape", "escape")  # close the bar, then clear the filter
        assert await until(pilot, lambda: app.screen.matching == 400)


async def test_retry_one_task_records_operator_action(queue_db):
    app = make_app(queue_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"status:failed", "enter")
        assert await until(pilot, lambda: app.screen.matching == 100 and table(app).keys)
        target = table(app).current_key
        await pilot.press("r")
        assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert app.screen.count == 1
        await pilot.press(*"flaky upstream", "enter")
        assert await until(pilot, lambda: len(actions(queue_db)) == 1)
    ((actor, action, target_text, reason, before, after),) = actions(queue_db)
    assert action == "task.retry" and reason == "flaky upstream" and str(target) in target_text
    assert before == {"status": {str(target): "failed"}} and after["ids"] == [target]
    with psycopg.connect(queue_db) as conn:
        assert conn.execute("SELECT status FROM execution_tasks WHERE id = %s", (target,)).fetchone() == ("queued",)


async def test_bulk_cancel_on_marked_rows_requires_typing_the_count(queue_db):
    app = make_app(queue_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"status:queued", "enter")
        assert await until(pilot, lambda: app.screen.matching == 200 and len(table(app).keys) >= 3)
        marked = table(app).keys[:3]
        await pilot.press("space", "space", "space", "c")
        assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert app.screen.count == 3
        await pilot.press("2", "enter")  # wrong count: refused
        assert isinstance(app.screen, ActionDialog)
        await pilot.press("backspace", "3", "enter", *"duplicates", "enter")
        assert await until(pilot, lambda: len(actions(queue_db)) == 1)
    ((_, action, _, reason, before, after),) = actions(queue_db)
    assert action == "task.cancel" and reason == "duplicates" and sorted(after["ids"]) == sorted(marked)


async def test_whole_filter_action_reports_rows_changed_meanwhile(queue_db):
    app = make_app(queue_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"status:failed type:implement_idea", "enter")
        assert await until(pilot, lambda: app.screen.matching is not None and table(app).keys)
        expected = app.screen.matching
        await pilot.press("a", "r")
        assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert app.screen.count == expected
        # Another operator retries one of them while the dialog is open.
        with psycopg.connect(queue_db, autocommit=True) as conn:
            moved = conn.execute(
                "UPDATE execution_tasks SET status = 'cancelled' WHERE id = (SELECT min(id) FROM "
                "execution_tasks WHERE status = 'failed' AND task_type = 'implement_idea') RETURNING id"
            ).fetchone()[0]
        await pilot.press(*str(expected), "enter", *"bulk retry", "enter")
        assert await until(pilot, lambda: len(actions(queue_db)) == 1)
    ((_, _, _, _, before, after),) = actions(queue_db)
    assert str(moved) not in before["status"] and len(after["ids"]) == expected - 1


async def test_read_only_flag_removes_actions(queue_db):
    app = make_app(queue_db, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: table(app).keys)
        await pilot.press("r", "c", "e", "a")
        await pilot.pause(0.3)
        assert isinstance(app.screen, QueueScreen)
        footer_keys = {b.binding.id for b in app.screen.active_bindings.values() if b.enabled}
        assert "queue.retry" not in footer_keys and "READ-ONLY" in str(app.screen.query_one(StatusHeader).render())
        assert "Retry" not in app.screen.query_one(KeyBar).content.plain
    assert actions(queue_db) == []


async def test_read_only_database_is_refused_and_said_plainly(queue_db):
    with psycopg.connect(queue_db, autocommit=True) as conn:
        dbname = conn.info.dbname
        conn.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    app = make_app(queue_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"status:failed", "enter")
        assert await until(pilot, lambda: app.screen.matching == 100 and table(app).keys)
        await pilot.press("r")
        assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        await pilot.press(*"try", "enter")
        assert await until(pilot, lambda: any("refused" in (n.title or "") for n in app._notifications))
        note = next(n for n in app._notifications if "refused" in (n.title or ""))
        assert "read-only" in note.message
    assert actions(queue_db) == []


async def test_untrusted_text_is_inert_and_redacted(queue_db):
    app = make_app(queue_db)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: 400 in table(app).keys)
        error_cell = table(app).get_row("400")[-1]
        plain = str(error_cell)
        assert plain.startswith("[bold red]x[/]") and "\x1b" not in plain and "\x07" not in plain
        assert error_cell.spans == []
        assert "sk-live" not in plain and "bob@example.com" not in plain and "[REDACTED:email]" in plain
        table(app).move_cursor(row=table(app).keys.index(400))
        await pilot.press("enter")
        assert await until(
            pilot,
            lambda: (
                isinstance(app.screen, TaskDetailScreen)
                and "REDACTED" in rendered(app.screen.query_one("#detail").content)
            ),
        )
        shown = rendered(app.screen.query_one("#detail").content)
        assert "[bold red]x[/]" in shown and "\x1b" not in shown and "sk-live" not in shown


async def test_remapped_key_from_config(queue_db):
    app = FsarApp(settings=Settings(dsn=queue_db, keymap={"queue.retry": "R", "quit": "ctrl+q"}), dsn=queue_db)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: table(app).keys)
        bar = app.screen.query_one(KeyBar).content.plain
        assert " R  Retry" in bar and " r  Retry" not in bar  # the key bar shows the remapped key
        await pilot.press("q")  # no longer quit
        assert app.is_running
        await pilot.press("ctrl+q")
    assert not app.is_running


@pytest.mark.slow
async def test_screen_keeps_its_data_while_the_database_restarts_and_recovers(own_cluster):
    from fsar_tui.db.migrations import migrate

    dsn = own_cluster.dsn()
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, 50)")
    app = FsarApp(settings=Settings(dsn=dsn, live="poll"), dsn=dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: len(table(app).keys) == 50)
        own_cluster.stop()
        app.screen.dirty = True
        header = app.screen.query_one(StatusHeader)
        assert await until(pilot, lambda: header.state == "reconnecting", tries=400)
        assert "RECONNECTING" in str(header.render()) and "old" in str(header.render())
        assert len(table(app).keys) == 50  # last data kept on screen
        # The problem line names the cause (libpq's, probed directly), not the pool's wait.
        assert await until(pilot, lambda: "database unreachable: " in header.problem, tries=400), header.problem
        assert "couldn't get a connection" not in header.problem
        own_cluster.start()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO execution_tasks (task_type) VALUES ('after_restart')")
        app.screen.dirty = True
        assert await until(pilot, lambda: header.state == "connected" and len(table(app).keys) == 51, tries=600)


async def test_requeue_a_cancelled_task(queue_db):
    with psycopg.connect(queue_db, autocommit=True) as conn:
        conn.execute("UPDATE execution_tasks SET status = 'cancelled', finished_at = now() WHERE id = 399")
    app = make_app(queue_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"id:399", "enter")
        assert await until(pilot, lambda: table(app).keys == [399])
        await pilot.press("e")
        assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        await pilot.press(*"cancelled by mistake", "enter")
        assert await until(pilot, lambda: len(actions(queue_db)) == 1)
        assert await until(pilot, lambda: row_status(app, 399) == "queued")
    ((_, action, _, reason, before, after),) = actions(queue_db)
    assert (action, reason, before, after["status"]) == (
        "task.requeue",
        "cancelled by mistake",
        {"status": {"399": "cancelled"}},
        "queued",
    )


async def test_counts_follow_live_events_without_waiting_for_the_timer(queue_db):
    app = make_app(queue_db)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        assert await until(pilot, lambda: len(table(app).keys) == 100 and app.live_name == "notify")
        counts = screen.query_one("#counts")
        assert await until(pilot, lambda: "self_improvement" in rendered(counts.content))
        screen.tick_timer.pause()  # only the live path can update the panel now
        with psycopg.connect(queue_db, autocommit=True) as conn:
            conn.execute("INSERT INTO execution_tasks (task_type, ai_model) VALUES ('brand_new_type', 'gpt-4o')")
        assert await until(pilot, lambda: "brand_new_type" in rendered(counts.content))
        assert len(table(app).keys) == 100  # the page itself waits for the timer
        # Running tasks follow the same path, with their worker.
        with psycopg.connect(queue_db, autocommit=True) as conn:
            conn.execute(
                "UPDATE execution_tasks SET status = 'running', attempt = 1, started_at = now(), "
                "worker_id = 'w-run-7' WHERE task_type = 'brand_new_type'"
            )
        running = screen.query_one("#running")
        assert await until(pilot, lambda: "w-run-7" in running.content.plain and "running (1)" in running.content.plain)
