"""The coalescing event bus between live sources and their consumers.

Sources call `publish()` / `request_resync()` (cheap, never block). A flusher task
delivers to every subscriber at most once per `interval` (0.1 s: about 10 batches a
second however fast events arrive), folding task changes per task (coalesce.py).
A subscriber that falls behind never builds a backlog: undelivered changes are merged
into its one pending batch, so memory stays bounded by the number of distinct tasks
changed, not by the event rate.
"""

from __future__ import annotations

import asyncio
import time

from fsar_tui.domain.events import Batch, ControlChange, Presence, TaskChange
from fsar_tui.live.coalesce import coalesce

DEFAULT_INTERVAL_S = 0.1


class Subscription:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._pending = Batch()
        self._ready = asyncio.Event()

    def _offer(self, batch: Batch) -> None:
        p = self._pending
        p.tasks = coalesce([*p.tasks, *batch.tasks]) if p.tasks else batch.tasks
        p.control.extend(batch.control)
        p.presence.extend(batch.presence)
        p.resync = p.resync or batch.resync
        p.raw_events += batch.raw_events
        self._ready.set()

    async def next(self) -> Batch:
        await self._ready.wait()
        self._ready.clear()
        batch, self._pending = self._pending, Batch()
        return batch

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Batch:
        return await self.next()

    def close(self) -> None:
        self._bus._subscribers.discard(self)


class EventBus:
    def __init__(self, interval: float = DEFAULT_INTERVAL_S) -> None:
        self.interval = interval
        self._subscribers: set[Subscription] = set()
        self._tasks: list[TaskChange] = []
        self._control: list[ControlChange] = []
        self._presence: list[Presence] = []
        self._resync = False
        self._raw = 0
        self._wake = asyncio.Event()
        self.batches_delivered = 0
        self.events_received = 0

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        self._subscribers.add(sub)
        return sub

    def publish(self, event: TaskChange | ControlChange | Presence) -> None:
        if isinstance(event, TaskChange):
            self._tasks.append(event)
        elif isinstance(event, ControlChange):
            self._control.append(event)
        else:
            self._presence.append(event)
        self._raw += 1
        self.events_received += 1
        self._wake.set()

    def request_resync(self) -> None:
        self._resync = True
        self._wake.set()

    def _take(self) -> Batch:
        batch = Batch(coalesce(self._tasks), self._control, self._presence, self._resync, self._raw)
        self._tasks, self._control, self._presence, self._resync, self._raw = [], [], [], False, 0
        return batch

    async def run(self) -> None:
        """Deliver batches forever (run it as a task)."""
        last = 0.0
        while True:
            await self._wake.wait()
            # Rate limit: wait out the rest of the interval, collecting more events meanwhile.
            delay = self.interval - (time.monotonic() - last)
            if delay > 0:
                await asyncio.sleep(delay)
            self._wake.clear()
            batch = self._take()
            last = time.monotonic()
            if not (batch.tasks or batch.control or batch.presence or batch.resync):
                continue
            self.batches_delivered += 1
            for sub in list(self._subscribers):
                sub._offer(batch)
