"""Choosing and running the live source: mqtt, notify or poll.

`--live auto` (default): MQTT when a broker URL is configured (workers publish there,
and one broker fans out to any number of panels); else LISTEN/NOTIFY, proven by a
probe; else polling (a transaction pooler swallowed the probe). Behind a transaction
pooler fsar-tui already knows of (db/pooler.py: configured, or detected by the app's
first connection) it polls without trying LISTEN: the LISTEN would stay on one of the
pooler's server connections, which then receives every NOTIFY — PgBouncer logs a
warning for each ("got packet 'A' from server when not linked") and hands them to
whichever client gets that connection next. `--live mqtt|notify|poll` forces one.
Consumers subscribe to the bus and never care which. `on_database` is called whenever
a database source (notify, poll) connects — it proves the database reachable; an MQTT
connection proves only the broker's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fsar_tui.config import LIVE_MODES
from fsar_tui.db import pooler
from fsar_tui.errors import UsageError
from fsar_tui.live.bus import EventBus
from fsar_tui.live.mqtt import MqttSource
from fsar_tui.live.notify import ListenUnsupported, NotifySource
from fsar_tui.live.poll import PollSource

log = logging.getLogger("fsar_tui.live")


class LiveService:
    def __init__(
        self,
        dsn: str,
        *,
        mode: str = "auto",
        mqtt_url: str | None = None,
        interval: float = 0.1,
        poll_interval: float = 0.5,
        on_database: Callable[[], None] | None = None,
    ) -> None:
        if mode not in LIVE_MODES:
            raise UsageError(f"unknown live mode {mode!r}; choose one of {', '.join(LIVE_MODES)}")
        if mode == "mqtt" and not mqtt_url:
            raise UsageError("--live mqtt needs an MQTT URL (--mqtt-url or FSAR_MQTT_URL)")
        self.dsn = dsn
        self.mode = mode
        self.mqtt_url = mqtt_url
        self.poll_interval = poll_interval
        self.on_database = on_database
        self.bus = EventBus(interval)
        self.source: MqttSource | NotifySource | PollSource | None = None
        self._tasks: list[asyncio.Task] = []
        self.fallback_reason: str | None = None

    async def start(self) -> str:
        """Pick the source, start it and the bus; returns the source name."""
        first = None
        if self.mqtt_url and self.mode in ("mqtt", "auto"):  # mode "mqtt" requires a URL (__init__)
            self.source = MqttSource(self.mqtt_url, self.bus)
        elif self.mode == "poll":
            self.source = PollSource(self.dsn, self.bus, self.poll_interval, self.on_database)
        elif self.mode == "auto" and pooler.known(self.dsn):
            self.fallback_reason = "a transaction pooler is in between: LISTEN would deliver nothing"
            log.warning("live: %s; polling instead", self.fallback_reason)
            self.source = PollSource(self.dsn, self.bus, self.poll_interval, self.on_database)
        else:
            notify = NotifySource(self.dsn, self.bus, self.on_database)
            try:
                first = await notify.connect()
                self.source = notify
            except ListenUnsupported as exc:
                if self.mode == "notify":
                    raise UsageError(str(exc)) from None
                self.fallback_reason = str(exc)
                log.warning("live: %s; polling instead", exc)
                self.source = PollSource(self.dsn, self.bus, self.poll_interval, self.on_database)
        self._tasks.append(asyncio.create_task(self.bus.run(), name="live-bus"))
        run = self.source.run(first) if isinstance(self.source, NotifySource) else self.source.run()
        self._tasks.append(asyncio.create_task(run, name=f"live-{self.source.name}"))
        return self.source.name

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
