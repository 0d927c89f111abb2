"""After a database restart the session — and so the header — is "connected" as soon as the
live source has reconnected, not when the pool's own reconnect attempts get round to it
(issue 16 point 9: the header said RECONNECTING 30–40 s after the live source was back).

The restart is a proxy in the test process whose path to the server is cut and then
restored (support/cut_proxy.py): every connection through it closed, new ones refused.
psycopg_pool retries each lost connection 1, 2, 4, 8, 16 s … apart; the test waits until
the app's pool has failed five times per connection, so its next try is some 16 s off,
then restores the path and asserts the order of events: when the live source (NOTIFY,
whose reconnect backoff is capped at 5 s) says it is connected again, the session
already is. No clock is read.
"""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fsar_tui.screens.queue import QueueScreen
from fsar_tui.widgets.status_header import StatusHeader
from support.cut_proxy import CutProxy
from support.pilot import live_connected, make_app, table, until
from support.sql import x

pytestmark = pytest.mark.services

RETRIES_PER_CONNECTION = 5  # the pool's next try is then 2**5 - 1 - (2**4 - 1) = 16 s (±10 %) off


@pytest.fixture
def proxy(db_dsn):
    params = conninfo_to_dict(db_dsn)
    p = CutProxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    try:
        yield p, make_conninfo(db_dsn, host="127.0.0.1", port=str(p.port))
    finally:
        p.close()


def pool_stats(app) -> dict[str, int]:
    return app.session.pool.get_stats()


async def test_the_session_is_connected_as_soon_as_the_live_source_is_back(db_dsn, proxy):
    p, dsn = proxy
    x(db_dsn, "INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, 5)")
    app = make_app(dsn)  # live="notify": its source reconnects on its own, through the proxy
    async with app.run_test(size=(160, 48)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 5)
        assert await until(pilot, lambda: live_connected(app) and app.session.state == "connected")
        header = app.screen.query_one(StatusHeader)
        failing = app.session.pool
        errors = pool_stats(app).get("connections_errors", 0)

        p.cut()
        app.screen.dirty = True  # the screen reads, and meets the cut
        assert await until(
            pilot, lambda: app.session.state == "reconnecting" and app.live.source.state == "reconnecting", tries=600
        )
        assert await until(pilot, lambda: "RECONNECTING" in str(header.render()))
        # Every connection of the pool started retrying together; wait until each has
        # failed RETRIES_PER_CONNECTION times, so the pool's next try is far off.
        assert await until(
            pilot,
            lambda: (
                app.session.pool is failing
                and pool_stats(app)["connections_errors"] - errors
                >= RETRIES_PER_CONNECTION * pool_stats(app)["pool_size"]
            ),
            tries=800,
        ), pool_stats(app)

        p.restore()
        assert await until(pilot, lambda: live_connected(app), tries=400)
        # The live source's reconnect proved the database reachable: the session follows
        # at once, not at the failing pool's next scheduled try.
        assert app.session.state == "connected"
        assert await until(pilot, lambda: header.state == "connected" and "RECONNECTING" not in str(header.render()))
        # …and the screens read again, on a fresh pool (the failing one is closed).
        x(db_dsn, "INSERT INTO execution_tasks (task_type) VALUES ('after_restart')")
        app.screen.dirty = True
        assert await until(pilot, lambda: len(table(app).keys) == 6, tries=200)
        assert app.session.pool is not failing and failing.closed
        assert app.session.state == "connected"
