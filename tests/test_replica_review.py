"""What a hostile review of the read-replica support found (issue 18, point 1), each
against the suite's real primary and `pg_basebackup -R` replica (support/replica.py):

- a read DSN that is a replica, but of another database (or not of this primary), is
  never read: reads stay on the primary and the header says why;
- "act on filter" takes its scope from the primary, not from a replica behind;
- the app's own writes on connections of their own (the audit pass) open the
  read-your-writes window too;
- a write whose WAL position cannot be read after its COMMIT is done, not "failed";
- with the primary away, a pending own write no longer pins reads to it;
- a replica read that spans an own write is read again on the primary;
- the stale mark follows the data read, not the replica's lag now;
- the read DSN's failure cause is said; closing never waits on a frozen replica.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fsar_tui.config import Settings
from fsar_tui.db.connect import open_pool
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.session import Session
from fsar_tui.widgets.action_dialog import ActionDialog
from support.cut_proxy import CutProxy
from support.pgcluster import free_port
from support.pilot import make_app, until
from support.replica import replica_db_fixture, replica_pair_fixture  # noqa: F401 — fixtures
from support.sql import q, x
from test_replica import PENDING, add_tasks, in_recovery, replica_reading, shown, task_count, wait_for

pytestmark = pytest.mark.services

CAUGHT_UP = "reads: replica, lag <1 s"


async def session_on(primary: str, read_dsn: str, **settings) -> Session:
    session = Session(primary, Settings(dsn=primary, read_dsn=read_dsn, **settings))
    session.pool = await open_pool(primary, statement_timeout_ms=5000)
    await session.read(task_count)  # the first read starts the checks
    return session


async def on_the_replica(session: Session) -> None:
    assert await wait_for(lambda: session.reads_shown()[0] == CAUGHT_UP), session.reads_shown()


async def test_a_replica_of_another_database_is_never_read(replica_db):
    """The right replica server, another database on it: in recovery, the same system
    identifier — and another database. Before: 'reads: replica' and its rows."""
    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    other = replica_db.pair.replica_dsn("postgres")  # a database of the replica, not this one
    session = await session_on(replica_db.primary, other)
    try:
        words = "reads: primary (read DSN is not a replica of this database)"
        assert await wait_for(lambda: session.reads_shown()[0] == words), session.reads_shown()
        await asyncio.sleep(1.5)  # checks go on: still the primary
        assert session.reads_shown()[0] == words
        assert await session.read(in_recovery) is False and await session.read(task_count) == 3
    finally:
        await session.close()


async def test_act_on_filter_takes_its_scope_from_the_primary(replica_db):
    add_tasks(replica_db.primary, 3, "bulk_target")
    replica_db.wait_caught_up()
    app = make_app(replica_db.primary, read_dsn=replica_db.replica)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await replica_reading(pilot, app), shown(app)
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(app.screen.rows) == 3)
        replica_db.pause()
        add_tasks(replica_db.primary, 2, "bulk_target")  # not on the replica
        await pilot.press("a", "c")
        assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        assert app.screen.count == 5, app.screen.count  # before: 3, the replica's
        await pilot.press(*"5", "enter", *"bulk", "enter")
        assert await until(
            pilot,
            lambda: q(replica_db.primary, "SELECT count(*) FROM execution_tasks WHERE status = 'cancelled'") == [(5,)],
        )


async def test_the_audit_pass_opens_the_read_your_writes_window(replica_db):
    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    app = make_app(replica_db.primary, read_dsn=replica_db.replica)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await replica_reading(pilot, app), shown(app)
        replica_db.pause()
        before = app.audit_check
        app.run_audit_check()
        assert await until(pilot, lambda: app.audit_check is not before or app.audit_failure is not None, tries=1200)
        # The pass's writes are on the primary only: reads go there until the replica has them.
        assert await until(pilot, lambda: app.session.reads_shown()[0] == PENDING), app.session.reads_shown()
        assert await app.session.read(in_recovery) is False
        replica_db.resume()
        assert await replica_reading(pilot, app), shown(app)


async def cancel_one(conn, task_id: int) -> None:
    await conn.execute("UPDATE execution_tasks SET status = 'cancelled', finished_at = now() WHERE id = %s", (task_id,))


async def status_of(conn, task_id: int) -> str:
    cur = await conn.execute("SELECT status FROM execution_tasks WHERE id = %s", (task_id,))
    return (await cur.fetchone())[0]


async def test_a_write_whose_position_cannot_be_read_after_commit_is_done_not_failed(replica_db):
    """pg_current_wal_insert_lsn() refused (as managed services do): before, the committed
    write raised, and the operator was told 'NOT applied'."""
    role = f"r_{uuid.uuid4().hex[:8]}"
    primary = replica_db.primary
    ((task,),) = q(primary, "INSERT INTO execution_tasks (task_type) VALUES ('t') RETURNING id")
    x(replica_db.pair.primary_dsn(), sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        x(primary, sql.SQL("GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role)))
        x(primary, "REVOKE EXECUTE ON FUNCTION pg_current_wal_insert_lsn() FROM PUBLIC")
        replica_db.wait_caught_up()
        as_role = make_conninfo(primary, user=role)
        session = await session_on(as_role, make_conninfo(replica_db.replica, user=role))
        try:
            await on_the_replica(session)
            replica_db.pause()
            await session.awrite(cancel_one, task)  # before: InsufficientPrivilege, after the COMMIT
            assert q(primary, "SELECT status FROM execution_tasks WHERE id = %s", (task,)) == [("cancelled",)]
            assert await session.read(status_of, task) == "cancelled"  # read back from the primary
            await asyncio.sleep(2.5)  # checks: the position taken is the primary's flushed one
            assert session.reads_shown()[0] == PENDING, session.reads_shown()
            assert await session.read(status_of, task) == "cancelled"
            replica_db.resume()
            await on_the_replica(session)
            assert await session.read(status_of, task) == "cancelled"
        finally:
            await session.close()
    finally:
        replica_db.pair.drop(replica_db.name)  # the role has grants in it: the database goes first
        x(replica_db.pair.primary_dsn(), sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_with_the_primary_away_a_pending_write_does_not_pin_reads_to_it(replica_db):
    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    proxy = CutProxy("127.0.0.1", replica_db.pair.primary.port)
    dsn = make_conninfo(replica_db.primary, host="127.0.0.1", port=str(proxy.port))
    session = await session_on(dsn, replica_db.replica)
    try:
        await on_the_replica(session)
        replica_db.pause()
        await session.awrite(cancel_one, 1)
        assert session.reads_shown()[0] == PENDING
        proxy.cut()
        assert await wait_for(lambda: session.state == "reconnecting")
        words = "own write not yet on replica"
        assert await wait_for(lambda: session.reads_shown()[0].startswith("reads: replica")), session.reads_shown()
        assert words in session.reads_shown()[0], session.reads_shown()
        assert await session.read(in_recovery) is True and await session.read(task_count) == 3
        proxy.restore()
        assert await wait_for(lambda: session.state == "connected")
        assert await wait_for(lambda: session.reads_shown()[0] == PENDING), session.reads_shown()
        replica_db.resume()
        await on_the_replica(session)
    finally:
        await session.close()
        proxy.close()


async def test_a_replica_read_that_spans_an_own_write_is_read_again_on_the_primary(replica_db):
    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    session = await session_on(replica_db.primary, replica_db.replica)
    try:
        await on_the_replica(session)
        replica_db.pause()
        wrote = []

        async def read_spanning_a_write(conn) -> tuple[bool, str]:
            if not wrote:  # the first time: the read has begun (on the replica) when the write lands
                wrote.append(True)
                await session.awrite(cancel_one, 1)
            cur = await conn.execute("SELECT pg_is_in_recovery(), status FROM execution_tasks WHERE id = 1")
            return await cur.fetchone()

        where, status = await session.read(read_spanning_a_write)
        assert (where, status) == (False, "cancelled")  # before: (True, 'queued'), the replica's
    finally:
        await session.close()


async def test_the_stale_mark_is_the_age_of_the_data_read_not_the_lag_now(replica_db):
    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    session = await session_on(replica_db.primary, replica_db.replica, replica_stale_s=1)
    assert session.replica is not None
    try:
        await on_the_replica(session)
        replica_db.pause()
        add_tasks(replica_db.primary, 1)
        assert await wait_for(lambda: (session.replica.lag_s or 0) >= 3), session.replica.lag_s
        assert await session.read(task_count) == 3  # from the replica, ≥ 3 s behind
        assert session.reads_shown()[1].startswith("data "), session.reads_shown()
        session.replica.max_lag_s = 2  # reads leave the replica now …
        assert await wait_for(lambda: session.reads_shown()[0].startswith("reads: primary (replica lag"))
        # … and the data last read is still the replica's: still marked (before: gone).
        assert session.reads_shown()[1].startswith("data "), session.reads_shown()
        assert await session.read(task_count) == 4  # the primary's: fresh
        assert session.reads_shown()[1] == ""
    finally:
        await session.close()


async def test_the_read_dsns_failure_says_its_cause(replica_db):
    missing = make_conninfo(replica_db.replica, dbname="no_such_database")
    session = await session_on(replica_db.primary, missing)
    try:
        assert await wait_for(lambda: "does not exist" in session.reads_shown()[0]), session.reads_shown()
        assert session.reads_shown()[0].startswith("reads: primary (replica unreachable: ")
        assert "no_such_database" in session.reads_shown()[0]
    finally:
        await session.close()


class FreezingProxy:
    """Forwards to a server until `freeze()`: then nothing more goes either way, and the
    connections stay open (a SIGSTOPped server as its clients see it)."""

    def __init__(self, port: int) -> None:
        self.upstream, self.port = port, free_port()
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.socks: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.frozen.is_set():
                    return
                dst.sendall(data)
        except OSError:
            return

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        for s in self.socks:
            s.close()


async def test_closing_does_not_wait_on_a_frozen_replica(replica_db):
    proxy = FreezingProxy(replica_db.pair.standby.port)
    session = await session_on(replica_db.primary, replica_db.through("127.0.0.1", proxy.port))
    try:
        await on_the_replica(session)
        proxy.freeze()
        await asyncio.sleep(1.5)  # a check is under way on the frozen replica
        # No wall-clock threshold here (the suite asserts behaviour): closing returns while the
        # replica stays frozen, and leaves no pool behind. Measured by hand: ~11 s before the
        # bounded close (keepalives), ≤ 1 s after.
        await asyncio.wait_for(session.close(), timeout=60)
        assert session.pool is None
    finally:
        proxy.close()


async def test_at_80_columns_alerts_and_expired_leases_come_before_the_replica_words(replica_db):
    from fsar_tui.widgets.status_header import StatusHeader

    add_tasks(replica_db.primary, 3)
    replica_db.wait_caught_up()
    app = make_app(replica_db.primary, read_dsn=replica_db.replica, replica_stale_s=1)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await replica_reading(pilot, app), shown(app)
        replica_db.pause()
        add_tasks(replica_db.primary, 1)
        assert await until(pilot, lambda: "replay paused" in app.session.reads_shown()[0], tries=600)
        await app.session.read(task_count)  # data read from the replica, behind: the stale mark
        app.alerts, app.stuck = (3, 0), 2
        app.update_headers()
        header = app.screen.query_one(StatusHeader)
        assert await until(pilot, lambda: "s old" in header.reads_stale, tries=600), header.reads_stale

        def first_line() -> str:
            return str(header.render()).splitlines()[0][: header.content_size.width]

        assert await until(pilot, lambda: "replica" in first_line()), first_line()
        line = first_line()
        assert "ALERTS: 3 firing" in line and "2 LEASE EXPIRED" in line, line
        assert "replica" in line and "reads: replica, lag" not in line, line  # the short words
        # The primary away too: one "data N s old", the replica's.
        header.state, header.since = "reconnecting", time.monotonic() - 30
        assert str(header.render()).count("s old") == 1, str(header.render())
        replica_db.resume()
