"""The app reading from a real streaming replica (issue 18, point 1): a primary and its
`pg_basebackup -R` replica (support/replica.py), replay paused and resumed to make lag
real and deterministic.

- reads come from the replica: a task inserted on the primary while replay is paused is
  not what the app reads, and the header says "reads: replica, lag N s" with N growing,
  marks the data stale past `replica_stale_s`, and drops back to "lag <1 s" on resume;
- read-your-writes: an operator's cancel from the queue screen shows at once with replay
  paused (read from the primary), then reads go back to the replica once it has replayed;
- the replica unreachable (a cut proxy) or too far behind: reads go to the primary, the
  header says so, the primary's health is untouched; back to the replica afterwards;
- the app's connections through PgBouncer in transaction mode while it reads from the
  replica: the screen's write and a sync write both read back at once.

Each reads `pg_is_in_recovery()` through the app's own session as well: the plainest
proof of where a read went.
"""

from __future__ import annotations

import re
import time

import pytest
from psycopg.conninfo import make_conninfo

from fsar_tui.app import FsarApp
from fsar_tui.config import Settings
from fsar_tui.db import pooler
from fsar_tui.db.connect import open_pool
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.session import Session
from fsar_tui.widgets.action_dialog import ActionDialog
from fsar_tui.widgets.status_header import WARNING_STYLE, StatusHeader
from support.cut_proxy import CutProxy
from support.pgbouncer import PgBouncer
from support.pilot import make_app, table, until
from support.replica import replica_db_fixture, replica_pair_fixture  # noqa: F401 — fixtures
from support.sql import q, x

pytestmark = pytest.mark.services

LAG = re.compile(r"reads: replica, lag (\d+) s")
PENDING = "reads: primary (own write pending on replica)"


async def in_recovery(conn) -> bool:
    """Where a read went: True on the replica."""
    cur = await conn.execute("SELECT pg_is_in_recovery()")
    return (await cur.fetchone())[0]


async def task_count(conn) -> int:
    cur = await conn.execute("SELECT count(*) FROM execution_tasks")
    return (await cur.fetchone())[0]


def add_tasks(dsn: str, n: int, task_type: str = "implement_idea") -> None:
    x(dsn, "INSERT INTO execution_tasks (task_type) SELECT %s FROM generate_series(1, %s)", (task_type, n))


def header(app) -> StatusHeader:
    return app.screen.query_one(StatusHeader)


def shown(app) -> str:
    return str(header(app).render())


def shown_lag(app) -> int:
    m = LAG.search(shown(app))
    return int(m.group(1)) if m else -1


def statuses(app) -> dict[int, str]:
    return {r.id: r.status for r in app.screen.rows}


async def reread(pilot, app) -> None:
    """The screen reads again now; wait until that read has shown its data."""
    app.screen.reload_now()
    worker = app.screen.schedule.worker
    assert await until(pilot, lambda: worker.is_finished)
    await pilot.pause(0.1)


async def replica_reading(pilot, app) -> bool:
    """Reads go to the replica, caught up, and the header says so (it syncs every second:
    the session's own word first, so a header not synced yet does not pass for it)."""
    words = "reads: replica, lag <1 s"
    # The app's first audit pass (3 s after connecting) writes, and so sends reads to the
    # primary until the replica has replayed it: wait for it, so that a test that pauses
    # replay next meets the replica's lag, not that pass's read-your-writes window.
    passed = await until(pilot, lambda: app.audit_check is not None or app.audit_failure is not None, tries=600)
    return passed and await until(
        pilot, lambda: app.session.reads_shown()[0] == words and words in shown(app), tries=600
    )


async def test_reads_come_from_the_replica_and_the_header_shows_its_lag(replica_db):
    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    app = make_app(replica_db.primary, read_dsn=replica_db.replica, replica_stale_s=2)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await replica_reading(pilot, app), shown(app)
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(app.screen.rows) == 3)
        assert await app.session.read(in_recovery) is True

        replica_db.pause()
        add_tasks(replica_db.primary, 1, "only_on_the_primary")
        assert q(replica_db.primary, "SELECT count(*) FROM execution_tasks") == [(4,)]
        # The app's reads meet the replica, which has not replayed it.
        assert await app.session.read(task_count) == 3
        await reread(pilot, app)
        assert len(app.screen.rows) == 3 and "only_on_the_primary" not in {r.task_type for r in app.screen.rows}
        # The lag grows while replay is paused; past replica_stale_s (2 s) the data is marked.
        assert await until(pilot, lambda: shown_lag(app) >= 3, tries=600), shown(app)
        await reread(pilot, app)  # the mark is the age of the data read (the lag when it was read)
        assert await until(pilot, lambda: "old (replica lag)" in shown(app)), shown(app)
        text = header(app).render()
        assert "replay paused" in str(text)
        note = re.search(r"data (\d+) s old \(replica lag\)", str(text))
        assert note is not None and int(note.group(1)) >= 2, str(text)
        styled = [str(text)[s.start : s.end] for s in text.spans if str(s.style) == WARNING_STYLE]
        assert any("old (replica lag)" in part for part in styled), text.spans
        assert app.session.state == "connected"  # the primary's health: nothing to do with the lag

        replica_db.resume()
        assert await replica_reading(pilot, app), shown(app)
        await reread(pilot, app)
        assert len(app.screen.rows) == 4
        assert await until(pilot, lambda: "old (replica lag)" not in shown(app)), shown(app)


