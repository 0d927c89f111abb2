"""A server that stops answering — a TCP black hole: packets dropped, no RST, no FIN — is
detected by the connections' TCP keepalives and user timeout (db/connect.py KEEPALIVES),
and the app's pooled read fails with an error the session counts as "unavailable"
instead of waiting for TCP's retransmissions (~15 min) while the header says
"connected" over frozen data (found by the review: ~45 s of it).

The black hole is a proxy in the test process whose sockets drop every incoming packet
(support/tcp_proxy.py): its kernel acknowledges nothing and answers no keepalive probe.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fsar_tui.config import Settings
from fsar_tui.db.connect import KEEPALIVES, UNAVAILABLE_ERRORS, conninfo, open_pool
from fsar_tui.errors import ConnectionFailed
from fsar_tui.session import Session
from support.tcp_proxy import BlackHoleProxy

# Not a performance bound: "fails rather than hangs". Detection takes ~11 s here.
GUARD_S = 60


def test_conninfo_adds_keepalives_and_a_user_timeout_and_the_dsn_wins():
    params = conninfo_to_dict(conninfo("postgresql://u@db.example:5432/app"))
    assert {k: int(params[k]) for k in KEEPALIVES} == {
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }
    own = conninfo_to_dict(conninfo("postgresql://u@db.example/app?keepalives_idle=30&tcp_user_timeout=0"))
    assert (own["keepalives_idle"], own["tcp_user_timeout"], own["keepalives_count"]) == ("30", "0", "3")
    # Straight to the server the settings ride in the startup options; behind a pooler, not.
    assert (
        "-c statement_timeout=5000 -c jit=off"
        in conninfo_to_dict(conninfo("host=h", statement_timeout_ms=5000))["options"]
    )
    assert "options" not in conninfo_to_dict(conninfo("host=h", statement_timeout_ms=5000, pooled=True))


@pytest.fixture
def proxy(db_dsn):
    params = conninfo_to_dict(db_dsn)
    p = BlackHoleProxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    try:
        yield p, make_conninfo(db_dsn, host="127.0.0.1", port=str(p.port))
    finally:
        p.close()


async def test_a_read_in_flight_when_the_server_goes_silent_fails_as_unavailable(proxy):
    p, dsn = proxy
    session = Session(dsn, Settings(dsn=dsn, statement_timeout_ms=5000))
    session.pool = await open_pool(dsn, statement_timeout_ms=5000, max_size=1)

    async def one(conn):
        cur = await conn.execute("SELECT 1")
        return await cur.fetchone()

    async def slow(conn):
        await conn.execute("SELECT pg_sleep(1)")  # asked and acknowledged; the answer never comes

    try:
        assert await session.read(one) == (1,) and session.state == "connected"
        reading = asyncio.create_task(session.read(slow))
        await asyncio.sleep(0.3)
        p.black_hole()
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError) as err:
            await asyncio.wait_for(reading, GUARD_S)  # TimeoutError here would be the old hang
        assert isinstance(err.value, UNAVAILABLE_ERRORS)
        assert session.state == "reconnecting"
        # The next read meets a silent server too (new connections time out): unavailable
        # again, in words, never a hang.
        with pytest.raises((ConnectionFailed, *UNAVAILABLE_ERRORS)):
            await asyncio.wait_for(session.read(one), GUARD_S)
        assert session.state == "reconnecting"
        assert time.monotonic() - started < 2 * GUARD_S
    finally:
        pool, session.pool = session.pool, None
        await asyncio.wait_for(pool.close(timeout=1), GUARD_S)


async def test_an_idle_pooled_connection_to_a_silent_server_fails_the_next_read_as_unavailable(proxy):
    p, dsn = proxy
    session = Session(dsn, Settings(dsn=dsn, statement_timeout_ms=5000))
    session.pool = await open_pool(dsn, statement_timeout_ms=5000, max_size=1)

    async def one(conn):
        cur = await conn.execute("SELECT 1")
        return await cur.fetchone()

    try:
        assert await session.read(one) == (1,)
        p.black_hole()  # while the connection sits in the pool
        with pytest.raises((ConnectionFailed, *UNAVAILABLE_ERRORS)):
            await asyncio.wait_for(session.read(one), GUARD_S)
        assert session.state == "reconnecting"
    finally:
        pool, session.pool = session.pool, None
        await asyncio.wait_for(pool.close(timeout=1), GUARD_S)
