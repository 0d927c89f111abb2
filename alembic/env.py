"""Alembic environment for fsar-tui.

fsar-tui drives Alembic through its Python API (`fsar_tui/db/migrations.py`) and hands
it an open SQLAlchemy connection in `config.attributes["connection"]`, already inside
the single transaction that also holds the migration lock and the legacy preflight: an
upgrade either lands completely or not at all (PostgreSQL DDL is transactional).

For developers, `alembic -c alembic.ini upgrade head` from the repo root also works
with FSAR_DSN set. SQLAlchemy is only Alembic's engine here; the app itself uses psycopg.
"""

from __future__ import annotations

import os

from alembic import context


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    dsn = os.environ.get("FSAR_DSN")
    if not dsn:
        raise SystemExit("set FSAR_DSN or use `fsar-tui migrate`")
    from fsar_tui.db.migrations import sqlalchemy_engine

    with sqlalchemy_engine(dsn).begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported; use `fsar-tui migrate`")
run_migrations_online()