async def test_an_operators_own_write_reads_back_at_once_while_the_replica_has_not_replayed_it(replica_db):
    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    app = make_app(replica_db.primary, read_dsn=replica_db.replica)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await replica_reading(pilot, app), shown(app)
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 3)
        target = int(str(table(app).current_key))
        replica_db.pause()

        await pilot.press("c")
        assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        await pilot.press(*"duplicate", "enter")
        # The screen shows the cancel at once: read from the primary …
        assert await until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and statuses(app).get(target) == "cancelled"
        )
        assert await until(pilot, lambda: PENDING in shown(app)), shown(app)  # the header syncs every second
        assert await app.session.read(in_recovery) is False
        # … while the replica still has the task queued.
        assert q(replica_db.replica, "SELECT status FROM execution_tasks WHERE id = %s", (target,)) == [("queued",)]
        await pilot.pause(2.5)  # checks keep finding the write unreplayed: still the primary
        assert PENDING in shown(app)
        await reread(pilot, app)
        assert statuses(app)[target] == "cancelled"

        replica_db.resume()
        assert await replica_reading(pilot, app), shown(app)
        assert await app.session.read(in_recovery) is True
        await reread(pilot, app)
        assert statuses(app)[target] == "cancelled"


async def test_every_screen_reads_on_the_hot_standby(replica_db):
    """A read that wrote, locked or asked for a transaction id would fail on a replica:
    every screen (and the task detail) loads from it without a problem."""
    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    app = make_app(replica_db.primary, read_dsn=replica_db.replica)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await replica_reading(pilot, app), shown(app)
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 3)
        await pilot.press("enter")  # the task detail
        for key in ("enter", "2", "3", "4", "5"):
            if key != "enter":
                await pilot.press(key)
            screen = app.screen
            assert await until(pilot, lambda s=screen: s.schedule.worker is not None and s.schedule.worker.is_finished)
            await pilot.pause(1.0)  # the screen's other reads (flags, series, …)
            assert not screen.problems, (type(screen).__name__, screen.problems)
            # (the app's audit pass, a write of its own, may send reads to the primary a moment)
            assert await replica_reading(pilot, app), (type(screen).__name__, shown(app))


async def test_reads_go_to_the_primary_while_the_replica_is_unreachable_and_come_back(replica_db):
    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    proxy = CutProxy("127.0.0.1", replica_db.pair.standby.port)
    app = make_app(replica_db.primary, read_dsn=replica_db.through("127.0.0.1", proxy.port))
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            assert await replica_reading(pilot, app), shown(app)
            assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(app.screen.rows) == 3)

            proxy.cut()
            assert await until(pilot, lambda: "reads: primary (replica unreachable: " in shown(app), tries=600)
            assert await app.session.read(in_recovery) is False
            add_tasks(replica_db.primary, 1)
            await reread(pilot, app)
            assert len(app.screen.rows) == 4 and not app.screen.problems
            # The primary is fine: no RECONNECTING, actions on.
            assert app.session.state == "connected" and "RECONNECTING" not in shown(app)

            proxy.restore()
            assert await replica_reading(pilot, app), shown(app)
            assert await app.session.read(in_recovery) is True
    finally:
        proxy.close()


