"""The async data layer: pool with statement timeout, read-only, and failure messages."""

from __future__ import annotations

import psycopg
import pytest

from fsar_tui.db.connect import aconnect, open_pool
from fsar_tui.db.server import aserver_facts
from fsar_tui.errors import ConnectionFailed


async def test_pool_sets_statement_timeout_and_application_name(db_dsn):
    pool = await open_pool(db_dsn, statement_timeout_ms=250)
    try:
        async with pool.connection() as conn:
            facts = await aserver_facts(conn)
            assert facts.version_num >= 140000
            cur = await conn.execute("SELECT current_setting('statement_timeout'), current_setting('application_name')")
            assert await cur.fetchone() == ("250ms", "fsar-tui")
        with pytest.raises(psycopg.errors.QueryCanceled):
            async with pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(2)")
    finally:
        await pool.close()


async def test_read_only_pool_is_refused_writes_by_postgres(db_dsn):
    pool = await open_pool(db_dsn, statement_timeout_ms=1000, read_only=True)
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            async with pool.connection() as conn:
                await conn.execute("INSERT INTO execution_tasks (task_type) VALUES ('x')")
    finally:
        await pool.close()


async def test_pool_to_refused_port_fails_with_one_line():
    with pytest.raises(ConnectionFailed) as err:
        await open_pool("postgresql://u:secret@127.0.0.1:1/db", statement_timeout_ms=100, wait_timeout=2)
    assert (
        err.value.message
        == "cannot connect to 127.0.0.1:1/db: connection refused (is the server running and listening there?)"
    )


async def test_aconnect_missing_database(server_dsn):
    with pytest.raises(ConnectionFailed, match="database fsar_nope does not exist"):
        await aconnect(psycopg.conninfo.make_conninfo(server_dsn, dbname="fsar_nope"))
