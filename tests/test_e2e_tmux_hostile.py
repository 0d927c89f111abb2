"""End to end, in a real terminal: the app over the hostile fixture (support/hostile.py)
in tmux, with tmux's clipboard integration on (`set-clipboard on`: an OSC 52 the app
let through would become a paste buffer), every screen visited, and every byte the app
wrote to the pane recorded (`pipe-pane`). Nothing but the sequences Textual draws with
may be in that record: no OSC (but Textual's pointer shape, OSC 22), no DCS, no C1, no bidi or invisible format
character; tmux gains no paste buffer; the app is still running at the end.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from support.hostile import populate, unsafe_in
from support.terminal import start_app, tmux, wait_for

pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"), pytest.mark.services]


def buffers() -> set[str]:
    out = subprocess_out("list-buffers", "-F", "#{buffer_name}")
    return set(out.split())


def subprocess_out(*args: str) -> str:
    try:
        return tmux(*args)
    except Exception:  # no buffers yet: tmux exits 1 on an empty list in some versions
        return ""


def test_hostile_data_in_a_real_terminal_writes_nothing_but_drawing(db_dsn, isolated_env, tmp_path: Path):
    populate(db_dsn)
    record = tmp_path / "pane.raw"
    session = start_app(db_dsn, isolated_env, wait_s=2)  # the app starts once this is set up:
    try:
        tmux("set-option", "-s", "set-clipboard", "on")  # (a server option: needs the server up)
        before = buffers()
        tmux("pipe-pane", "-t", session, "-o", f"cat >> '{record}'")
        wait_for(session, "matching", timeout=60)
        for key, needle in (("G", None), ("g", None), ("Enter", "timing"), ("Escape", "matching"),
                            ("2", "percentiles within"), ("3", None), ("4", "target(s)"), ("5", None),
                            ("Enter", None), ("Escape", None), ("1", "matching")):  # fmt: skip
            tmux("send-keys", "-t", session, key)
            if needle:
                wait_for(session, needle, timeout=60)
            time.sleep(1.0)
        screen = tmux("capture-pane", "-p", "-t", session)
        assert "EXITED-" not in screen and "Traceback" not in screen, screen
    finally:
        tmux("kill-session", "-t", session)
    raw = record.read_bytes().decode("utf-8", errors="replace")
    assert len(raw) > 10_000  # the record holds the session's drawing
    assert "\x1b]52" not in raw and "\x9d" not in raw  # no clipboard write, no 8-bit OSC
    assert unsafe_in(raw, ui=True) == []  # nor any other OSC but the pointer shape, nor anything unsafe
    assert buffers() - before == set()