async def wait_for(predicate, timeout: float = 60) -> bool:
    import asyncio

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_a_replica_too_far_behind_is_read_around_until_it_catches_up(replica_db):
    primary = replica_db.primary
    add_tasks(primary, 3)
    replica_db.wait_caught_up()
    session = Session(primary, Settings(dsn=primary, read_dsn=replica_db.replica))
    session.pool = await open_pool(primary, statement_timeout_ms=5000)
    assert session.replica is not None
    session.replica.max_lag_s = 2
    try:
        await session.read(task_count)  # the first read starts the checks
        assert await wait_for(lambda: session.reads_shown()[0] == "reads: replica, lag <1 s"), session.reads_shown()
        assert await session.read(in_recovery) is True
        replica_db.pause()
        add_tasks(primary, 1)
        assert await wait_for(lambda: session.reads_shown()[0].startswith("reads: primary (replica lag ")), (
            session.reads_shown()
        )
        assert session.reads_shown()[0].endswith(" > 2 s)")
        assert await session.read(in_recovery) is False and await session.read(task_count) == 4
        replica_db.resume()
        assert await wait_for(lambda: session.reads_shown()[0] == "reads: replica, lag <1 s"), session.reads_shown()
        assert await session.read(in_recovery) is True and await session.read(task_count) == 4
    finally:
        await session.close()


async def test_with_the_primary_unreachable_reads_stay_on_the_replica(replica_db):
    """The lag only grows while the primary is away (nothing new to replay): past the hard
    limit the reads stay on the replica all the same, the one server that answers."""
    primary = replica_db.primary
    add_tasks(primary, 3)
    replica_db.wait_caught_up()
    proxy = CutProxy("127.0.0.1", replica_db.pair.primary.port)
    dsn = make_conninfo(primary, host="127.0.0.1", port=str(proxy.port))
    session = Session(dsn, Settings(dsn=dsn, read_dsn=replica_db.replica))
    session.pool = await open_pool(dsn, statement_timeout_ms=5000)
    assert session.replica is not None
    session.replica.max_lag_s = 2
    try:
        await session.read(task_count)
        assert await wait_for(lambda: session.reads_shown()[0] == "reads: replica, lag <1 s"), session.reads_shown()
        proxy.cut()
        assert await wait_for(lambda: session.state == "reconnecting")
        assert await wait_for(lambda: (session.replica.lag_s or 0) > 2), session.replica.lag_s
        assert session.reads_shown()[0].startswith("reads: replica, lag "), session.reads_shown()
        assert await session.read(in_recovery) is True and await session.read(task_count) == 3
        assert session.state == "reconnecting"  # replica reads say nothing of the primary's health
        proxy.restore()
        assert await wait_for(lambda: session.state == "connected")
        assert await wait_for(lambda: session.reads_shown()[0] == "reads: replica, lag <1 s"), session.reads_shown()
    finally:
        await session.close()
        proxy.close()


def insert_task(conn) -> None:
    """A sync write, as db/ write paths are (session.write)."""
    conn.execute("INSERT INTO execution_tasks (task_type) VALUES ('written_through_pgbouncer')")


async def test_through_pgbouncer_reads_come_from_the_replica_and_own_writes_read_back(replica_db):
    primary = replica_db.primary
    add_tasks(primary, 3)
    replica_db.wait_caught_up()
    bouncer = PgBouncer(primary).start()
    pooled = bouncer.dsn(primary)
    app = FsarApp(settings=Settings(dsn=pooled, read_dsn=replica_db.replica, live="auto"), dsn=pooled)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            assert await replica_reading(pilot, app), shown(app)
            assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 3)
            assert pooler.known(pooled) is True  # the app's connections to dsn go through the pooler
            target = int(str(table(app).current_key))
            replica_db.pause()
            add_tasks(primary, 1, "someone_elses")
            await reread(pilot, app)
            assert len(app.screen.rows) == 3  # the replica's view

            # The screen's action (an async write on the pooled primary) …
            await pilot.press("c")
            assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
            await pilot.press(*"through the pooler", "enter")
            assert await until(
                pilot, lambda: isinstance(app.screen, QueueScreen) and statuses(app).get(target) == "cancelled"
            )
            assert len(app.screen.rows) == 4  # read from the primary: the other write shows too
            assert await until(pilot, lambda: PENDING in shown(app)), shown(app)  # the header syncs every second
            assert q(replica_db.replica, "SELECT status FROM execution_tasks WHERE id = %s", (target,)) == [("queued",)]
            replica_db.resume()
            assert await replica_reading(pilot, app), shown(app)

            # … and a sync write (session.write: a short-lived connection, through the pooler).
            replica_db.pause()
            await app.session.write(insert_task)
            assert await app.session.read(task_count) == 5
            assert app.session.reads_shown()[0] == PENDING
            assert q(replica_db.replica, "SELECT count(*) FROM execution_tasks") == [(4,)]
            replica_db.resume()
            assert await replica_reading(pilot, app), shown(app)
            assert await app.session.read(in_recovery) is True and await app.session.read(task_count) == 5
    finally:
        bouncer.stop()
