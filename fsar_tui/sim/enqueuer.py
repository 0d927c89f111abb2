"""Feeds the queue: new tasks at a steady rate (or a fixed number at once).

Like the workers, it outlives a database restart: a lost connection is reopened with
jittered backoff and enqueuing goes on (a batch whose INSERT failed is drawn again, so
`done` counts only what was stored). Any other error ends it, and with it the run
(sim/runner.py reports it and exits 1)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

import psycopg

from fsar_tui.db import executor
from fsar_tui.db.connect import aconnect
from fsar_tui.domain.backoff import backoff_delay
from fsar_tui.domain.events import TaskChange
from fsar_tui.errors import ConnectionFailed
from fsar_tui.sim import profiles
from fsar_tui.sim.worker import announce

if TYPE_CHECKING:
    from fsar_tui.live.mqtt import MqttPublisher  # aiomqtt loads only where a broker is named

log = logging.getLogger("fsar_tui.sim.enqueuer")

BATCH = 500
TICK_S = 0.1


def draw_tasks(rng: random.Random, n: int, max_attempts: int = 3) -> list[dict]:
    tasks = []
    for _ in range(n):
        task_type, model, idea, payload = profiles.draw_task(rng)
        tasks.append(
            {
                "task_type": task_type,
                "ai_model": model,
                "idea_id": idea if task_type != "self_improvement" else None,
                "payload": payload,
                "priority": 1 if rng.random() < 0.1 else 0,
                "max_attempts": max_attempts,
            }
        )
    return tasks


async def enqueue_loop(
    dsn: str, *, rate: float, total: int | None, seed: int, stop: asyncio.Event, publisher: MqttPublisher | None = None
) -> int:
    """Enqueue until `total` tasks (if given) or until stopped; returns how many."""
    rng = random.Random(f"enqueue:{seed}")
    jitter = random.Random()
    conn: psycopg.AsyncConnection | None = await aconnect(dsn)
    done = 0
    failures = 0
    started = time.monotonic()
    try:
        while not stop.is_set() and (total is None or done < total):
            if conn is None or conn.closed:
                try:
                    conn = await aconnect(dsn)
                    failures = 0
                except ConnectionFailed as exc:
                    failures += 1
                    log.warning("enqueuer: %s; retrying", exc.message)
                    await _pause(stop, backoff_delay(failures, jitter, base=0.2, cap=5.0))
                    continue
            if rate > 0:
                due = int((time.monotonic() - started) * rate) - done
            else:
                due = BATCH
            if total is not None:
                due = min(due, total - done)
            if due > 0:
                batch = draw_tasks(rng, min(due, BATCH))
                try:
                    rows = await executor.enqueue(conn, batch)
                except psycopg.OperationalError as exc:  # the server went away: reconnect and go on
                    log.warning("enqueuer: connection lost (%s); reconnecting", str(exc).strip().split("\n")[0])
                    await conn.close()
                    conn = None
                    continue
                for task, (task_id, queued_at) in zip(batch, rows, strict=True):
                    await announce(
                        publisher,
                        TaskChange(
                            task_id, task["task_type"], task["ai_model"], None, "queued", 0, queued_at.isoformat()
                        ),
                    )
                done += len(batch)
            elif rate > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=TICK_S)
                except TimeoutError:
                    pass
    finally:
        if conn is not None:
            await conn.close()
    return done


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
