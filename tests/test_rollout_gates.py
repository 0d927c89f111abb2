"""Gates scoped to a rollout target (and to its canary) measure that revision's tasks: the
second attack found every rollout-scoped profile gate reading nothing (the revision id
compared as an int with the profiles' text keys), a canary gate without a canary making
every `audit run` exit 1, and a failing canary gate announced as stopping the whole type."""

from __future__ import annotations

import json

import pytest

from support.sql import q, x

TARGET = "prompt/implement_idea"


def _tasks(dsn: str, revision: int, n: int, failed: int) -> None:
    x(
        dsn,
        """INSERT INTO execution_tasks (task_type, ai_model, status, attempt, max_attempts, started_at, finished_at,
                                        input_tokens, output_tokens, rollout_revision_id, queued_at)
           SELECT 'implement_idea', 'gpt-4o-mini', CASE WHEN g <= %(failed)s THEN 'failed' ELSE 'succeeded' END,
                  1, 1, now() - interval '70 seconds', now() - interval '1 minute', 9000, 300, rr.id,
                  now() - interval '2 minutes'
           FROM generate_series(1, %(n)s) g
           JOIN rollouts r ON r.target = %(target)s
           JOIN rollout_revisions rr ON rr.rollout_id = r.id AND rr.revision = %(revision)s""",
        {"n": n, "failed": failed, "target": TARGET, "revision": revision},
    )


def _gate(run_cli, dsn, name, *scope):
    out = run_cli(
        "audit",
        "gate",
        "add",
        name,
        "--metric",
        "failure_rate",
        "--pass-if",
        "< 0.2",
        "--window",
        "1h",
        "--rollout",
        TARGET,
        *scope,
        "--hard",
        "--reason",
        "r",
        "--dsn",
        dsn,
    )
    assert out.returncode == 0, out.stderr


def _run(run_cli, dsn, name):
    out = run_cli("audit", "run", "--gate", name, "--format", "json", "--dsn", dsn)
    (gate,) = json.loads(out.stdout)["gates"]
    return out.returncode, gate


def test_a_rollout_scoped_gate_measures_the_active_revisions_tasks(rollout_db, run_cli):
    _tasks(rollout_db, 2, 100, failed=40)
    _tasks(rollout_db, 1, 100, failed=0)  # an older revision's tasks: not in scope
    _gate(run_cli, rollout_db, "active-failures")
    code, gate = _run(run_cli, rollout_db, "active-failures")
    assert gate["sample_size"] == 100 and gate["value"] == pytest.approx(0.4) and gate["verdict"] == "fail", gate
    assert code == 1


@pytest.fixture
def canary_db(rollout_db, run_cli, tmp_path):
    path = tmp_path / "v9.json"
    path.write_text('{"prompt_version": "v9"}')
    out = run_cli(
        "rollouts",
        "deploy",
        TARGET,
        "--artifact",
        str(path),
        "--canary",
        "50",
        "--reason",
        "r",
        "--yes",
        "--dsn",
        rollout_db,
    )
    assert out.returncode == 0, out.stderr
    return rollout_db


async def test_a_canary_gate_measures_the_canary_and_blocks_it_only_and_says_so(canary_db, run_cli):
    _tasks(canary_db, 3, 100, failed=50)  # the canary
    _tasks(canary_db, 2, 100, failed=2)  # stable
    _gate(run_cli, canary_db, "canary-failures", "--canary")
    code, gate = _run(run_cli, canary_db, "canary-failures")
    assert gate["sample_size"] == 100 and gate["value"] == pytest.approx(0.5) and gate["verdict"] == "fail", gate
    (revision_id,) = q(canary_db, "SELECT id FROM rollout_revisions WHERE revision = 3")[0]
    assert q(canary_db, "SELECT task_type, revision_id FROM execution_blocks") == [("implement_idea", revision_id)]
    from fsar_tui.db.blocks import banner_blocks
    from fsar_tui.db.connect import aconnect

    async with await aconnect(canary_db) as conn:
        _proposals, gates, _canaries = await banner_blocks(conn)
    assert gates == (("canary-failures", "the canary (revision 3) of implement_idea"),)


def test_a_canary_gate_without_a_canary_is_inconclusive_not_an_error(rollout_db, run_cli):
    _gate(run_cli, rollout_db, "no-canary", "--canary")
    code, gate = _run(run_cli, rollout_db, "no-canary")
    assert code == 0 and gate["verdict"] == "inconclusive" and "no canary is running" in gate["details"]["why"]
