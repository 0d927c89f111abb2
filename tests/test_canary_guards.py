"""What an attacker with the operator role did to the canary functions in plain SQL, and
revision 0036's answers: a forged judgement is refused or logged under its role, the look
cadence is the database's count, a 100 % first step is refused, a promote over a failing
judgement carries that judgement into the log; the CLI's retained start message carries
the real weight; a downgrade below 0035 refuses while a canary runs."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest

from fsar_tui.live.mqtt import parse_mqtt_url
from support.sql import q

TARGET = "prompt/implement_idea"


@pytest.fixture
def canary_db(rollout_db, run_cli, tmp_path, mqtt_url):
    topic = f"fsar/v1/control/canaries/{TARGET}"

    async def clear():
        async with parse_mqtt_url(mqtt_url).client() as client:
            await client.publish(topic, b"", qos=1, retain=True)

    asyncio.run(clear())
    path = tmp_path / "v9.json"
    path.write_text(json.dumps({"prompt_version": "v9"}))
    out = run_cli(
        "rollouts",
        "deploy",
        TARGET,
        "--artifact",
        str(path),
        "--canary",
        "30",
        "--reason",
        "r",
        "--yes",
        "--dsn",
        rollout_db,
        "--mqtt-url",
        mqtt_url,
    )
    assert out.returncode == 0, out.stderr

    async def retained():
        async with parse_mqtt_url(mqtt_url).client() as client:
            await client.subscribe(topic, qos=1)
            async for message in client.messages:
                return json.loads(message.payload)

    body = asyncio.run(asyncio.wait_for(retained(), 10))
    assert body["state"] == "running" and body["weight"] == 30  # the first step's weight, not 0
    return rollout_db


def _as_operator(login, dsn_sql: str, params=()):
    with psycopg.connect(login("fsar_operator"), autocommit=True) as conn:
        return conn.execute(dsn_sql, params).fetchall()


def test_a_forged_score_or_judgement_shape_is_refused(canary_db, login):
    for score, judgement in (("NaN", "{}"), ("Infinity", "{}"), ("101", "{}"), ("50", "[1]")):
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            _as_operator(
                login, "SELECT fsar_canary_record(1, 0, 'pass', %s::numeric, %s::jsonb, 'x')", (score, judgement)
            )
    assert q(canary_db, "SELECT count(*) FROM canary_analyses") == [(0,)]


def test_a_recorded_judgement_is_logged_under_its_role_and_the_cadence_is_counted_by_the_database(canary_db, login):
    operator = login("fsar_operator")
    forged = json.dumps({"verdict": "pass", "summary": "all good", "canary_attempts": 999_999_999})
    with psycopg.connect(operator, autocommit=True) as conn:
        conn.execute("SELECT fsar_canary_record(1, 0, 'pass', 100, %s::jsonb, 'held')", (forged,))
        conn.execute("SELECT fsar_canary_record(1, 0, 'pass', 100, %s::jsonb, 'held')", (forged,))
        role = conn.execute("SELECT session_user").fetchone()[0]
    assert q(canary_db, "SELECT canary_attempts, recorded_by FROM canary_analyses ORDER BY id") == [
        (0, role),
        (0, role),
    ]  # no canary task finished: the forged 999,999,999 is not what the judge's cadence reads
    # One log row for the change of verdict (none → pass), none for the same verdict again.
    assert q(
        canary_db,
        "SELECT action, actor, after ->> 'verdict' FROM operator_actions WHERE action = 'canary.judgement'",
    ) == [("canary.judgement", role, "pass")]
    assert q(canary_db, "SELECT judged_by FROM rollout_canaries") == [(role,)]


def test_a_promote_over_a_failing_judgement_carries_it_into_the_log(canary_db, login, run_cli):
    with psycopg.connect(login("fsar_operator"), autocommit=True) as conn:
        conn.execute("""SELECT fsar_canary_record(1, 0, 'fail', 0, '{"verdict": "fail"}', NULL)""")
    out = run_cli(
        "rollouts",
        "canary",
        "promote",
        TARGET,
        "--reason",
        "I know better",
        "--yes",
        "--from",
        "30",
        "--dsn",
        canary_db,
    )
    assert out.returncode == 0, out.stderr
    assert q(canary_db, "SELECT before ->> 'judge_verdict' FROM operator_actions WHERE action = 'canary.promote'") == [
        ("fail",)
    ]


def test_a_canary_starting_at_100_percent_is_refused_by_the_database(rollout_db, login):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        _as_operator(
            login,
            "SELECT * FROM fsar_rollout_deploy(%s, '{\"x\": 1}', repeat('a', 64), 2, '{100}', 0, false, 'r', 'me')",
            (TARGET,),
        )
    assert q(rollout_db, "SELECT count(*) FROM rollout_canaries") == [(0,)]


def test_a_downgrade_below_0035_refuses_while_a_canary_runs(canary_db, run_cli):
    out = run_cli("migrate", "--downgrade", "0034_finite_task_times", "--yes", "--dsn", canary_db)
    assert out.returncode != 0 and "canary is running" in out.stderr, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and out.stderr.strip().count("\n") == 0
    assert q(canary_db, "SELECT state FROM rollout_canaries") == [("running",)]


def test_no_canary_while_the_rollback_rehearsal_gate_fails_even_in_plain_sql(rollout_db, login, run_cli):
    from fsar_tui.db.canaries import Refused, deploy

    with psycopg.connect(rollout_db, autocommit=True) as conn:  # the pass recording a failed rehearsal
        (gate,) = conn.execute("SELECT id FROM audit_gates WHERE name = 'builtin:rollback-artifacts'").fetchone()
        conn.execute("SELECT fsar_record_verdict(%s, 1, NULL, 'fail', 1, '{}', 'test')", (gate,))
    with psycopg.connect(login("fsar_operator"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT outcome FROM fsar_rollout_deploy(%s, '{\"x\": 1}', repeat('a', 64), 2, '{10,100}', 0, false, "
            "'r', 'me')",
            (TARGET,),
        ).fetchall()
        assert rows == [("no-way-back",)]
        with pytest.raises(Refused, match="way back"):
            deploy(
                conn,
                TARGET,
                {"x": 2},
                "b" * 64,
                expected_active=2,
                steps=[10, 100],
                interval_s=0,
                manual=False,
                reason="r",
                claimed="me",
            )
    assert q(rollout_db, "SELECT count(*) FROM rollout_canaries") == [(0,)]
