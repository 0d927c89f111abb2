"""Read-only mode holds in the database layer, not only in the screens' keys (the attack on
issue 20: a read-only browser session's connections wrote freely — psycopg's read_only does
not apply to autocommit statements — and Session.write did not refuse)."""

from __future__ import annotations

import psycopg
import pytest

from fsar_tui.config import Settings
from fsar_tui.errors import UsageError
from fsar_tui.session import Session


def _write(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TEMP TABLE sneaky (x int)")


async def test_a_read_only_session_refuses_writes_and_its_reads_cannot_write(db_dsn):
    session = Session(db_dsn, Settings(dsn=db_dsn, read_only=True))
    with pytest.raises(UsageError, match="read-only"):
        await session.write(_write)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        await session.read_sync(_write)


async def test_reads_of_a_writing_session_are_read_only_too(db_dsn):
    session = Session(db_dsn, Settings(dsn=db_dsn))
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        await session.read_sync(_write)
