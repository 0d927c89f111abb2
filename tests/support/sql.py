"""Two-line helpers for tests that check the database directly."""

from __future__ import annotations

import psycopg


def q(dsn: str, sql: str, params=None) -> list[tuple]:
    """Rows of one query, in its own transaction."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def x(dsn: str, sql: str, params=None) -> None:
    """Run one statement in autocommit."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql, params)
