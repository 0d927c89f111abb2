"""Per-attempt history (issue 16 point 5) against a real PostgreSQL: the status trigger keeps
each attempt's error on the events trail (revision 0022), the task detail (Pilot) and
`tasks show` list every attempt with its own error, the "failing now" reads count
failures per window and type × model through the partial index, and its screen groups
errors and filters the queue on one (Pilot)."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from fsar_tui.db import actions, executor
from fsar_tui.db.attempts import COUNTS_SQL, FAILURES_SQL, failing_now_sync
from fsar_tui.screens.task_detail import TaskDetailScreen
from support.pilot import make_app, until
from support.sql import q, x
from test_queue_screen import rendered

ERRORS = (
    "TimeoutError: call 123 exceeded 120s",
    "openai.RateLimitError: Error code: 429 - Rate limit reached",
    "Traceback (most recent call last):\n  File \"run.py\", line 9, in main\nValueError: bad diff in 'src/app.py'",
)
WORKERS = ("w-alpha", "w-bravo", "w-charlie")


async def three_attempts(dsn: str) -> int:
    """One task run three times by three workers: retried twice with different errors, then failed."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        ((task_id, _),) = await executor.enqueue(
            conn,
            [{"task_type": "implement_idea", "ai_model": "gpt-4o", "idea_id": None, "payload": None,
              "priority": 0, "max_attempts": 3}],
        )  # fmt: skip
        for worker, status, error in zip(WORKERS, ("queued", "queued", "failed"), ERRORS, strict=True):
            task = await executor.claim(conn, worker, 60)
            assert task is not None and task.id == task_id
            done = await executor.finish(
                conn, task, worker, status=status, result=None, error=error, input_tokens=1, output_tokens=1,

            )  # fmt: skip
            assert done is not None
    return task_id


async def test_the_trail_keeps_each_attempts_error(db_dsn):
    task_id = await three_attempts(db_dsn)
    rows = q(
        db_dsn,
        "SELECT from_status, to_status, attempt, worker_id, error FROM task_events WHERE task_id = %s ORDER BY id",
        (task_id,),
    )
    assert rows == [
        (None, "queued", 0, None, None),
        ("queued", "running", 1, "w-alpha", None),
        ("running", "queued", 1, "w-alpha", ERRORS[0]),
        ("queued", "running", 2, "w-bravo", None),
        ("running", "queued", 2, "w-bravo", ERRORS[1]),
        ("queued", "running", 3, "w-charlie", None),
        ("running", "failed", 3, "w-charlie", ERRORS[2]),
    ]


