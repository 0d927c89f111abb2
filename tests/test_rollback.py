"""Rollback and roll-forward against a real database and broker: byte-identical artifacts,
exactly one winner when two operators race, a tampered artifact refused, NOTIFY and a
retained MQTT control message, and the confirmation rules."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from argparse import Namespace

import psycopg

from fsar_tui.commands.base import Context
from fsar_tui.commands.rollouts import run_rollback
from fsar_tui.config import Settings
from fsar_tui.db import rollouts
from fsar_tui.live.mqtt import parse_mqtt_url
from support.rollouts import active, revisions  # rollout_db: a fixture in conftest.py
from support.sql import q, x


def test_rollback_then_roll_forward_keeps_artifacts_byte_identical(rollout_db, run_cli):
    back = run_cli("rollback", "prompt/implement_idea", "--dsn", rollout_db, "--reason", "p90 regressed", "--yes")
    assert back.returncode == 0, back.stderr
    assert '-  "prompt_version": "v8"' in back.stdout and '+  "prompt_version": "v7"' in back.stdout
    assert back.stdout.startswith("rollback prompt/implement_idea: revision 2 (active)")
    forward = run_cli(
        "rollback", "prompt/implement_idea", "--to", "2", "--dsn", rollout_db, "--reason", "fixed upstream", "--yes"
    )
    assert forward.returncode == 0, forward.stderr
    assert forward.stdout.startswith("roll-forward prompt/implement_idea: revision 3 (active)")  # as the log says
    revs = revisions(rollout_db)
    assert [r[0] for r in revs] == [1, 2, 3, 4] and active(rollout_db) == 4
    assert revs[2][1:3] == revs[0][1:3] and revs[2][3] == 1  # 3 is a byte-identical copy of 1
    assert revs[3][1:3] == revs[1][1:3] and revs[3][3] == 2  # 4 of 2
    log = q(rollout_db, "SELECT actor, action, target, reason, after ->> 'copy_of' FROM operator_actions ORDER BY seq")
    assert [(a, t, r, c) for _, a, t, r, c in log] == [
        ("rollback", "rollout:prompt/implement_idea", "p90 regressed", "1"),
        ("roll_forward", "rollout:prompt/implement_idea", "fixed upstream", "2"),
    ]
    listing = json.loads(run_cli("rollouts", "list", "--dsn", rollout_db, "--format", "json").stdout)
    assert listing[0]["active"] == 4 and listing[0]["ready"] and listing[0]["rollback_to"] == 3
    # Revision 3 is a copy of 1 (v7), 4 a copy of 2 (v8): going to 3 is a rollback, though 3 > 2.
    again = run_cli("rollback", "prompt/implement_idea", "--dsn", rollout_db, "--reason", "v8 still bad", "--yes")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("rollback prompt/implement_idea: revision 4 (active)")
    assert q(rollout_db, "SELECT action FROM operator_actions ORDER BY seq DESC LIMIT 1") == [("rollback",)]


def test_two_operators_racing_have_exactly_one_winner(rollout_db):
    barrier = threading.Barrier(2)
    results = {}

    def operator(name):
        with psycopg.connect(rollout_db) as conn:
            expected = conn.execute(
                "SELECT active_revision FROM rollouts WHERE target = 'prompt/implement_idea'"
            ).fetchone()[0]
            conn.commit()
            barrier.wait()
            try:
                results[name] = rollouts.rollback(
                    conn,
                    "prompt/implement_idea",
                    1,
                    expected_active=expected,
                    actor=name,
                    reason=f"{name} saw a regression",
                )
            except rollouts.Conflict as exc:
                results[name] = exc.message

    threads = [threading.Thread(target=operator, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [n for n, r in results.items() if r == 3]
    assert len(winners) == 1, results
    loser = "bob" if winners == ["alice"] else "alice"
    assert f"revision 3 is active now by postgres (OS user {winners[0]}, unverified) (rollback at" in results[loser]
    assert [r[0] for r in revisions(rollout_db)] == [1, 2, 3] and active(rollout_db) == 3
    assert q(rollout_db, "SELECT count(*) FROM operator_actions") == [(1,)]


def test_a_tampered_artifact_is_not_ready_and_refused(rollout_db, run_cli):
    ok = run_cli("rollouts", "verify", "--dsn", rollout_db)
    assert ok.returncode == 0 and "rollback to revision 1 rehearsed and rolled back: ready" in ok.stdout
    assert [r[0] for r in revisions(rollout_db)] == [1, 2] and active(rollout_db) == 2  # the rehearsal left nothing
    assert q(rollout_db, "SELECT count(*) FROM operator_actions") == [(0,)]
    x(rollout_db, "ALTER TABLE rollout_revisions DISABLE TRIGGER rollout_revisions_append_only")
    x(
        rollout_db,
        """UPDATE rollout_revisions SET artifact = jsonb_set(artifact, '{temperature}', '0.9')
                     WHERE revision = 1""",
    )
    x(rollout_db, "ALTER TABLE rollout_revisions ENABLE TRIGGER rollout_revisions_append_only")
    listing = run_cli("rollouts", "list", "--dsn", rollout_db)
    assert "NOT READY: revision 1's artifact does not match its sha256" in listing.stdout
    out = run_cli("rollback", "prompt/implement_idea", "--dsn", rollout_db, "--reason", "try", "--yes")
    assert out.returncode == 1 and "does not match its sha256; refusing" in out.stderr
    verify = run_cli("rollouts", "verify", "--dsn", rollout_db)
    assert verify.returncode == 1 and "prompt/implement_idea: NOT READY" in verify.stdout
    assert active(rollout_db) == 2 and len(revisions(rollout_db)) == 2


def test_rollback_notifies_and_publishes_a_retained_control_message(rollout_db, mqtt_url):
    topic = "fsar/v1/control/rollouts/prompt/implement_idea"

    async def clear():  # the broker is shared between runs: no retained message from an earlier one
        async with parse_mqtt_url(mqtt_url).client() as client:
            await client.publish(topic, b"", qos=1, retain=True)

    asyncio.run(clear())
    listener = psycopg.connect(rollout_db, autocommit=True)
    listener.execute("LISTEN fsar_events")
    settings = Settings(dsn=rollout_db, mqtt_url=mqtt_url)
    args = Namespace(target="prompt/implement_idea", to=None, reason="retained test", yes=True, dry_run=False)
    assert run_rollback(args, Context(settings)) == 0
    notes = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
    assert notes == [{"kind": "rollout", "target": "prompt/implement_idea", "revision": 3}]
    listener.close()

    async def retained():
        async with parse_mqtt_url(mqtt_url).client() as client:
            await client.subscribe(topic, qos=1)
            async for message in client.messages:
                return message.retain, json.loads(message.payload)

    retain, body = asyncio.run(asyncio.wait_for(retained(), 10))
    assert retain and body == {"target": "prompt/implement_idea", "revision": 3, "copy_of": 1}


def test_confirmation_reason_and_dry_run(rollout_db, run_cli):
    settings = Settings(dsn=rollout_db)
    args = Namespace(target="prompt/implement_idea", to=None, reason="regression", yes=False, dry_run=False)
    assert run_rollback(args, Context(settings), stdin=io.StringIO("prompt/other\n")) == 1
    assert active(rollout_db) == 2  # not confirmed: nothing changed
    assert run_rollback(args, Context(settings), stdin=io.StringIO("prompt/implement_idea\n")) == 0
    assert active(rollout_db) == 3
    dry = run_cli("rollback", "prompt/implement_idea", "--dsn", rollout_db, "--dry-run")
    assert dry.returncode == 0 and "dry run: nothing changed" in dry.stdout and active(rollout_db) == 3
    for bad, message in (
        (["--yes"], "--reason is required"),
        (["--reason", "x"], "confirm with --yes"),
        (["--reason", "x", "--yes", "--to", "9"], "has no revision 9"),
    ):
        out = run_cli("rollback", "prompt/implement_idea", "--dsn", rollout_db, *bad)
        assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1
    unknown = run_cli("rollback", "nope", "--dsn", rollout_db, "--reason", "x", "--yes")
    assert unknown.returncode == 2 and "no rollout target 'nope'" in unknown.stderr
