"""End to end, issue 19's canary keys in a real terminal (tmux) at 80×24: the real
`fsar-tui` on a database with a running canary (started with `rollouts deploy`), screen
4 shows its line; `A`, the target's name typed, a reason: the screen says it is aborted,
and so does `rollouts canary status --format json` (support/terminal.py drives tmux)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from support.screen import shows
from support.terminal import cursor, start_app, tmux, wait_for, wait_until
from test_canary_screen import TARGET, deploy

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.services,
]  # a terminal


def test_a_canary_is_aborted_from_the_keyboard_at_80x24(rollout_db, run_cli, isolated_env, tmp_path):
    deploy(run_cli, rollout_db, tmp_path)
    session = start_app(rollout_db, isolated_env)
    try:
        tmux("resize-window", "-t", session, "-x", "80", "-y", "24")
        assert tmux("display-message", "-p", "-t", session, "#{window_width}x#{window_height}").strip() == "80x24"
        wait_for(session, "connected")
        tmux("send-keys", "-t", session, "4")
        wait_for(session, "canaries · 1 running")
        wait_for(session, f"{TARGET} · canary 1 running")
        tmux("send-keys", "-t", session, "A")
        wait_for(session, "Type the target's name")
        screen = wait_for(session, "abort: 20 % → 0 %")  # what the move does, first
        screen = wait_for(session, "why")  # the reason field's placeholder
        reason_row = next(i for i, line in enumerate(screen.splitlines()) if " why " in f"{line} ")
        tmux("send-keys", "-t", session, TARGET, "Enter")
        # Keys go to the field focused when they arrive: type the reason once the
        # terminal's cursor (the focused field's) is on the reason field's row.
        wait_until(lambda: cursor(session)[1] == reason_row, "the focus to move to the reason field")
        tmux("send-keys", "-t", session, "p90 doubled on the canary", "Enter")
        screen = wait_for(session, f"{TARGET} · canary 1 ABORTED")  # the panel
        assert shows(screen, "ended") and shows(screen, "p90 doubled on the canary"), screen
        wait_for(session, f"BLOCKED · 4 Audit · canary {TARGET} aborted: p90")  # the banner
        assert len(tmux("capture-pane", "-p", "-t", session).splitlines()) == 24
        tmux("send-keys", "-t", session, "q")
        wait_for(session, "EXITED-0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    out = run_cli("rollouts", "canary", "status", "--format", "json", "--dsn", rollout_db)
    assert out.returncode == 0, out.stderr
    (canary,) = json.loads(out.stdout)
    assert (canary["state"], canary["weight"], canary["end_reason"]) == ("aborted", 0, "p90 doubled on the canary")
