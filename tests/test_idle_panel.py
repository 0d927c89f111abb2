"""An idle queue screen costs the database almost nothing (issue 18, point 4): while
nobody presses a key, live batches move its counts without a query, the rest is
re-read every IDLE_REFRESH_S, and the header's alert counts wait for a control event
or the panel's audit pass instead of a 15 s timer — counted statement by statement,
not timed."""

from __future__ import annotations

import time
from collections import Counter

import psycopg
import pytest

from fsar_tui.db import tasks as task_queries
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.screens.reload_schedule import IDLE_AFTER_S
from support.pilot import make_app, table, until

BATCHES = 12


@pytest.fixture
def statements(monkeypatch):
    """Every statement the app's async connections send, by the table it reads."""
    seen: Counter[str] = Counter()
    execute = psycopg.AsyncCursor.execute

    async def counting(self, query, *args, **kwargs):
        text = str(query) if isinstance(query, str) else repr(query)
        seen["counts" if "task_counts" in text else "total"] += 1
        seen["alerts"] += "drift_alerts" in text
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counting)
    return seen


def insert(dsn: str, task_type: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO execution_tasks (task_type, ai_model) VALUES (%s, 'gpt-4o')", (task_type,))


async def counters(dsn: str) -> dict:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        rows = await task_queries.status_type_counts(conn)
    return {(r.status, r.task_type, r.ai_model): r.n for r in rows}


async def test_an_idle_queue_screen_follows_batches_without_reading_the_counters(db_dsn, statements):
    insert(db_dsn, "implement_idea")
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        assert await until(pilot, lambda: len(table(app).keys) == 1 and app.live_name == "notify")
        assert await until(pilot, lambda: screen.counts is not None)
        screen.schedule.input_at = time.monotonic() - IDLE_AFTER_S - 1  # nobody pressed a key for 30 s
        screen.schedule.last = time.monotonic()  # and the last re-read was just now
        statements.clear()
        for n in range(1, BATCHES + 1):
            insert(db_dsn, "idle_type")
            assert await until(pilot, lambda n=n: (screen.counts or {}).get(("queued", "idle_type", None)) == n)
        # Twelve batches, each shown: no counters read, at most the one re-read of the
        # page and panels its idle schedule allows (7 statements) — a live panel read the
        # counters and the running tasks on every batch (24 and more).
        assert statements["counts"] <= 1
        assert statements["total"] + statements["counts"] <= 7
        assert screen.counts == await counters(db_dsn)
        # A key press makes it live again: the next batch reads the counters.
        await pilot.press("j")
        statements.clear()
        insert(db_dsn, "idle_type")
        assert await until(pilot, lambda: statements["counts"] >= 1)
        assert await until(pilot, lambda: (screen.counts or {}).get(("queued", "idle_type", None)) == BATCHES + 1)


async def test_an_idle_panel_reads_the_headers_alert_counts_on_control_events_not_on_the_timer(db_dsn, statements):
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        assert await until(pilot, lambda: app.live_name == "notify" and app.session.ready)
        app.poll_alert_counts()  # the 15 s timer, someone at the panel: it reads
        assert await until(pilot, lambda: statements["alerts"] >= 1)
        screen.schedule.input_at = time.monotonic() - IDLE_AFTER_S - 1
        await pilot.pause(0.5)
        statements.clear()
        for _ in range(3):
            app.poll_alert_counts()  # idle: the timer reads nothing
            await pilot.pause(0.2)
        assert statements["alerts"] == 0
        # A verdict recorded (a control event): the header's counts are read at once.
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO audit_runs (gate_id, verdict) SELECT min(id), 'pass' FROM audit_gates")
        assert await until(pilot, lambda: statements["alerts"] >= 1)


async def test_a_batch_moved_while_the_idle_re_read_was_in_flight_is_not_undone_by_it(db_dsn, monkeypatch):
    """The idle re-read's counts were taken before a batch that the panel then moved
    without a query; shown after it, they put the count back one (until the next re-read,
    30 s on) — a fresh-clone run caught it. A read that overlapped a batch is followed by
    a read of the counters."""
    import asyncio

    insert(db_dsn, "implement_idea")
    held, taken = asyncio.Event(), asyncio.Event()
    real = task_queries.queue_snapshot

    async def slow_snapshot(*args, **kwargs):
        snapshot = await real(*args, **kwargs)  # taken now; shown only once released
        if not held.is_set():
            taken.set()
            await held.wait()
        return snapshot

    app = make_app(db_dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        assert await until(pilot, lambda: len(table(app).keys) == 1 and app.live_name == "notify")
        assert await until(pilot, lambda: screen.counts is not None)
        screen.schedule.input_at = time.monotonic() - IDLE_AFTER_S - 1  # idle
        monkeypatch.setattr(task_queries, "queue_snapshot", slow_snapshot)
        screen.reload()
        assert await until(pilot, taken.is_set)
        insert(db_dsn, "idle_type")  # after the snapshot was taken
        assert await until(pilot, lambda: (screen.counts or {}).get(("queued", "idle_type", None)) == 1)
        held.set()  # the stale snapshot is shown now
        await pilot.pause(0.5)
        assert await until(pilot, lambda: (screen.counts or {}).get(("queued", "idle_type", None)) == 1)
        assert screen.counts == await counters(db_dsn)
