"""End to end: the real `fsar-tui` in a real terminal (tmux), driven by keystrokes
(support/terminal.py). Text is looked for in the captured screen as the app wrote it,
wherever the layout wrapped it (support/screen.py: whitespace, line wraps and box
borders normalised)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from support.rollouts import active, revisions  # rollout_db: a fixture in conftest.py
from support.screen import shows
from support.sql import q
from support.terminal import cursor, start_app, tmux, wait_for, wait_until

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.services,
]  # a terminal


@pytest.mark.slow
def test_real_app_in_tmux_against_a_seeded_database(run_cli, db_dsn, isolated_env, tmp_path):
    seeded = run_cli("seed", "--days", "2", "--tasks", "2000", "--seed", "5", "--dsn", db_dsn)  # 4 failed among them
    assert seeded.returncode == 0, seeded.stderr
    session = start_app(db_dsn, isolated_env)
    try:
        screen = wait_for(session, "2,000 matching")
        assert shows(screen, "connected") and shows(screen, "live: poll") and shows(screen, "running")
        tmux("send-keys", "-t", session, "/", "status:failed", "Enter")
        wait_for(session, "filter: status:failed")
        deadline = time.monotonic() + 20
        while True:  # the table follows the status line once the query returns
            rows = [
                line.split()
                for line in tmux("capture-pane", "-p", "-t", session).splitlines()
                if line.strip()[:1].isdigit()
            ]
            statuses = {row[1] for row in rows if len(row) > 1}
            if statuses == {"failed"} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert statuses == {"failed"}
        tmux("send-keys", "-t", session, "2")
        wait_for(session, "type × model groups")  # the profiles screen, from the seeded history's rollups
        wait_for(session, "p90 per day")
        tmux("send-keys", "-t", session, "3")
        wait_for(session, "attribution: equal split")  # the ROI screen
        wait_for(session, "net ")
        tmux("send-keys", "-t", session, "4")
        wait_for(session, "every rollback ready")  # the seeded rollout targets, rehearsed
        tmux("send-keys", "-t", session, "1")
        wait_for(session, "filter: status:failed")
        # Command mode typed in one burst, as it arrives over SSH.
        tmux("send-keys", "-t", session, ":queue status:succeeded type:implement_idea", "Enter")
        wait_for(session, "filter: status:succeeded type:implement_idea")
        tmux("send-keys", "-t", session, "q")
        wait_for(session, "EXITED-0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_keyboard_rollback_in_the_running_app(rollout_db, isolated_env):
    """Screen 4, `R`, type the target's name and a reason: the database has the new revision."""
    session = start_app(rollout_db, isolated_env)
    try:
        wait_for(session, "connected")
        tmux("send-keys", "-t", session, "4")
        wait_for(session, "every rollback ready")
        tmux("send-keys", "-t", session, "R")
        wait_for(session, "Type the target's name")
        screen = wait_for(session, "copying revision 1")  # a loaded machine may paint the dialog in two frames
        assert shows(screen, "revision 2 (active)") and shows(screen, "copying revision 1")  # the line may wrap
        screen = wait_for(session, "why")  # the reason field's placeholder
        reason_row = next(i for i, line in enumerate(screen.splitlines()) if " why " in f"{line} ")
        tmux("send-keys", "-t", session, "prompt/implement_idea", "Enter")
        # Textual hands keys to the widget focused when they arrive: text typed ahead of
        # the focus move to the reason field would land in the name field (the dialog then
        # refuses the name rather than guess). The terminal cursor follows the focused
        # field's cursor: type the reason once it is on the reason field's row.
        wait_until(lambda: cursor(session)[1] == reason_row, "the focus to move to the reason field")
        tmux("send-keys", "-t", session, "v8 prompt breaks the PR tests", "Enter")
        wait_for(session, "is active")
        tmux("send-keys", "-t", session, "q")
        wait_for(session, "EXITED-0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert active(rollout_db) == 3
    assert revisions(rollout_db)[-1][3] == 1
    assert q(rollout_db, "SELECT action, reason FROM operator_actions") == [
        ("rollback", "v8 prompt breaks the PR tests")
    ]


def test_a_blocking_proposal_is_lifted_from_the_keyboard(db_dsn, run_cli, isolated_env, tmp_path):
    """The banner on screen 1, screen 5, `L`, a reason: the block is gone from the database and the screen."""
    from test_proposals import report, write

    path = write(tmp_path, "block.txt", report("fsar_e2e", severity=9, block="true", task_type="self_improvement"))
    assert run_cli("ingest-fsar", str(path), "--dsn", db_dsn).returncode == 0
    session = start_app(db_dsn, isolated_env)
    try:
        wait_for(
            session, "BLOCKED · 5 Proposals · FSAR proposal fsar_e2e stops self_improvement: severity 9"
        )  # on screen 1
        tmux("send-keys", "-t", session, "5")
        wait_for(session, "BLOCKS self_improvement")
        tmux("send-keys", "-t", session, "L")
        wait_for(session, "Reason (recorded in operator_actions)")
        tmux("send-keys", "-t", session, "fix verified in staging", "Enter")
        wait_for(session, "block lifted")
        wait_for(session, "none blocking")
        deadline = time.monotonic() + 10
        while shows(tmux("capture-pane", "-p", "-t", session), "BLOCKED ") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not shows(tmux("capture-pane", "-p", "-t", session), "BLOCKED ")  # the banner went with the block
        tmux("send-keys", "-t", session, "q")
        wait_for(session, "EXITED-0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert q(db_dsn, "SELECT ref FROM execution_blocks WHERE source = 'proposal'") == []
    assert q(db_dsn, "SELECT action, reason FROM operator_actions WHERE action = 'proposal.lift_block'") == [
        ("proposal.lift_block", "fix verified in staging")
    ]