def test_operator_requeue_and_cancel_record_no_error_and_long_errors_are_cut(db_dsn):
    x(db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('implement_idea', 'gpt-4o')")
    step = "UPDATE execution_tasks SET "
    run = "status = 'running', attempt = attempt + 1, worker_id = 'w-1', started_at = now()"
    x(db_dsn, step + run)
    x(db_dsn, step + "status = 'queued', error = repeat('a', 3000) || repeat('b', 3000) || E'\\nLastLine: 7'")
    x(db_dsn, step + run)
    # The operator puts the running task back: the row's error is still the attempt before's.
    with psycopg.connect(db_dsn) as conn:
        ((task_id, status),) = conn.execute("SELECT id, status FROM execution_tasks").fetchall()
        assert actions.apply_action_sync(conn, "requeue", [(task_id, status)], "stuck", scope="t").done == [task_id]
    x(db_dsn, step + run)
    with psycopg.connect(db_dsn) as conn:
        assert actions.apply_action_sync(conn, "cancel", [(task_id, "running")], "enough", scope="t").done
    errors = [r[0] for r in q(db_dsn, "SELECT error FROM task_events WHERE from_status = 'running' ORDER BY id")]
    assert errors[1:] == [None, None]  # requeued, cancelled: no error of their own
    kept = errors[0]
    assert kept.startswith("a" * 2048) and kept.endswith("\n" + "b" * (2048 - 12) + "\nLastLine: 7")
    assert "\n[… 1916 characters not kept …]\n" in kept and len(kept) < 4200


def failure(dsn: str, task_type: str, model: str, error: str, ago: str, *, final: bool) -> int:
    """A task whose one attempt failed `ago` (retried unless final)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        ((task_id,),) = conn.execute(
            "INSERT INTO execution_tasks (task_type, ai_model) VALUES (%s, %s) RETURNING id", (task_type, model)
        ).fetchall()
        conn.execute(
            "UPDATE execution_tasks SET status = 'running', attempt = 1, worker_id = 'w-1', started_at = now() "
            "WHERE id = %s",
            (task_id,),
        )
        end = "status = 'failed', finished_at = now()" if final else "status = 'queued'"
        conn.execute(f"UPDATE execution_tasks SET {end}, error = %s WHERE id = %s", (error, task_id))
        conn.execute(f"UPDATE task_events SET at = now() - interval '{ago}' WHERE task_id = %s", (task_id,))
    return task_id


@pytest.fixture
def failing(db_dsn):
    """Failures spread over the windows: 2 in the last 15 min, 1 more within the hour, 1 more
    within the day, 1 older; two timeouts that differ only in their numbers."""
    ids = {
        "t123": failure(db_dsn, "implement_idea", "gpt-4o", "TimeoutError: call 123 exceeded 120s", "5 minutes",
                        final=True),
        "t456": failure(db_dsn, "implement_idea", "gpt-4o", "TimeoutError: call 456 exceeded 120s", "10 minutes",
                        final=False),
        "rate": failure(db_dsn, "self_improvement", "claude-3-5-sonnet", "RateLimitError: 429", "30 minutes",
                        final=False),
        "pytest": failure(db_dsn, "self_improvement", "claude-3-5-sonnet", "pytest: 3 failed", "3 hours",
                          final=True),
        "old": failure(db_dsn, "implement_idea", "gpt-4o", "TimeoutError: call 789 exceeded 120s", "2 days",
                       final=True),
    }  # fmt: skip
    x(db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('implement_idea', 'gpt-4o')")  # no failure
    return db_dsn, ids


def test_failing_now_counts_per_window_and_type_model(failing):
    dsn, ids = failing
    with psycopg.connect(dsn) as conn:
        now = failing_now_sync(conn, 3600)
    assert [(c.task_type, c.ai_model, c.last_15m, c.last_1h, c.last_24h, c.final_24h) for c in now.counts] == [
        ("implement_idea", "gpt-4o", 2, 2, 2, 1),
        ("self_improvement", "claude-3-5-sonnet", 0, 1, 2, 1),
    ]
    assert (now.total(900), now.total(3600), now.total(86400)) == (2, 3, 4)
    assert sorted((f.task_id, f.count) for f in now.failures) == sorted([(ids["t123"], 1), (ids["t456"], 1),
                                                                         (ids["rate"], 1)])  # fmt: skip
    assert now.read == 3


def test_failing_now_reads_the_partial_index_not_the_tasks(failing):
    dsn, _ = failing
    params = {"w0": 900, "w1": 3600, "w2": 86400, "window": 3600, "cap": 5000}
    with psycopg.connect(dsn) as conn:
        conn.execute("SET enable_seqscan = off")  # a table this small would be read whole
        for sql in (COUNTS_SQL, FAILURES_SQL):
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())
            assert "failures_idx" in plan, plan  # task_events_failures_idx, or a partition's (revision 0029)
            assert "Seq Scan on execution_tasks" not in plan


async def test_task_detail_shows_every_attempts_error(db_dsn):
    task_id = await three_attempts(db_dsn)
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 60)) as pilot:
        app.push_screen(TaskDetailScreen(task_id))

        def shown() -> str:
            detail = app.screen.query("#detail") if isinstance(app.screen, TaskDetailScreen) else []
            return rendered(detail[0].content) if detail else ""

        assert await until(pilot, lambda: "attempts (3)" in shown())
        text = shown()
        section = text[text.index("attempts (3)") : text.index("\nlast error\n")]
        lines = section.splitlines()
        rows = [i for i, line in enumerate(lines) if any(w in line for w in WORKERS)]
        assert len(rows) == 3
        for i, worker, outcome, error in zip(rows, WORKERS, ("failed → retry", "failed → retry", "failed"), ERRORS,
                                             strict=True):  # fmt: skip
            assert worker in lines[i] and lines[i].rstrip().endswith(outcome), lines[i]
            under = [line.strip() for line in lines[i + 1 : i + 1 + error.count("\n") + 1]]
            assert under == [line.strip() for line in error.splitlines()], under  # the whole error, under its row
        assert "no error recorded" not in section


def test_tasks_show_lists_every_attempts_error(db_dsn, run_cli):
    import asyncio

    task_id = asyncio.run(three_attempts(db_dsn))
    proc = run_cli("tasks", "show", str(task_id), "--dsn", db_dsn)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    attempts = out[out.index("attempts (3") : out.index("events (")]
    blocks = attempts.split("#")[1:]
    assert len(blocks) == 3
    for block, worker, error in zip(blocks, WORKERS, (ERRORS[0], ERRORS[1], "Traceback"), strict=True):
        assert f"worker {worker}" in block and f"error: {error}" in block, block
    assert "not kept" not in attempts and "not recorded" not in attempts
    data = json.loads(run_cli("tasks", "show", str(task_id), "--format", "json", "--dsn", db_dsn).stdout)
    assert [(a["attempt"], a["worker_id"], a["outcome"], a["error"]) for a in data["attempts"]] == [
        (1, "w-alpha", "queued", ERRORS[0]), (2, "w-bravo", "queued", ERRORS[1]), (3, "w-charlie", "failed", ERRORS[2])
    ]  # fmt: skip
    assert [e["error"] for e in data["events"] if e["from"] == "running"] == list(ERRORS)


async def test_failing_now_screen_counts_groups_and_filters_the_queue(failing):
    from fsar_tui.screens.failing_now import FailingNowScreen
    from fsar_tui.screens.queue import QueueScreen
    from fsar_tui.widgets.keyed_table import KeyedTable
    from fsar_tui.widgets.text_panel import TextPanel
    from support.pilot import table

    dsn, ids = failing
    app = make_app(dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: len(table(app).keys) == 6)
        await pilot.press("f")
        assert await until(pilot, lambda: isinstance(app.screen, FailingNowScreen) and app.screen.data is not None)
        screen = app.screen

        def panel(name: str) -> str:
            return screen.query_one(f"#{name}", TextPanel).content.plain

        assert panel("summary") == "failed attempts: 2 in 15 min · 3 in 1 h · 4 in 24 h (2 of them final)"
        counts = [" ".join(line.split()) for line in panel("counts").splitlines()]
        assert counts == [
            "type / model 15m 1h 24h final",
            "implement_idea / gpt-4o 2 2 2 1",
            "self_improvement / claude-3-5-sonnet 0 1 2 1",
        ]
        groups = screen.query_one("#groups", KeyedTable)
        rows = [[str(c) for c in groups.get_row(k)[1:]] for k in groups.keys]
        assert [(r[0], r[2], r[3]) for r in rows] == [
            ("2", str(ids["t123"]), "TimeoutError: call <n> exceeded <n>s"),  # 123 and 456: one group
            ("1", str(ids["rate"]), "RateLimitError: <n>"),
        ]
        assert panel("groups-title") == "top errors, last 1 h · 2 groups of 3 failures"

        await pilot.press("w")  # 24 h: the pytest failure too
        assert await until(pilot, lambda: len(groups.keys) == 3)
        assert "last 24 h" in panel("groups-title")

        groups.move_cursor(row=0)
        await pilot.press("enter")
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        queue = app.screen
        assert queue.filter_text == "error~'TimeoutError: call'"
        # Both timeouts (and the 2-day-old one: the queue filters on the task's error, any age).
        assert await until(pilot, lambda: set(table(app).keys) == {ids["t123"], ids["t456"], ids["old"]})


# -- every attempt's whole error at 80×24, and in the export (issue 16, review point 5) ------

LONG_ERROR = (
    "Traceback (most recent call last):\n"
    '  File "agent/run.py", line 88, in run_attempt\n'
    "    response = client.chat.completions.create(model=model, messages=messages, timeout=timeout_budget)\n"
    + "".join(
        f"  while handling the request the client retried after backoff step {w} of the budget\n"
        for w in ("one", "two", "three", "four", "five")
    )  # fmt: skip
    + "openai.RateLimitError: Error code: 429 - Rate limit reached for requests per minute in organization "
    "quota; please retry later or contact support END-OF-FIRST"
)
LAST_ERROR = "ValueError: the diff does not apply to src/app.py because the hunk context changed END-OF-LAST"


async def lease_lost_between(dsn: str) -> int:
    """Attempt 1 fails with LONG_ERROR and is retried; attempt 2 loses its lease (the
    reaper puts it back); attempt 3 fails for good with LAST_ERROR."""
    import asyncio

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        ((task_id, _),) = await executor.enqueue(
            conn,
            [{"task_type": "implement_idea", "ai_model": "gpt-4o", "idea_id": None, "payload": None,
              "priority": 0, "max_attempts": 3}],
        )  # fmt: skip
        for attempt, worker in enumerate(WORKERS, 1):
            task = await executor.claim(conn, worker, 0.001 if attempt == 2 else 60)
            assert task is not None and task.id == task_id
            if attempt == 2:
                await asyncio.sleep(0.05)
                assert [r[0] for r in await executor.reap_expired(conn)] == [task_id]
                continue
            status, error = ("queued", LONG_ERROR) if attempt == 1 else ("failed", LAST_ERROR)
            assert await executor.finish(
                conn, task, worker, status=status, result=None, error=error, input_tokens=1, output_tokens=1
            )  # fmt: skip
    return task_id


def squeezed(text: str) -> str:
    return "".join(text.split())


async def test_every_attempts_whole_error_reads_at_80x24(db_dsn):
    from textual.containers import VerticalScroll

    from test_layout_80x24 import painted

    task_id = await lease_lost_between(db_dsn)
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TaskDetailScreen(task_id))
        assert await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen) and "attempts (3)" in painted(app))
        scroll = app.screen.query_one(VerticalScroll)
        # Laid out again with its scrollbar (the first paint, before it, is 80 wide).
        assert await until(pilot, lambda: scroll.max_scroll_y > 0 and scroll.scrollbars_enabled[0])
        await pilot.pause(0.2)
        lines: dict[int, str] = {}  # the detail's lines as painted, by their place in it
        for _ in range(40):  # page by page, as an operator reads it
            top, box = int(scroll.scroll_y), scroll.scrollable_content_region
            rows = painted(app).splitlines()
            lines |= {top + r: rows[box.y + r][box.x : box.right] for r in range(box.height)}
            if scroll.scroll_y >= scroll.max_scroll_y:
                break
            await pilot.press("pagedown")
            await pilot.pause(0.1)
        seen = [lines[i] for i in sorted(lines)]
        assert sorted(lines) == list(range(len(lines)))  # read through, no line missed
        text = "\n".join(seen)
        for error in (LONG_ERROR, LAST_ERROR):
            assert squeezed(error) in squeezed(text), error[-20:]  # whole, wrapped at 80 columns
        rows = [row for row in seen if any(w in row for w in WORKERS)]
        for worker, outcome in zip(WORKERS, ("failed → retry", "lease lost", "failed"), strict=True):
            assert any(worker in row and row.rstrip().endswith(outcome) for row in rows), (worker, rows)
        assert squeezed("worker w-bravo stopped renewing (attempt 2)") in squeezed(text)


async def test_the_export_has_every_attempts_error(db_dsn, tmp_path, monkeypatch):
    monkeypatch.setenv("FSAR_EXPORT_DIR", str(tmp_path))
    task_id = await lease_lost_between(db_dsn)
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TaskDetailScreen(task_id))
        assert await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen) and app.screen.last is not None)
        await pilot.press("e")
        path = tmp_path / f"task-{task_id}-attempts.txt"
        assert await until(pilot, path.exists)
        await pilot.pause(0.2)
    text = path.read_text(encoding="utf-8")
    blocks = re.split("^attempt ", text, flags=re.MULTILINE)[1:]
    assert len(blocks) == 3, text
    for block, worker, outcome in zip(blocks, WORKERS, ("failed → retry", "lease lost", "failed"), strict=True):
        assert f"worker {worker} ·" in block and f"· {outcome}\n" in block, block
    assert squeezed(LONG_ERROR) in squeezed(blocks[0]) and "stopped renewing" in blocks[1]
    assert squeezed(LAST_ERROR) in squeezed(blocks[2])
