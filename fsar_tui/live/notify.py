"""LISTEN fsar_events on a dedicated connection.

On connect it LISTENs, then proves delivery with a probe NOTIFY (sent from a second
connection): behind PgBouncer in transaction mode (Neon's pooled endpoint) LISTEN is
accepted but nothing ever arrives, and the probe times out with `ListenUnsupported`
so the caller falls back to polling. After a disconnect it reconnects with backoff,
asks consumers to resync, and says so once per outage. Each connection made proves the
database reachable: `on_connected` is called (the app's session, at once).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import psycopg

from fsar_tui.db import live_queries
from fsar_tui.db.connect import aconnect
from fsar_tui.domain.events import parse_notify
from fsar_tui.dsn import describe_target
from fsar_tui.errors import ConnectionFailed
from fsar_tui.live.bus import EventBus
from fsar_tui.live.reconnect import Reconnect

PROBE_TIMEOUT_S = 2.0


class ListenUnsupported(Exception):
    """LISTEN is accepted but notifications are not delivered (transaction pooler)."""


class NotifySource:
    name = "notify"

    def __init__(self, dsn: str, bus: EventBus, on_connected: Callable[[], None] | None = None) -> None:
        self.dsn = dsn
        self.bus = bus
        self.reconnect = Reconnect(f"notify {describe_target(self.dsn)}", on_connected=on_connected)

    @property
    def state(self) -> str:
        return self.reconnect.state

    async def _probe(self, conn: psycopg.AsyncConnection) -> None:
        nonce = uuid.uuid4().hex
        sender = await aconnect(self.dsn)
        try:
            await live_queries.notify(sender, json.dumps({"kind": "probe", "nonce": nonce}))
        finally:
            await sender.close()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                async for note in conn.notifies():
                    if nonce in note.payload:
                        return
                    self._handle(note.payload)
        except TimeoutError:
            raise ListenUnsupported(
                f"LISTEN on {describe_target(self.dsn)} delivers nothing (a transaction pooler such as PgBouncer?)"
            ) from None

    def _handle(self, payload: str) -> None:
        event = parse_notify(payload)
        if event is not None:
            self.bus.publish(event)

    async def connect(self) -> psycopg.AsyncConnection:
        conn = await aconnect(self.dsn)
        try:
            await live_queries.listen(conn)
            await self._probe(conn)
        except BaseException:
            await conn.close()  # a probe that failed leaves no connection behind
            raise
        return conn

    async def run(self, first: psycopg.AsyncConnection | None = None) -> None:
        conn = first
        while True:
            try:
                if conn is None:
                    conn = await self.connect()
                self.reconnect.connected()
                self.bus.request_resync()
                async for note in conn.notifies():
                    self._handle(note.payload)
            except (psycopg.OperationalError, ConnectionFailed) as exc:
                if conn is not None:
                    await conn.close()
                conn = None
                await self.reconnect.failed(exc)
