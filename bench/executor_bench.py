"""Executor benchmarks (issue: the executing side), each against the naive approach.

(The seed rate is bench/seed_bench.py's, group `seed`.)
- claim throughput: 8 workers on zero-duration tasks, SKIP LOCKED claim vs the naive
  claim (`FOR UPDATE` without SKIP LOCKED: workers queue behind each other's lock).
- event-to-consumer latency at ~1,000 events/s: commit → consumer batch, through
  NOTIFY and through MQTT, against polling task_events (the naive live source).
"""

from __future__ import annotations

import asyncio
import random
import time

import psycopg

from bench.common import SMALL, fresh_database, percentile, print_table
from fsar_tui.db import executor
from fsar_tui.db.connect import aconnect
from fsar_tui.live.service import LiveService
from fsar_tui.sim.enqueuer import draw_tasks
from fsar_tui.sim.worker import SimConfig, Worker, WorkerStats

NAIVE_CLAIM_SQL = executor.CLAIM_SQL.replace("FOR UPDATE SKIP LOCKED", "FOR UPDATE")


async def _claim_run(dsn: str, sql: str | None, n_tasks: int) -> float:
    conn = await aconnect(dsn)
    await executor.enqueue(conn, draw_tasks(random.Random(2), n_tasks, max_attempts=1))
    await conn.close()
    stop = asyncio.Event()
    stats = WorkerStats()
    original = executor.CLAIM_SQL
    if sql is not None:
        executor.CLAIM_SQL = sql
    try:
        workers = [
            Worker(dsn, f"bench-{i}", SimConfig(seed=3, time_scale=0, lease_s=30, idle_sleep_s=0.01), stop, stats=stats)
            for i in range(8)
        ]
        t = time.perf_counter()
        tasks = [asyncio.create_task(w.run()) for w in workers]
        watch = await aconnect(dsn)
        while await executor.active_work_count(watch) > 0:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t
        stop.set()
        await asyncio.gather(*tasks)
        await watch.close()
    finally:
        executor.CLAIM_SQL = original
    return n_tasks / elapsed


def bench_claims(server_dsn: str) -> list[list[object]]:
    n = 2_000 if SMALL else 10_000
    with fresh_database(server_dsn) as dsn:
        fast = asyncio.run(_claim_run(dsn, None, n))
    with fresh_database(server_dsn) as dsn:
        naive = asyncio.run(_claim_run(dsn, NAIVE_CLAIM_SQL, n))
    return [
        ["claim SKIP LOCKED, 8 workers", f"{n:,}", f"{fast:,.0f} tasks/s", f"{fast / naive:.1f}×"],
        ["claim FOR UPDATE (naive), 8 workers", f"{n:,}", f"{naive:,.0f} tasks/s", "1.0×"],
    ]


async def _latency(dsn: str, mode: str, mqtt_url: str | None, seconds: float) -> list[float]:
    """Commit-to-consumer latency (ms) of status changes produced at ~1,000 events/s."""
    service = LiveService(dsn, mode=mode, mqtt_url=mqtt_url, poll_interval=0.5)
    await service.start()
    sub = service.bus.subscribe()
    committed: dict[tuple[int, str], float] = {}
    latencies: list[float] = []
    publisher = None
    if mqtt_url:
        from fsar_tui.domain.events import TaskChange, task_message, task_topic
        from fsar_tui.live.mqtt import MqttPublisher

        publisher = MqttPublisher(mqtt_url, presence_id="bench", presence={})
        pub_task = asyncio.create_task(publisher.run())
        await asyncio.wait_for(publisher.connected.wait(), 5)
        await asyncio.sleep(0.5)

    async def consume():
        async for batch in sub:
            now = time.perf_counter()
            for change in batch.tasks:
                at = committed.pop((change.id, change.to_status), None)
                if at is not None:
                    latencies.append((now - at) * 1000)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(1.0)
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    per_tick, tick = 10, 0.01  # 10 events every 10 ms ≈ 1,000 events/s
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        cur = await conn.execute(
            "INSERT INTO execution_tasks (task_type, ai_model) SELECT 'implement_idea', 'gpt-4o' "
            "FROM generate_series(1, %s) RETURNING id",
            (per_tick,),
        )
        ids = [r[0] for r in await cur.fetchall()]
        done = time.perf_counter()
        for task_id in ids:
            committed[(task_id, "queued")] = done
            if publisher is not None:
                change = TaskChange(task_id, "implement_idea", "gpt-4o", None, "queued", 0)
                await publisher.publish(task_topic(change), task_message(change))
        await asyncio.sleep(max(0.0, tick - (time.perf_counter() - started)))
    await asyncio.sleep(1.5)
    consumer.cancel()
    await conn.close()
    if publisher is not None:
        pub_task.cancel()
    await service.stop()
    return latencies


def bench_latency(server_dsn: str, mqtt_url: str | None) -> list[list[object]]:
    seconds = 3 if SMALL else 10
    rows = []
    results = {}
    for mode in ("notify", "mqtt", "poll"):
        if mode == "mqtt" and not mqtt_url:
            rows.append(["mqtt", "-", "-", "-", "no broker (set FSAR_TEST_MQTT_URL)"])
            continue
        with fresh_database(server_dsn) as dsn:
            lat = asyncio.run(_latency(dsn, mode, mqtt_url if mode == "mqtt" else None, seconds))
        results[mode] = lat
    poll_p50 = percentile(results["poll"], 50)
    for mode, lat in results.items():
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        rows.append(
            [
                mode + (" (naive)" if mode == "poll" else ""),
                f"{len(lat):,}",
                f"{p50:.0f} ms",
                f"{p99:.0f} ms",
                f"{poll_p50 / p50:.1f}× faster p50 than polling" if mode != "poll" else "1.0×",
            ]
        )
    return rows


def run(server_dsn: str, mqtt_url: str | None) -> None:
    print_table(
        "Claim throughput, zero-duration tasks", ["approach", "tasks", "throughput", "ratio"], bench_claims(server_dsn)
    )
    print_table(
        "Event-to-consumer latency at ~1,000 events/s (includes the 100 ms coalescing window)",
        ["source", "events", "p50", "p99", "vs polling"],
        bench_latency(server_dsn, mqtt_url),
    )
