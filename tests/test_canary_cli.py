"""`rollouts deploy` and `rollouts canary …` against real PostgreSQL: bad input refused with
one line and nothing written, races between operators, no canary without a way back, the
judge holding on missing evidence, the claim's split (deterministic per task, the same
bucket as domain/canary_judge.canary_bucket), and a gate scoped to the canary blocking
the canary only (issue 19: "Bad input and faults")."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from fsar_tui.db import canaries, executor
from fsar_tui.db.connect import aconnect
from fsar_tui.domain.canary_judge import canary_bucket
from support.rollouts import V2
from support.sql import q, x

TARGET = "prompt/implement_idea"


def _count(dsn: str) -> tuple:
    return q(
        dsn,
        "SELECT (SELECT count(*) FROM rollout_revisions), (SELECT count(*) FROM rollout_canaries), "
        "(SELECT count(*) FROM operator_actions)",
    )[0]


def _file(tmp_path, data: bytes, name: str = "a.json") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _deploy(run_cli, dsn, artifact, *extra):
    return run_cli("rollouts", "deploy", TARGET, "--artifact", artifact, "--reason", "r", "--yes", "--dsn", dsn, *extra)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"x": "' + b"y" * (1024 * 1024) + b'"}', "at most 1,048,576"),
        (b"[1]", "JSON object"),
        (b'{"a": 1e999}', "infinity"),
    ],
)
def test_bad_artifacts_are_refused_with_one_line_and_nothing_written(rollout_db, run_cli, tmp_path, data, words):
    before = _count(rollout_db)
    out = _deploy(run_cli, rollout_db, _file(tmp_path, data), "--canary", "10")
    assert out.returncode == 2 and words in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr and _count(rollout_db) == before


def test_an_artifact_equal_to_the_active_revision_is_refused(rollout_db, run_cli, tmp_path):
    before = _count(rollout_db)
    out = _deploy(run_cli, rollout_db, _file(tmp_path, json.dumps(V2).encode()))
    assert out.returncode == 1 and "equals the active revision 2" in out.stderr and out.stderr.count("\n") == 1
    assert _count(rollout_db) == before


def test_deploy_without_canary_becomes_active_at_once_and_is_logged(rollout_db, run_cli, tmp_path):
    out = _deploy(run_cli, rollout_db, _file(tmp_path, json.dumps({**V2, "prompt_version": "v9"}).encode()))
    assert out.returncode == 0, out.stderr
    assert q(rollout_db, f"SELECT active_revision FROM rollouts WHERE target = '{TARGET}'") == [(3,)]
    assert q(
        rollout_db, "SELECT action, after ->> 'active_revision' FROM operator_actions ORDER BY seq DESC LIMIT 1"
    ) == [("rollout.deploy", "3")]
    again = _deploy(run_cli, rollout_db, _file(tmp_path, json.dumps({**V2, "prompt_version": "v10"}).encode(), "b"))
    assert again.returncode == 0, again.stderr


def test_no_canary_without_a_way_back(rollout_db, run_cli, tmp_path):
    # Revision 1 (the rollback's target) tampered with: the rehearsal fails.
    x(rollout_db, "ALTER TABLE rollout_revisions DISABLE TRIGGER rollout_revisions_append_only")
    x(rollout_db, "UPDATE rollout_revisions SET artifact = '{\"tampered\": true}' WHERE revision = 1")
    x(rollout_db, "ALTER TABLE rollout_revisions ENABLE TRIGGER rollout_revisions_append_only")
    before = _count(rollout_db)
    out = _deploy(run_cli, rollout_db, _file(tmp_path, b'{"prompt_version": "v9"}'), "--canary", "10")
    assert out.returncode == 1 and "way back" in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert _count(rollout_db) == before


@pytest.fixture
def canary_db(rollout_db, run_cli, tmp_path):
    out = _deploy(run_cli, rollout_db, _file(tmp_path, b'{"prompt_version": "v9"}'), "--steps", "20,50,100")
    assert out.returncode == 0, out.stderr
    return rollout_db


def test_two_operators_promoting_at_once_one_wins_the_other_is_told_who(canary_db, login):
    alice, bob = login("fsar_operator"), login("fsar_operator")
    with psycopg.connect(alice, autocommit=True) as a, psycopg.connect(bob, autocommit=True) as b:
        seen_a, seen_b = canaries.running(a, TARGET), canaries.running(b, TARGET)  # both saw step 1
        results: dict[str, object] = {}

        def move(name, conn, seen, action):
            try:
                results[name] = canaries.decide(conn, seen, action, reason=name, claimed=name)
            except canaries.Conflict as exc:
                results[name] = exc

        threads = [
            threading.Thread(target=move, args=("alice", a, seen_a, "promote")),
            threading.Thread(target=move, args=("bob", b, seen_b, "abort")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lost = [r for r in results.values() if isinstance(r, canaries.Conflict)]
    won = [r for r in results.values() if not isinstance(r, canaries.Conflict)]
    assert len(lost) == 1 and len(won) == 1, results
    winner = "alice" if won[0] is results["alice"] else "bob"
    assert "changed while you decided" in lost[0].message and f"OS user {winner}" in lost[0].message, lost[0].message
    assert q(canary_db, "SELECT count(*) FROM operator_actions WHERE action IN ('canary.promote', 'canary.abort')") == [
        (1,)
    ]


def test_the_cli_promote_and_abort_need_a_reason_and_say_who_moved_first(canary_db, run_cli):
    assert run_cli("rollouts", "canary", "promote", TARGET, "--yes", "--dsn", canary_db).returncode == 2
    unstated = run_cli("rollouts", "canary", "promote", TARGET, "--reason", "r", "--yes", "--dsn", canary_db)
    assert unstated.returncode == 2 and "--from WEIGHT" in unstated.stderr
    done = run_cli(
        "rollouts", "canary", "promote", TARGET, "--reason", "looks fine", "--yes", "--from", "20", "--dsn", canary_db
    )
    assert done.returncode == 0 and "promoted to 50 %" in done.stdout, done.stderr
    status = json.loads(run_cli("rollouts", "canary", "status", "--format", "json", "--dsn", canary_db).stdout)
    assert status[0]["weight"] == 50 and status[0]["step"] == 2
    aborted = run_cli("rollouts", "canary", "abort", TARGET, "--reason", "no", "--yes", "--dsn", canary_db)
    assert aborted.returncode == 0 and "aborted" in aborted.stdout
    again = run_cli("rollouts", "canary", "abort", TARGET, "--reason", "no", "--yes", "--dsn", canary_db)
    assert again.returncode == 1 and "no canary is running" in again.stderr


async def test_the_split_is_the_bucket_and_a_retry_stays_on_its_revision(canary_db):
    x(
        canary_db,
        "INSERT INTO execution_tasks (task_type, ai_model) SELECT 'implement_idea', 'gpt-4o-mini' FROM "
        "generate_series(1, 400)",
    )
    (canary_id,) = q(canary_db, "SELECT id FROM rollout_canaries")[0]
    revision_of = dict(q(canary_db, "SELECT id, revision FROM rollout_revisions"))
    sides = {}
    async with await aconnect(canary_db) as conn:
        while (task := await executor.claim(conn, "w", 30)) is not None:
            sides[task.id] = revision_of[task.rollout_revision_id]
            assert sides[task.id] == (3 if canary_bucket(canary_id, task.id) < 0.20 else 2)
            if task.id % 7 == 0 and task.attempt == 1:  # fail it: the retry comes back later
                await executor.finish(
                    conn, task, "w", status="queued", result=None, error="boom", input_tokens=1, output_tokens=1
                )
    assert 40 < sum(1 for side in sides.values() if side == 3) < 130  # ~20 % of 400
    retried = q(
        canary_db,
        "SELECT t.id, rr.revision FROM execution_tasks t JOIN rollout_revisions rr "
        "ON rr.id = t.rollout_revision_id WHERE t.attempt = 2",
    )
    assert retried and all(sides[task_id] == revision for task_id, revision in retried)


async def test_a_gate_scoped_to_the_canary_blocks_the_canary_only(canary_db, run_cli):
    gate = run_cli(
        "audit",
        "gate",
        "add",
        "canary-proposals",
        "--metric",
        "open_blocking_proposals",
        "--pass-if",
        "< 0",
        "--window",
        "1h",
        "--rollout",
        TARGET,
        "--canary",
        "--hard",
        "--reason",
        "canary gate",
        "--dsn",
        canary_db,
    )
    assert gate.returncode == 0, gate.stderr
    run_cli("audit", "run", "--gate", "canary-proposals", "--dsn", canary_db)
    (canary_rev,) = q(canary_db, "SELECT id FROM rollout_revisions WHERE revision = 3")[0]
    assert q(canary_db, "SELECT task_type, revision_id FROM execution_blocks") == [("implement_idea", canary_rev)]
    x(
        canary_db,
        "INSERT INTO execution_tasks (task_type, ai_model) SELECT 'implement_idea', 'gpt-4o-mini' FROM "
        "generate_series(1, 100)",
    )
    claimed = []
    async with await aconnect(canary_db) as conn:
        while (task := await executor.claim(conn, "w", 30)) is not None:
            claimed.append(task.rollout_revision_id)
    assert len(claimed) == 100 and canary_rev not in claimed  # the canary's share ran on stable


def test_the_judge_holds_when_the_database_goes_away_mid_analysis(canary_db):
    from fsar_tui.services import canary_pass

    with psycopg.connect(canary_db, autocommit=True) as conn:
        canary = canaries.running(conn, TARGET)
        with psycopg.connect(canary_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        outcome = canary_pass.judge_one(conn, canary, canary.now)
    assert outcome.verdict == "error" and outcome.action is None and outcome.weight == 20
    assert q(canary_db, "SELECT state, weight, step FROM rollout_canaries") == [("running", 20, 0)]
    assert q(canary_db, "SELECT count(*) FROM canary_analyses") == [(0,)]  # nothing could be recorded either


def test_the_judge_failing_mid_analysis_records_an_error_and_holds(canary_db):
    from fsar_tui.services import canary_pass

    with psycopg.connect(canary_db) as locker, psycopg.connect(canary_db, autocommit=True) as conn:
        canary = canaries.running(conn, TARGET)
        # The analysis reads the gates scoped to the target after the tasks: it cannot finish.
        locker.execute("LOCK TABLE audit_gates IN ACCESS EXCLUSIVE MODE")
        conn.execute("SET statement_timeout = 300")
        outcome = canary_pass.judge_one(conn, canary, canary.now)
        locker.rollback()
        conn.execute("SET statement_timeout = 0")
        status = canaries.running(conn, TARGET)
    assert outcome.verdict == "error" and outcome.action is None
    assert status.weight == 20 and status.step == 0 and "could not analyse" in (status.hold_reason or "")
    assert q(canary_db, "SELECT verdict FROM canary_analyses") == [("error",)]


def test_rollouts_list_shows_the_running_canary(canary_db, run_cli):
    out = run_cli("rollouts", "list", "--dsn", canary_db)
    assert out.returncode == 0 and "canary: revision 3 at 20 %" in out.stdout, out.stdout
    (target,) = json.loads(run_cli("rollouts", "list", "--format", "json", "--dsn", canary_db).stdout)
    assert target["canary"]["weight"] == 20 and target["canary"]["revision"] == 3


def test_read_only_refuses_deploy_promote_abort_and_rollback(canary_db, run_cli, tmp_path):
    before = _count(canary_db)
    artifact = _file(tmp_path, b'{"prompt_version": "v10"}', "ro.json")
    for args in (
        ("rollouts", "deploy", TARGET, "--artifact", artifact, "--reason", "r", "--yes"),
        ("rollouts", "canary", "promote", TARGET, "--reason", "r", "--yes"),
        ("rollouts", "canary", "abort", TARGET, "--reason", "r", "--yes"),
        ("rollback", TARGET, "--reason", "r", "--yes"),
    ):
        out = run_cli(*args, "--read-only", "--dsn", canary_db)
        assert out.returncode == 2 and "--read-only" in out.stderr and out.stderr.count("\n") == 1, (args, out.stderr)
    assert _count(canary_db) == before


def test_rollouts_evidence_of_a_deployed_revision(rollout_db, run_cli):
    out = run_cli("rollouts", "evidence", TARGET, "--dsn", rollout_db)
    assert out.returncode == 0 and "before" in out.stdout and "after" in out.stdout, out.stdout + out.stderr
    data = json.loads(
        run_cli("rollouts", "evidence", TARGET, "--revision", "1", "--format", "json", "--dsn", rollout_db).stdout
    )
    assert data["revision"] == 1 and data["target"] == TARGET
    missing = run_cli("rollouts", "evidence", TARGET, "--revision", "99", "--dsn", rollout_db)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr


def _block_model(dsn: str, run_cli, model: str) -> None:
    gate = run_cli(
        "audit",
        "gate",
        "add",
        "no-such-model",
        "--metric",
        "open_blocking_proposals",
        "--pass-if",
        "< 0",
        "--window",
        "1h",
        "--model",
        model,
        "--hard",
        "--reason",
        "r",
        "--dsn",
        dsn,
    )
    assert gate.returncode == 0, gate.stderr
    run_cli("audit", "run", "--gate", "no-such-model", "--dsn", dsn)
    assert q(dsn, "SELECT task_type, ai_model FROM execution_blocks") == [(None, model)]


async def _claim_all(dsn: str) -> list[tuple[str, str, int]]:
    out = []
    async with await aconnect(dsn) as conn:
        while (task := await executor.claim(conn, "w", 30)) is not None:
            out.append((task.task_type, task.ai_model, task.rollout_revision_id))
    return out


async def test_an_artifact_pinning_a_blocked_model_cannot_run_tasks_on_it(rollout_db, run_cli, tmp_path):
    pinned = _file(tmp_path, b'{"prompt_version": "v9", "ai_model": "gpt-blocked"}', "pin.json")
    assert _deploy(run_cli, rollout_db, pinned, "--steps", "50,100").returncode == 0
    _block_model(rollout_db, run_cli, "gpt-blocked")
    x(
        rollout_db,
        "INSERT INTO execution_tasks (task_type, ai_model) SELECT 'implement_idea', 'gpt-4o-mini' "
        "FROM generate_series(1, 60)",
    )
    claimed = await _claim_all(rollout_db)
    (stable,) = q(rollout_db, "SELECT id FROM rollout_revisions WHERE revision = 2")[0]
    assert len(claimed) == 60 and {c[1:] for c in claimed} == {("gpt-4o-mini", stable)}  # the canary's share on stable

    # The stable revision pinning it: the type's tasks wait; other types run.
    run_cli("rollouts", "canary", "promote", TARGET, "--reason", "r", "--yes", "--from", "50", "--dsn", rollout_db)
    assert q(rollout_db, f"SELECT active_revision FROM rollouts WHERE target = '{TARGET}'") == [(3,)]
    x(
        rollout_db,
        "INSERT INTO execution_tasks (task_type, ai_model) VALUES ('implement_idea', 'gpt-4o-mini'), "
        "('self_improvement', 'gpt-4o-mini')",
    )
    assert [c[0] for c in await _claim_all(rollout_db)] == ["self_improvement"]


def test_two_scripted_promotes_move_one_step_the_second_is_told_who(canary_db, run_cli):
    first = run_cli(
        "rollouts", "canary", "promote", TARGET, "--reason", "a", "--yes", "--from", "20", "--dsn", canary_db
    )
    second = run_cli(
        "rollouts", "canary", "promote", TARGET, "--reason", "b", "--yes", "--from", "20", "--dsn", canary_db
    )
    assert first.returncode == 0 and second.returncode == 1, second.stdout + second.stderr
    assert "it is at 50 % (step 2), not --from 20 %" in second.stderr and "canary.promote" in second.stderr
    assert q(canary_db, "SELECT weight FROM rollout_canaries") == [(50,)]


def test_a_canary_that_would_get_no_traffic_is_refused(rollout_db, run_cli, tmp_path):
    from datetime import UTC, datetime

    from fsar_tui.db import bulk
    from fsar_tui.domain.rollouts import artifact_sha256

    with psycopg.connect(rollout_db, autocommit=True) as conn:  # a second target of the same type, made later
        v1 = {"prompt_version": "other"}
        bulk.insert_rollout(
            conn, "prompt/impl-2", "prompt", "implement_idea", [(v1, artifact_sha256(v1), datetime.now(UTC), "x")]
        )
    before = _count(rollout_db)
    out = run_cli(
        "rollouts",
        "deploy",
        "prompt/impl-2",
        "--artifact",
        _file(tmp_path, b'{"v": 2}'),
        "--canary",
        "50",
        "--reason",
        "r",
        "--yes",
        "--dsn",
        rollout_db,
    )
    assert out.returncode == 1 and "routes no task" in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert _count(rollout_db) == before


def test_an_interval_over_seven_days_is_a_usage_error_even_in_a_dry_run(rollout_db, run_cli, tmp_path):
    out = run_cli(
        "rollouts",
        "deploy",
        TARGET,
        "--artifact",
        _file(tmp_path, b'{"v": 2}'),
        "--canary",
        "10",
        "--interval",
        "8d",
        "--dry-run",
        "--dsn",
        rollout_db,
    )
    assert out.returncode == 2 and "at most 7 days" in out.stderr


def test_the_rollback_preview_says_it_aborts_the_running_canary(canary_db, run_cli):
    out = run_cli("rollback", TARGET, "--reason", "back", "--yes", "--dsn", canary_db)
    assert out.returncode == 0 and "a canary runs (revision 3 at 20 %): the rollback aborts it" in out.stdout, (
        out.stdout
    )
    assert q(canary_db, "SELECT state, end_reason FROM rollout_canaries") == [("aborted", "rolled back: back")]
