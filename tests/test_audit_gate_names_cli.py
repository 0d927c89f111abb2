"""A gate whose name and scope an attacker wrote (a line break, an ESC sequence, a
quote and a brace), through every `fsar-tui audit` command that prints it: each line
that shows the gate shows it on that one line (the break as ␤, the escape gone), one
line per gate, nothing raw reaching the terminal."""

from __future__ import annotations

import json

from fsar_tui.domain.sanitize import NEWLINE_MARK, has_unsafe
from test_gates import finished_tasks

NAME = 'g\x1b[31mX\nY"}'
SCOPE_TYPE = "t\x1b[31mA\nB"
SHOWN_NAME = f'gX{NEWLINE_MARK}Y"}}'  # what one_line makes of it
SHOWN_TYPE = f"task_type=tA{NEWLINE_MARK}B"


def clean(proc) -> list[str]:
    """The command's stdout lines, after checking neither stream holds anything raw."""
    for stream in (proc.stdout, proc.stderr):
        assert "\x1b" not in stream and not has_unsafe(stream), repr(stream)
        assert not any(line.startswith(('Y"}', "B")) for line in stream.splitlines()), repr(stream)
    return proc.stdout.splitlines()


def test_a_hostile_gate_name_and_scope_stay_on_one_line(db_dsn, run_cli):
    finished_tasks(db_dsn, SCOPE_TYPE, 30, status="failed")  # the gate fails: its stderr line and override too
    dsn = ["--dsn", db_dsn]
    added = run_cli(
        "audit", "gate", "add", NAME, "--metric", "failure_rate", "--pass-if", "<= 0.5", "--window", "1h",
        "--type", SCOPE_TYPE, "--hard", "--reason", "attack", *dsn,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    hard = "(hard: a failure blocks execution in its scope)"
    assert clean(added) == [f"gate {SHOWN_NAME} added: passes while failure_rate <= 0.5 over 1h {hard}"]

    ran = run_cli("audit", "run", *dsn)
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    verdicts = json.loads(run_cli("audit", "gates", "--format", "json", *dsn).stdout)
    gate_lines = [line for line in clean(ran) if line.startswith(("PASS", "FAIL", "INCONCLUSIVE", "ERROR"))]
    assert len(gate_lines) == len([g for g in verdicts if g["enabled"]]), ran.stdout  # one line per enabled gate
    ours = [line for line in gate_lines if SHOWN_NAME in line]
    assert len(ours) == 1 and ours[0].startswith("FAIL") and f"scope {SHOWN_TYPE}" in ours[0], ran.stdout
    assert len(ran.stderr.splitlines()) == 1 and SHOWN_NAME in ran.stderr, ran.stderr

    listed = run_cli("audit", "gates", *dsn)
    assert listed.returncode == 0, listed.stderr
    lines = clean(listed)
    assert len(lines) == len(verdicts) and NAME in [g["name"] for g in verdicts], lines  # built-ins too
    ours = [line for line in lines if SHOWN_NAME in line]
    assert len(ours) == 1 and ours[0].startswith(SHOWN_NAME) and f"scope {SHOWN_TYPE} ·" in ours[0], lines

    overridden = run_cli("audit", "override", NAME, "--reason", "attack", *dsn)
    assert overridden.returncode == 0, overridden.stderr
    assert clean(overridden) == [f"gate {SHOWN_NAME} overridden until it passes again"]

    changed = run_cli("audit", "gate", "set", NAME, "--soft", "--reason", "attack", *dsn)
    assert changed.returncode == 0, changed.stderr
    assert clean(changed) == [f"gate {SHOWN_NAME}: failure_rate <= 0.5, soft, enabled"]


def test_an_error_quoting_a_hostile_gate_name_is_one_line(db_dsn, run_cli):
    """db/gates' refusals quote the name as given: cli._report prints every error on one line."""
    dsn = ["--dsn", db_dsn]
    added = run_cli(
        "audit", "gate", "add", NAME, "--metric", "failure_rate", "--pass-if", "<= 0.5", "--window", "1h",
        "--reason", "attack", *dsn,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    refused = run_cli("audit", "override", NAME, "--reason", "attack", *dsn)  # it blocks nothing: refused
    assert refused.returncode != 0
    assert len(refused.stderr.splitlines()) == 1 and SHOWN_NAME in refused.stderr, repr(refused.stderr)
    assert "\x1b" not in refused.stderr
