"""Every CLI command against the hostile fixture (support/hostile.py): whatever the
agents and operators wrote, no control, ESC, bidi or invisible format character
reaches the terminal (stdout or stderr), no command crashes ("internal error") and
every exit code is a documented one.

The command table must name every subcommand the parser has (a new command without a
hostile run fails `test_every_command_is_covered`); the few that cannot run here say why.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import create_database, drop_database
from fsar_tui.cli import build_parser
from support.hostile import HOSTILE, HOSTILE_JSON, SHORT, populate, unsafe_in

pytestmark = pytest.mark.services

R = ["--reason", HOSTILE]
# name → argv after the command words ({task} … filled from the fixture's ids).
COMMANDS: dict[str, list[list[str]]] = {
    "migrate": [[]],
    "db status": [[], ["--format", "json"]],
    "seed": [["--tasks", "20", "--days", "1"]],
    "tasks list": [[], ["--filter", "status:failed"], ["--format", "json"], ["--format", "csv"]],
    "tasks show": [["{task}"], ["{task}", "--format", "json"], ["{big}"], ["{deep}"], ["{long_error}"]],
    "tasks retry": [["{task}", "--dry-run", *R], ["--filter", "status:failed", "--dry-run", *R]],
    "tasks cancel": [["--filter", "status:queued", "--dry-run", *R]],
    "tasks requeue": [["--filter", "status:running", "--dry-run", *R]],
    "profile": [[], ["--by", "model"], ["--format", "csv"], ["--format", "json"]],
    "roi": [[], ["--by", "model"], ["--by", "idea"], ["--by", "rollout"], ["--format", "csv"]],
    "report": [["--format", "md"], ["--format", "csv"], ["--format", "json"]],
    "ingest-stripe": [["{stripe_file}"]],
    "rollouts list": [[]],
    "rollouts verify": [[]],
    "rollback": [["{rollout}", "--dry-run", *R]],
    "rollouts deploy": [["{rollout}", "--artifact", "{artifact_file}", "--canary", "10", "--dry-run", *R]],
    "rollouts canary status": [[], ["{rollout}", "--format", "json"]],
    "rollouts canary analyze": [["{rollout}"], ["{rollout}", "--format", "json"]],
    "rollouts canary promote": [["{rollout}", "--yes", "--from", "10", *R]],
    "rollouts canary abort": [["{rollout}", "--yes", *R]],
    "rollouts evidence": [["{rollout}"], ["{rollout}", "--format", "json"]],
    "audit run": [[], ["--format", "json"]],
    "audit gates": [[]],
    "audit gate add": [
        [
            SHORT,
            "--metric",
            "failure_rate",
            "--pass-if",
            "<= 0.5",
            "--window",
            "1d",
            "--type",
            SHORT,
            "--description",
            HOSTILE,
            *R,
        ]
    ],  # fmt: skip
    "audit gate set": [["{gate}", "--soft", *R]],
    "audit override": [["{gate}", "--for", "1h", *R]],
    "alerts list": [[], ["--format", "json"]],
    "alerts ack": [["{alert}", *R]],
    "log verify": [[]],
    "log list": [[], ["--format", "json"]],
    "ingest-fsar": [["{fsar_file}"]],
    "proposals list": [[]],
    "proposals show": [["{proposal}"], ["{proposal}", "--format", "json"]],
    "proposals tick": [["{proposal}", "1", *R]],
    "proposals untick": [["{proposal}", "1", *R]],
    "proposals accept": [["{proposal}", *R]],
    "proposals implemented": [["{proposal}", *R]],
    "proposals reject": [["{proposal}", *R]],
    "proposals lift": [["{proposal}", *R]],
    "anonymize": [["--older-than", "1d", "--dry-run"]],
    "security-audit": [[]],
    "simulate": [["--workers", "2", "--duration", "2", "--rate", "5"]],
    "retention run": [["--dry-run", "--task-events", "7d", "--tasks", "14d"], ["--tasks", "30d", "--format", "json"]],
    "retention restore": [["{retention_file}"]],
}
NOT_RUN = {
    "demo": "the app on the embedded server: test_hostile_screens drives the app itself",
    "webhook": "a server: its request handling is the ingest-stripe path run above",
    "metrics": "a server (the exporter): tests/test_metrics*.py scrape it with hostile labels",
    "serve": "a server (the app in a browser): tests/test_serve*.py drive it",
}


def subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[str]:
    names = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = subcommands(sub, (*prefix, name))
                names += nested or [" ".join((*prefix, name))]
    return names


def test_every_command_is_covered():
    names = set(subcommands(build_parser()))
    assert names - COMMANDS.keys() - NOT_RUN.keys() == set()
    assert (COMMANDS.keys() | NOT_RUN.keys()) - names == set()


@pytest.fixture(scope="module")
def hostile_db(server_dsn, template_db, tmp_path_factory):
    name = f"hostile_cli_{id(object()):x}"
    dsn = create_database(server_dsn, name, template=template_db)
    ids = populate(dsn)
    files = tmp_path_factory.mktemp("hostile")
    stripe_file = files / "events.jsonl"
    event = {"id": f"evt_{SHORT}", "type": HOSTILE, "created": 1700000000, "data": {"object": HOSTILE_JSON}}
    stripe_file.write_text(json.dumps(event) + "\n" + HOSTILE + "\n")
    fsar_file = files / "report.md"
    fsar_file.write_text(f"# FSAR Proposal Report {HOSTILE}\n\n{HOSTILE}\n")
    retention_file = files / f"{SHORT.replace('/', '_')}.manifest.json"  # a hostile manifest: refused, inertly
    retention_file.write_text(json.dumps({"format": "fsar-tui retention archive", "version": 1, "table": HOSTILE}))
    artifact_file = files / "artifact.json"  # a deployable artifact whose diff shows hostile text
    artifact_file.write_text(json.dumps({"system": HOSTILE * 3, HOSTILE: [HOSTILE], "v": 2}))
    values = {
        "task": str(ids.task),
        "big": str(ids.big),
        "deep": str(ids.deep),
        "long_error": str(ids.long_error),
        "proposal": ids.proposal,
        "alert": str(ids.alert),
        "gate": ids.gate,
        "rollout": ids.rollout,
        "stripe_file": str(stripe_file),
        "fsar_file": str(fsar_file),
        "retention_file": str(retention_file),
        "artifact_file": str(artifact_file),
    }
    try:
        yield dsn, values
    finally:
        drop_database(server_dsn, name)


CASES = [(name, i) for name, runs in COMMANDS.items() for i in range(len(runs))]


@pytest.mark.parametrize(("name", "run"), CASES, ids=[f"{n}#{i}" for n, i in CASES])
def test_command_output_is_inert(name, run, hostile_db, isolated_env, tmp_path: Path):
    dsn, values = hostile_db
    argv = [*name.split(), *(a.format(**values) if a.startswith("{") else a for a in COMMANDS[name][run])]
    done = subprocess.run(
        [sys.executable, "-m", "fsar_tui", *argv, "--dsn", dsn],
        capture_output=True,
        env=isolated_env,
        cwd=tmp_path,
        timeout=300,
    )
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert done.returncode in (0, 1, 2), (done.returncode, err[-2000:])
    assert "internal error" not in err, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert unsafe_in(out) == [], argv[:3]
    assert unsafe_in(err) == [], argv[:3]
    for written in tmp_path.rglob("*"):  # report files and exports land in the cwd
        if written.is_file():
            assert unsafe_in(written.read_text("utf-8", errors="replace")) == [], written.name
