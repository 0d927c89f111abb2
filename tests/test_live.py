"""The live pipeline: coalescing (pure), bursts over NOTIFY and polling, MQTT on a real broker."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import aiomqtt
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.db.connect import aconnect
from fsar_tui.db.live_queries import status_counts
from fsar_tui.domain.events import TaskChange, parse_mqtt, parse_notify
from fsar_tui.errors import UsageError
from fsar_tui.live.coalesce import coalesce
from fsar_tui.live.mqtt import parse_mqtt_url
from fsar_tui.live.service import LiveService
from support.queue_counts import QueueCounts

NEXT = {
    None: ["queued"],
    "queued": ["running", "cancelled"],
    "running": ["succeeded", "failed", "queued", "cancelled"],
    "failed": ["queued"],
    "succeeded": [],
    "cancelled": [],
}


@st.composite
def interleaved_histories(draw):
    """Valid status chains for a few tasks, interleaved as a broker or NOTIFY would deliver them."""
    n_tasks = draw(st.integers(min_value=1, max_value=6))
    chains = []
    for task_id in range(n_tasks):
        status, chain = None, []
        for _ in range(draw(st.integers(min_value=1, max_value=8))):
            options = NEXT[status]
            if not options:
                break
            nxt = draw(st.sampled_from(options))
            chain.append(
                TaskChange(
                    task_id,
                    draw(st.sampled_from(["a", "b"])) if status is None else chains_type(chain),
                    None,
                    status,
                    nxt,
                    len(chain),
                )
            )
            status = nxt
        chains.append(chain)
    order = draw(st.permutations([i for i, c in enumerate(chains) for _ in c]))
    cursors = [0] * n_tasks
    events = []
    for i in order:
        events.append(chains[i][cursors[i]])
        cursors[i] += 1
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(events)), max_size=4)))
    return events, cuts


def chains_type(chain):
    return chain[0].task_type


@given(interleaved_histories())
@settings(max_examples=300)
def test_coalesced_batches_move_counts_exactly_like_every_event(history):
    events, cuts = history
    sequential, batched = QueueCounts(), QueueCounts()
    sequential.apply(events)
    bounds = [0, *cuts, len(events)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        batched.apply(coalesce(events[lo:hi]))
    assert batched.as_dict() == sequential.as_dict()
    # Coalescing never yields more than one change per task.
    ids = [c.id for c in coalesce(events)]
    assert len(ids) == len(set(ids))


def test_parsers_drop_malformed_payloads():
    assert parse_notify("not json") is None
    assert parse_notify('{"kind": "task", "id": "x", "to": "queued", "attempt": 0}') is None
    assert parse_notify('{"kind": "task", "id": 1, "to": "exploded", "attempt": 0}') is None
    ok = parse_notify(
        '{"kind": "task", "id": 1, "type": "t", "model": null, "from": null, "to": "queued", "attempt": 0}'
    )
    assert ok == TaskChange(1, "t", None, None, "queued", 0)
    assert parse_mqtt("fsar/v1/tasks/t/queued", b"\xff") is None
    assert parse_mqtt("fsar/v1/workers/sim-1", b'{"state": "online"}').state == "online"


def test_mqtt_url_parsing():
    target = parse_mqtt_url("mqtt://bot:p%40ss@broker.example:1884")
    assert (target.host, target.port, target.username, target.password, target.tls) == (
        "broker.example",
        1884,
        "bot",
        "p@ss",
        False,
    )
    assert parse_mqtt_url("mqtts://broker.example").port == 8883
    with pytest.raises(UsageError, match=r"invalid MQTT URL 'http://u:\*\*\*\*@h'"):
        parse_mqtt_url("http://u:secret@h")


async def make_burst(dsn, n_tasks=2500):
    """At least 4 × n_tasks status changes, in a few big transactions."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO execution_tasks (task_type, ai_model) "
            "SELECT (ARRAY['implement_idea','self_improvement'])[1 + g %% 2], 'gpt-4o' "
            "FROM generate_series(1, %s) g",
            (n_tasks,),
        )
        await conn.execute(
            "UPDATE execution_tasks SET status = 'running', attempt = 1, started_at = now() WHERE status = 'queued'"
        )
        await conn.execute(
            "UPDATE execution_tasks SET status = CASE WHEN id % 3 = 0 THEN 'failed' ELSE 'succeeded' END, "
            "finished_at = now() WHERE status = 'running'"
        )
        await conn.execute(
            "INSERT INTO execution_tasks (task_type) SELECT 'idea_implementation' FROM generate_series(1, %s)",
            (n_tasks,),
        )


async def consume_until_equal(service, dsn, timeout=30.0):
    """A consumer as a screen would be: resync loads from the database, batches move counts."""
    counts = QueueCounts()
    sub = service.bus.subscribe()
    batches = []
    conn = await aconnect(dsn)
    try:
        async with asyncio.timeout(timeout):
            while True:
                batch = await sub.next()
                batches.append(batch)
                if batch.resync:
                    counts.load(await status_counts(conn))
                else:
                    counts.apply(batch.tasks)
                truth = {(s, t): n for s, t, n in await status_counts(conn)}
                if counts.as_dict() == truth and sum(b.raw_events for b in batches) >= 10_000:
                    return batches, counts
    finally:
        await conn.close()


