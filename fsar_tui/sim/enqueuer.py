"""Feeds the queue: new tasks at a steady rate (or a fixed number at once)."""

from __future__ import annotations

import asyncio
import random
import time

from fsar_tui.db import executor
from fsar_tui.db.connect import aconnect
from fsar_tui.domain.events import TaskChange
from fsar_tui.live.mqtt import MqttPublisher
from fsar_tui.sim import profiles
from fsar_tui.sim.worker import announce

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
    conn = await aconnect(dsn)
    done = 0
    started = time.monotonic()
    try:
        while not stop.is_set() and (total is None or done < total):
            if rate > 0:
                due = int((time.monotonic() - started) * rate) - done
            else:
                due = BATCH
            if total is not None:
                due = min(due, total - done)
            if due > 0:
                batch = draw_tasks(rng, min(due, BATCH))
                rows = await executor.enqueue(conn, batch)
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
        await conn.close()
    return done
