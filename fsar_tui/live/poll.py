"""Polling task_events when LISTEN cannot work (PgBouncer transaction mode).

Reads `task_events` past the last id seen, every `interval` seconds. Ids are handed
out at INSERT but rows become visible at COMMIT, so a slow transaction can publish
an id below one already seen: each poll re-reads a LOOKBACK of ids below the high
water mark and skips the ones it delivered. Anything later than that is still caught
by the periodic resync (every RESYNC_S), because the database is the truth. Each
connection made proves the database reachable: `on_connected` is called.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg

from fsar_tui.db.connect import aconnect
from fsar_tui.db.live_queries import events_after, latest_event_id
from fsar_tui.domain.events import TaskChange
from fsar_tui.dsn import describe_target
from fsar_tui.errors import ConnectionFailed
from fsar_tui.live.bus import EventBus
from fsar_tui.live.reconnect import Reconnect

LOOKBACK_IDS = 2000
RESYNC_S = 30.0


class PollSource:
    name = "poll"

    def __init__(
        self, dsn: str, bus: EventBus, interval: float = 0.5, on_connected: Callable[[], None] | None = None
    ) -> None:
        self.dsn = dsn
        self.bus = bus
        self.interval = interval
        self.reconnect = Reconnect(f"poll {describe_target(self.dsn)}", on_connected=on_connected)
        self.high = 0
        self._seen: set[int] = set()

    @property
    def state(self) -> str:
        return self.reconnect.state

    async def run(self) -> None:
        conn = None
        while True:
            try:
                conn = await aconnect(self.dsn)
                if self.high == 0:
                    self.high = await latest_event_id(conn)
                self.reconnect.connected()
                self.bus.request_resync()
                last_resync = time.monotonic()
                while True:
                    await self.poll_once(conn)
                    if time.monotonic() - last_resync > RESYNC_S:
                        self.bus.request_resync()
                        last_resync = time.monotonic()
                    await asyncio.sleep(self.interval)
            except (psycopg.OperationalError, ConnectionFailed) as exc:
                if conn is not None:
                    await conn.close()
                conn = None
                await self.reconnect.failed(exc)

    async def poll_once(self, conn: psycopg.AsyncConnection) -> int:
        floor = max(0, self.high - LOOKBACK_IDS)
        delivered = 0
        while True:
            rows = await events_after(conn, floor)
            for event_id, task_id, task_type, model, from_s, to_s, attempt, at in rows:
                floor = event_id
                if event_id in self._seen:
                    continue
                self._seen.add(event_id)
                self.high = max(self.high, event_id)
                self.bus.publish(TaskChange(task_id, task_type, model, from_s, to_s, attempt, at.isoformat()))
                delivered += 1
            if len(rows) < 5000:
                break
        # Forget ids that fell below the lookback window.
        low = self.high - LOOKBACK_IDS
        if len(self._seen) > 2 * LOOKBACK_IDS:
            self._seen = {i for i in self._seen if i > low}
        return delivered
