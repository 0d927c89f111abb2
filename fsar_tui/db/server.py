"""Facts about the server we are connected to (sync and async twins)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from fsar_tui.db.rows import one

SERVER_FACTS_SQL = """
    SELECT current_setting('server_version') AS version,
           current_setting('server_version_num')::int AS version_num,
           current_user AS role,
           current_database() AS database,
           pg_is_in_recovery() AS in_recovery
"""


@dataclass(frozen=True)
class ServerFacts:
    version: str
    version_num: int
    role: str
    database: str
    in_recovery: bool


def server_facts(conn: psycopg.Connection) -> ServerFacts:
    return ServerFacts(*one(conn.execute(SERVER_FACTS_SQL).fetchone()))


async def aserver_facts(conn: psycopg.AsyncConnection) -> ServerFacts:
    cur = await conn.execute(SERVER_FACTS_SQL)
    return ServerFacts(*one(await cur.fetchone()))
