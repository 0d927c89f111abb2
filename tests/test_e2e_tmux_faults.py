"""End to end, in a real terminal: the app's role loses its privileges while the app runs
and gets them back — the screen says what fails, in words, the app does not exit, and it
recovers by itself (the Pilot twin is tests/test_screen_faults.py)."""

from __future__ import annotations

import shutil
import time

import pytest
from psycopg.conninfo import conninfo_to_dict

from support.screen import shows
from support.sql import x
from support.terminal import start_app, tmux, wait_for

pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"), pytest.mark.services]


def wait_gone(session: str, needle: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        if not shows(screen, needle):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never went away; screen was:\n{screen}")


def test_privileges_revoked_and_granted_while_the_app_runs(db_dsn, login, isolated_env):
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model) SELECT 'implement_idea', 'gpt-4o' "
        "FROM generate_series(1, 30)",
    )
    role_dsn = login("fsar_operator")
    role = conninfo_to_dict(role_dsn)["user"]
    session = start_app(role_dsn, isolated_env)
    try:
        wait_for(session, "30 matching")
        x(db_dsn, f"REVOKE fsar_operator FROM {role}")
        screen = wait_for(session, "permission denied for table")
        assert "Traceback" not in screen and "EXITED-" not in screen
        x(db_dsn, "INSERT INTO execution_tasks (task_type) VALUES ('after_revoke')")
        x(db_dsn, f"GRANT fsar_operator TO {role}")
        screen = wait_gone(session, "permission denied")
        wait_for(session, "31 matching")
        assert "EXITED-" not in tmux("capture-pane", "-p", "-t", session)
    finally:
        tmux("kill-session", "-t", session)
