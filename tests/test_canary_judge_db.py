"""The judge on evidence written straight into the database (no simulator: the arms are
exactly what the test says): a canary failing ten times as often is aborted by `audit
run`, the workers get a retained MQTT control message and NOTIFY, the operator log names
the judge; a pass waits for the step's interval and, with --manual, for an operator; an
inconclusive look says how many more attempts it needs; looks come once per
`look_every` new canary attempts."""

from __future__ import annotations

import asyncio
import json

import psycopg

from fsar_tui.db import canaries
from fsar_tui.domain.canary_judge import DEFAULT
from fsar_tui.live.mqtt import parse_mqtt_url
from fsar_tui.services import canary_pass
from support.sql import q, x

TARGET = "prompt/implement_idea"


def _start(dsn: str, run_cli, tmp_path, *extra: str) -> None:
    path = tmp_path / "v9.json"
    path.write_text(json.dumps({"prompt_version": "v9"}))
    out = run_cli(
        "rollouts",
        "deploy",
        TARGET,
        "--artifact",
        str(path),
        "--steps",
        "50,100",
        "--reason",
        "r",
        "--yes",
        "--dsn",
        dsn,
        *extra,
    )
    assert out.returncode == 0, out.stderr


def _finished(dsn: str, revision: int, n: int, failed_every: int | None) -> None:
    """n finished tasks of `revision` since the canary's step began: one attempt each (a
    failure's task ends failed), run time 10-12 s, tokens 9-11 k."""
    x(
        dsn,
        """INSERT INTO execution_tasks (task_type, ai_model, status, attempt, max_attempts, started_at, finished_at,
                                        input_tokens, output_tokens, rollout_revision_id, queued_at)
           SELECT 'implement_idea', 'gpt-4o-mini',
                  CASE WHEN %(every)s::int IS NOT NULL AND g %% %(every)s::int = 0 THEN 'failed' ELSE 'succeeded' END,
                  1, 1, now() - interval '1 minute' - (10 + g %% 3) * interval '1 second', now() - interval '1 minute',
                  9000 + g %% 2000, 300, rr.id, now() - interval '2 minutes'
           FROM generate_series(1, %(n)s) g
           JOIN rollouts r ON r.target = %(target)s
           JOIN rollout_revisions rr ON rr.rollout_id = r.id AND rr.revision = %(revision)s""",
        {"every": failed_every, "n": n, "target": TARGET, "revision": revision},
    )


def _step_began(dsn: str, ago: str = "10 minutes") -> None:
    """The canary's step began before the tasks above finished (they are its window)."""
    x(dsn, "UPDATE rollout_canaries SET step_started_at = now() - %s::interval", (ago,))


def test_a_much_worse_canary_is_aborted_with_a_retained_control_message(rollout_db, run_cli, tmp_path, mqtt_url):
    topic = f"fsar/v1/control/canaries/{TARGET}"

    async def clear():
        async with parse_mqtt_url(mqtt_url).client() as client:
            await client.publish(topic, b"", qos=1, retain=True)

    asyncio.run(clear())
    _start(rollout_db, run_cli, tmp_path)
    _finished(rollout_db, 3, 400, failed_every=2)  # the canary: 50 % of attempts fail
    _finished(rollout_db, 2, 400, failed_every=20)  # stable: 5 %
    _step_began(rollout_db)
    listener = psycopg.connect(rollout_db, autocommit=True)
    listener.execute("LISTEN fsar_events")
    audit = run_cli("audit", "run", "--dsn", rollout_db, "--mqtt-url", mqtt_url)
    assert "canary prompt/implement_idea: fail → abort: aborted at 0 %" in audit.stdout, audit.stdout + audit.stderr
    notes = [json.loads(n.payload) for n in listener.notifies(timeout=2)]
    listener.close()
    assert {"kind": "rollout", "target": TARGET, "canary": 1, "state": "aborted", "weight": 0, "step": 0} in notes

    async def retained():
        async with parse_mqtt_url(mqtt_url).client() as client:
            await client.subscribe(topic, qos=1)
            async for message in client.messages:
                return message.retain, json.loads(message.payload)

    retain, body = asyncio.run(asyncio.wait_for(retained(), 10))
    assert retain and body["state"] == "aborted" and body["weight"] == 0
    assert q(rollout_db, "SELECT action, claimed_os_user FROM operator_actions ORDER BY seq DESC LIMIT 1") == [
        ("canary.abort", "fsar-tui (canary judge)")
    ]
    (verdict, judgement) = q(rollout_db, "SELECT verdict, judgement FROM canary_analyses")[0]
    failure = next(m for m in judgement["metrics"] if m["metric"] == "failure_rate")
    assert verdict == "fail" and failure["verdict"] == "fail" and failure["ci"][0] > 1


def _judge(dsn: str) -> canary_pass.Outcome:
    with psycopg.connect(dsn, autocommit=True) as conn:
        (outcome,) = canary_pass.judge_running(conn)
    return outcome


def test_a_pass_waits_for_the_interval_then_for_a_manual_promote(rollout_db, run_cli, tmp_path):
    _start(rollout_db, run_cli, tmp_path, "--interval", "1h", "--manual")
    _finished(rollout_db, 3, 1500, failed_every=20)
    _finished(rollout_db, 2, 1500, failed_every=20)
    _step_began(rollout_db)
    held = _judge(rollout_db)
    assert held.verdict == "pass" and held.action is None and "interval" in held.detail
    _finished(rollout_db, 3, DEFAULT.look_every, failed_every=20)  # a new look is due
    _step_began(rollout_db, "2 hours")
    manual = _judge(rollout_db)
    assert manual.verdict == "pass" and manual.action is None and "operator's promote" in manual.detail
    assert q(rollout_db, "SELECT weight, hold_reason FROM rollout_canaries")[0][0] == 50


def test_inconclusive_says_how_many_more_and_looks_come_once_per_look_every(rollout_db, run_cli, tmp_path):
    _start(rollout_db, run_cli, tmp_path)
    _finished(rollout_db, 3, 30, failed_every=20)
    _finished(rollout_db, 2, 30, failed_every=20)
    _step_began(rollout_db)
    first = _judge(rollout_db)
    assert first.verdict == "inconclusive" and "more canary attempts" in first.detail
    again = _judge(rollout_db)  # nothing new: no second look
    assert again.verdict == "skipped" and f"{DEFAULT.look_every}" in again.detail
    assert q(rollout_db, "SELECT count(*) FROM canary_analyses") == [(1,)]
    with psycopg.connect(rollout_db, autocommit=True) as conn:
        status = canaries.running(conn, TARGET)
    assert status.weight == 50 and "inconclusive" in (status.hold_reason or "")
