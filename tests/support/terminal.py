"""Driving the real `fsar-tui` in a real terminal (tmux) for the end-to-end tests.

Text is looked for in the captured screen as the app wrote it, wherever the layout
wrapped it (support/screen.py). Every session has a name of its own, so tests running
at the same time (xdist workers) share the tmux server without meeting.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from support.screen import shows


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def start_app(dsn: str, isolated_env: dict[str, str], *, wait_s: float = 0) -> str:
    """A new 100×30 tmux session running the app against dsn; its name.

    COLUMNS and LINES are unset for the app: a tmux server started from a process that
    set them (importing readline sets 80×24 without a terminal, as under pytest) hands
    them to its windows, and the app would then draw 80 columns of the 100. `wait_s`:
    how long the pane waits before starting the app (time to attach `pipe-pane`)."""
    session = f"fsar-e2e-{uuid.uuid4().hex[:6]}"
    keys = [k for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "PYTHONPATH") if k in isolated_env]
    env_args = [arg for key in keys for arg in ("-e", f"{key}={isolated_env[key]}")]
    app = f"{sys.executable} -m fsar_tui --dsn '{dsn}' --live poll"
    command = f"unset COLUMNS LINES; sleep {wait_s:g}; {app}; echo EXITED-$?; sleep 30"
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", *env_args, command)
    return session


def wait_for(session: str, needle: str, timeout: float = 30) -> str:
    """The screen once it shows needle (wraps and borders normalised)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        if shows(screen, needle):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared; screen was:\n{screen}")


def cursor(session: str) -> tuple[int, int]:
    """Where the app put the terminal's (hidden) cursor: Textual keeps it on the focused field's cursor."""
    x, y = tmux("display-message", "-p", "-t", session, "#{cursor_x} #{cursor_y}").split()
    return int(x), int(y)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
