"""End to end, issue 16's `:` command mode in a real terminal (tmux) at 80×24: on
screen 2 the `:` line shows the colon, what is typed and the suggested completion on
one row, with the key bar under it naming ⏎, esc, tab and ↑ and keeping q / ? (for
after esc); Tab completes on screen, ↑ recalls on screen, and the command runs."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from support.terminal import start_app, tmux, wait_for, wait_until

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.services,
]  # a terminal


def rows(session: str) -> list[str]:
    return tmux("capture-pane", "-p", "-t", session).splitlines()


def prompt_row(session: str) -> str:
    """The row above the key bar, where the `:` line is."""
    return rows(session)[-2].strip()


def test_the_command_line_is_visible_on_screen_2_at_80x24(db_dsn, isolated_env):
    session = start_app(db_dsn, isolated_env)
    try:
        tmux("resize-window", "-t", session, "-x", "80", "-y", "24")
        size = tmux("display-message", "-p", "-t", session, "#{window_width}x#{window_height}").strip()
        assert size == "80x24"
        wait_for(session, "connected")
        tmux("send-keys", "-t", session, "2")
        wait_for(session, "type × model groups")
        tmux("send-keys", "-t", session, ":")
        # Typed once the line is open: keys in the same burst as `:` go to the screen underneath
        # (the app's `:` is not a priority binding; the queue's own is, see screens/queue.py).
        wait_until(lambda: prompt_row(session).startswith(":queue status=failed"), "the open `:` line")
        tmux("send-keys", "-t", session, "prof")
        wait_until(lambda: prompt_row(session) == ":profiles", "':prof' and its suggestion 'iles' on screen")
        keys = rows(session)[-1]
        for hint in ("⏎  Run", "esc  Back", "tab  Complete", "↑  History", "q  Quit", "?  Help"):
            assert hint in keys, "\n".join(rows(session))
        assert len(rows(session)) == 24
        tmux("send-keys", "-t", session, "Tab", "12h")
        wait_until(lambda: prompt_row(session) == ":profiles 12h", "the completed word and the window typed after it")
        tmux("send-keys", "-t", session, "Enter")
        wait_for(session, "window 12h")
        tmux("send-keys", "-t", session, ":")
        wait_until(lambda: prompt_row(session).startswith(":queue status=failed"), "the open `:` line")
        tmux("send-keys", "-t", session, "Up")
        wait_until(lambda: prompt_row(session) == ":profiles 12h", "the recalled command on screen")
        tmux("send-keys", "-t", session, "Escape")
        wait_until(lambda: rows(session)[-1].lstrip().startswith("q  Quit  ?  Help"), "the screen's key bar again")
        tmux("send-keys", "-t", session, "q")
        wait_for(session, "EXITED-0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
