"""One reconnect policy for every long-lived connection (NOTIFY, polling, MQTT).

Backoff with full jitter (domain.backoff), and outages reported once: one line when
the connection is lost, one when it is back — never one per retry or per message.
It also keeps the connection's state (connecting / connected / reconnecting) and the
number of failed attempts, which the header shows, and calls `on_connected` each time
the connection is made (a database source tells the app's session that the database
answers: session.database_answered).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from fsar_tui.domain.backoff import backoff_delay
from fsar_tui.errors import first_line

log = logging.getLogger("fsar_tui.live")


class Reconnect:
    def __init__(
        self,
        what: str,
        *,
        base: float = 0.2,
        cap: float = 5.0,
        lost_message: str = "{what}: lost ({error}); reconnecting",
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.what = what
        self.base = base
        self.cap = cap
        self.lost_message = lost_message
        self.attempt = 0
        self.outages = 0
        self.reconnects = 0
        self.state = "connecting"
        self.on_connected = on_connected
        self._rng = random.Random()

    def connected(self) -> None:
        if self.attempt:
            log.warning("%s: reconnected", self.what)
        self.attempt = 0
        if self.on_connected is not None:
            self.on_connected()  # before the state says so: whoever sees "connected" sees its effect
        self.state = "connected"

    async def failed(self, error: BaseException) -> None:
        if self.attempt == 0:
            self.outages += 1
            log.warning(self.lost_message.format(what=self.what, error=first_line(error)))
        self.attempt += 1
        self.reconnects += 1
        self.state = "reconnecting"
        await asyncio.sleep(backoff_delay(self.attempt, self._rng, base=self.base, cap=self.cap))