@pytest.mark.parametrize("mode", ["notify", "poll"])
async def test_burst_of_10000_events_arrives_coalesced_and_final_state_equals_database(db_dsn, mode):
    service = LiveService(db_dsn, mode=mode, poll_interval=0.2)
    assert await service.start() == mode
    try:
        consumer = asyncio.create_task(consume_until_equal(service, db_dsn))
        await asyncio.sleep(0.5)  # let the source connect and the first resync land
        await make_burst(db_dsn)
        batches, counts = await consumer
    finally:
        await service.stop()
    raw = sum(b.raw_events for b in batches)
    assert raw >= 10_000
    # Coalesced: a handful of deliveries (≤ ~10/s), each standing for many events.
    assert len(batches) <= 60, len(batches)
    assert max(b.raw_events for b in batches) >= 1000
    with psycopg.connect(db_dsn) as conn:
        truth = {
            (s, t): n
            for s, t, n in conn.execute("SELECT status, task_type, count(*) FROM execution_tasks GROUP BY 1, 2")
        }
    assert counts.as_dict() == truth and truth[("succeeded", "implement_idea")] == 834


async def collect_mqtt(url, topic, stop, into):
    target = parse_mqtt_url(url)
    async with aiomqtt.Client(target.host, target.port) as client:
        await client.subscribe(topic, qos=1)
        into.append("subscribed")
        async for message in client.messages:
            into.append((str(message.topic), json.loads(message.payload), message.retain))
            if stop.is_set():
                break


@pytest.mark.slow
async def test_every_transition_of_a_small_run_arrives_on_its_topic(db_dsn, mqtt_url, isolated_env):
    received: list = []
    stop = asyncio.Event()
    listener = asyncio.create_task(collect_mqtt(mqtt_url, "fsar/v1/#", stop, received))
    while not received:
        await asyncio.sleep(0.05)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fsar_tui",
        "simulate",
        "--workers",
        "2",
        "--tasks",
        "40",
        "--rate",
        "0",
        "--time-scale",
        "0",
        "--until-idle",
        "--seed",
        "3",
        env={**isolated_env, "FSAR_DSN": db_dsn, "FSAR_MQTT_URL": mqtt_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    await asyncio.sleep(1.0)
    stop.set()
    listener.cancel()
    messages = [m for m in received if m != "subscribed"]
    tasks = {
        (body["id"], body["status"], body["attempt"])
        for topic, body, _ in messages
        if topic.startswith("fsar/v1/tasks/")
    }
    for topic, body, _ in messages:
        if topic.startswith("fsar/v1/tasks/"):
            assert topic == f"fsar/v1/tasks/{body['task_type']}/{body['status']}"
            assert {"id", "task_type", "ai_model", "status", "attempt", "at", "duration_ms", "cost"} <= set(body)
    with psycopg.connect(db_dsn) as conn:
        expected = set(conn.execute("SELECT task_id, to_status, attempt FROM task_events").fetchall())
    assert expected and tasks == expected
    # This run's own presence only: a shared broker keeps other (earlier) processes'
    # retained offline messages, which arrive first on subscribe.
    presence = [
        body["state"]
        for topic, body, retained in messages
        if topic.startswith("fsar/v1/workers/") and topic.endswith(f"-{proc.pid}") and not retained
    ]
    assert presence[0] == "online" and presence[-1] == "offline"


@pytest.mark.slow
async def test_presence_turns_offline_when_a_worker_process_is_killed(db_dsn, mqtt_url, isolated_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsar_tui", "simulate", "--no-enqueue", "--workers", "1", "--duration", "120"],
        env={**isolated_env, "FSAR_DSN": db_dsn, "FSAR_MQTT_URL": mqtt_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    topic = None
    target = parse_mqtt_url(mqtt_url)
    try:
        async with aiomqtt.Client(target.host, target.port) as client:
            await client.subscribe("fsar/v1/workers/#", qos=1)
            async with asyncio.timeout(30):
                async for message in client.messages:
                    body = json.loads(message.payload)
                    if body.get("pid") == proc.pid and body["state"] == "online":
                        topic = str(message.topic)
                        proc.send_signal(signal.SIGKILL)
                    elif topic and str(message.topic) == topic and body["state"] == "offline":
                        break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert topic is not None


def test_broker_down_workers_keep_executing_and_say_so_once(run_cli, db_dsn):
    from support.pgcluster import free_port

    dead = f"mqtt://127.0.0.1:{free_port()}"
    proc = run_cli(
        "simulate",
        "--workers",
        "2",
        "--tasks",
        "30",
        "--rate",
        "0",
        "--time-scale",
        "0",
        "--until-idle",
        "--dsn",
        db_dsn,
        "--mqtt-url",
        dead,
    )
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM execution_tasks WHERE status IN ('succeeded', 'failed')"
        ).fetchone() == (30,)
    assert proc.stderr.count("unavailable") == 1, proc.stderr
