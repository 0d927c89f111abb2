"""Canaries against real PostgreSQL with the real simulator (issue 19, "Done when"): a worse
canary (its artifact's `simulate` multiplier) is aborted by the judge and every task
claimed after the abort runs on stable; an equal canary is promoted through its steps;
both visible in `rollouts canary status --format json` and the operator log."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.rollouts import V2
from support.sql import q, x

pytestmark = pytest.mark.slow

TARGET = "prompt/implement_idea"


def _artifact(tmp_path, name: str, **simulate: float) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({**V2, "prompt_version": name, **({"simulate": simulate} if simulate else {})}))
    return str(path)


def _tasks(dsn: str, n: int) -> None:
    x(
        dsn,
        "INSERT INTO execution_tasks (task_type, ai_model, max_attempts) "
        "SELECT 'implement_idea', 'gpt-4o-mini', 3 FROM generate_series(1, %s)",
        (n,),
    )


def _simulate(dsn: str, env: dict[str, str]) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fsar_tui",
            "simulate",
            "--no-enqueue",
            "--until-idle",
            "--time-scale",
            "0.0005",
            "--workers",
            "8",
            "--seed",
            "7",
        ],
        env={**env, "FSAR_DSN": dsn},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr


def _status(run_cli, dsn: str) -> dict:
    out = run_cli("rollouts", "canary", "status", TARGET, "--format", "json", "--dsn", dsn)
    assert out.returncode == 0, out.stderr
    (canary,) = json.loads(out.stdout)
    return canary


def _deploy(run_cli, dsn: str, artifact: str, steps: str) -> None:
    out = run_cli(
        "rollouts",
        "deploy",
        TARGET,
        "--artifact",
        artifact,
        "--steps",
        steps,
        "--interval",
        "0",
        "--reason",
        "try it",
        "--yes",
        "--dsn",
        dsn,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _rounds(rollout_db, run_cli, isolated_env, *, until: set[str], batch: int, rounds: int) -> dict:
    for _ in range(rounds):
        _tasks(rollout_db, batch)
        _simulate(rollout_db, isolated_env)
        audit = run_cli("audit", "run", "--dsn", rollout_db)
        assert "Traceback" not in audit.stderr, audit.stderr
        status = _status(run_cli, rollout_db)
        if status["state"] in until:
            return status
    return status


def test_a_worse_canary_is_aborted_by_the_judge_and_later_claims_run_on_stable(
    rollout_db, run_cli, isolated_env, tmp_path
):
    _deploy(run_cli, rollout_db, _artifact(tmp_path, "v9-worse", failure_rate_multiplier=4.0), "50,100")
    status = _rounds(rollout_db, run_cli, isolated_env, until={"aborted", "promoted"}, batch=400, rounds=12)
    assert status["state"] == "aborted", status
    assert status["weight"] == 0 and status["ended_by"]
    failure = next(m for m in status["judgement"]["metrics"] if m["metric"] == "failure_rate")
    assert failure["verdict"] == "fail" and failure["effect"] > 1.5
    log = q(
        rollout_db,
        "SELECT action, claimed_os_user, after ->> 'state' FROM operator_actions "
        "WHERE action LIKE 'canary.%%' ORDER BY seq",
    )
    assert log[0][0] == "canary.start"
    assert log[-1] == ("canary.abort", "fsar-tui (canary judge)", "aborted")

    _tasks(rollout_db, 200)
    _simulate(rollout_db, isolated_env)
    revisions = q(
        rollout_db,
        """SELECT rr.revision, count(*) FROM execution_tasks t
           JOIN rollout_revisions rr ON rr.id = t.rollout_revision_id
           WHERE t.started_at > (SELECT ended_at FROM rollout_canaries) GROUP BY 1""",
    )
    assert revisions == [(2, revisions[0][1])] and revisions[0][1] >= 200  # stable only, every claim since


def test_an_equal_canary_is_promoted_through_its_steps(rollout_db, run_cli, isolated_env, tmp_path):
    _deploy(run_cli, rollout_db, _artifact(tmp_path, "v9-same"), "30,60,100")
    status = _rounds(rollout_db, run_cli, isolated_env, until={"aborted", "promoted"}, batch=1500, rounds=14)
    assert status["state"] == "promoted", status
    steps = q(
        rollout_db,
        "SELECT after ->> 'weight', claimed_os_user FROM operator_actions WHERE action = 'canary.promote' ORDER BY seq",
    )
    assert steps == [("60", "fsar-tui (canary judge)"), ("100", "fsar-tui (canary judge)")]
    assert q(rollout_db, f"SELECT active_revision FROM rollouts WHERE target = '{TARGET}'") == [(3,)]
    # After the promotion every claim runs on the new revision.
    _tasks(rollout_db, 50)
    _simulate(rollout_db, isolated_env)
    assert q(
        rollout_db,
        """SELECT DISTINCT rr.revision FROM execution_tasks t JOIN rollout_revisions rr ON rr.id = t.rollout_revision_id
           WHERE t.started_at > (SELECT ended_at FROM rollout_canaries)""",
    ) == [(3,)]
