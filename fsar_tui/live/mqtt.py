"""MQTT through aiomqtt: a resilient publisher (workers) and a source (the panel).

Topics (DESIGN.md §4), QoS 1, JSON bodies:
  fsar/v1/tasks/{task_type}/{status}   every transition (id, task_type, ai_model,
                                       status, from, attempt, at, duration_ms, cost)
  fsar/v1/workers/{worker_id}          presence, retained; the Last Will says offline
  fsar/v1/control/#                    retained controls (rollouts, blocks)

Presence is per worker *process*: an MQTT connection has exactly one Last Will, so
the process's connection carries `{"state": "online", "workers": [...]}` and the
broker turns it `offline` the moment the process dies.

The broker is optional for correctness (the database is the truth): while it is
down, publishing drops messages, workers keep executing, and the outage is reported
once, not once per message; the connection is retried with backoff.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

from fsar_tui.domain.events import parse_mqtt, topic_segment
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import UsageError
from fsar_tui.live.bus import EventBus
from fsar_tui.live.reconnect import Reconnect

TOPICS = ("fsar/v1/tasks/#", "fsar/v1/workers/#", "fsar/v1/control/#")


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    def client(self, *, identifier: str | None = None, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            will=will,
            keepalive=10,
            timeout=5,
            tls_context=ssl.create_default_context() if self.tls else None,
        )


def parse_mqtt_url(url: str) -> MqttTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise UsageError(f"invalid MQTT URL {mask_dsn(url)!r}: expected mqtt://[user:password@]host[:port]")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise UsageError(f"invalid MQTT URL {mask_dsn(url)!r}: bad port") from None
    return MqttTarget(
        parts.hostname,
        port,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        tls,
    )


class MqttPublisher:
    """Keeps one connection (with a presence Last Will) and publishes best-effort."""

    def __init__(self, url: str, *, presence_id: str, presence: dict[str, Any]) -> None:
        self.target = parse_mqtt_url(url)
        self.url = url
        self.presence_topic = f"fsar/v1/workers/{presence_id}"
        self.presence = presence
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.published = 0
        self.dropped = 0
        self._stopping = False

    async def publish(self, topic: str, body: dict[str, Any], *, retain: bool = False) -> None:
        client = self.client
        if client is None:
            self.dropped += 1
            return
        try:
            await client.publish(topic, json.dumps(body, default=str), qos=1, retain=retain)
            self.published += 1
        except aiomqtt.MqttError:
            self.dropped += 1

    async def run(self) -> None:
        policy = Reconnect(
            f"mqtt {mask_dsn(self.url)}",
            base=0.5,
            cap=10.0,
            lost_message=("{what}: broker unavailable ({error}); continuing with database events only, retrying"),
        )
        will = aiomqtt.Will(self.presence_topic, json.dumps({"state": "offline"}), qos=1, retain=True)
        while not self._stopping:
            try:
                async with self.target.client(will=will) as client:
                    await client.publish(
                        self.presence_topic, json.dumps({"state": "online", **self.presence}), qos=1, retain=True
                    )
                    policy.connected()
                    self.client = client
                    self.connected.set()
                    # Hold the connection open until it breaks (or we are stopped).
                    async for _ in client.messages:
                        pass
            except aiomqtt.MqttError as exc:
                self.client = None
                self.connected.clear()
                await policy.failed(exc)

    async def close(self) -> None:
        """Graceful stop: say offline ourselves (the Will is for crashes)."""
        self._stopping = True
        client = self.client
        if client is not None:
            try:
                await client.publish(self.presence_topic, json.dumps({"state": "offline"}), qos=1, retain=True)
            except aiomqtt.MqttError:
                pass


class MqttSource:
    name = "mqtt"

    def __init__(self, url: str, bus: EventBus) -> None:
        self.target = parse_mqtt_url(url)
        self.url = url
        self.bus = bus
        # An operator console: back within 5 s of the broker (the workers' publisher may wait longer).
        self.reconnect = Reconnect(f"mqtt {mask_dsn(url)}", base=0.5, cap=5.0)
        self.subscribed = asyncio.Event()

    @property
    def state(self) -> str:
        return self.reconnect.state

    async def run(self) -> None:
        while True:
            try:
                async with self.target.client() as client:
                    for topic in TOPICS:
                        await client.subscribe(topic, qos=1)
                    self.reconnect.connected()
                    self.subscribed.set()
                    self.bus.request_resync()
                    async for message in client.messages:
                        event = parse_mqtt(str(message.topic), bytes(message.payload or b""))
                        if event is not None:
                            self.bus.publish(event)
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                await self.reconnect.failed(exc)


async def publish_once(url: str, topic: str, body: dict[str, Any], *, retain: bool = False) -> None:
    """One message on a short-lived connection (the CLI's control messages); raises
    aiomqtt.MqttError when the broker cannot be reached."""
    async with parse_mqtt_url(url).client() as client:
        await client.publish(topic, json.dumps(body, default=str), qos=1, retain=retain)


async def announce_rollout(url: str, target: str, revision: int, copy_of: int) -> None:
    """The retained control message that tells workers a target's active revision changed
    (`fsar/v1/control/rollouts/{target}`); the database's NOTIFY says it too."""
    await publish_once(
        url,
        f"fsar/v1/control/rollouts/{topic_segment(target)}",
        {"target": target, "revision": revision, "copy_of": copy_of},
        retain=True,
    )


async def announce_canary(url: str, target: str, canary_id: int, state: str, weight: int, why: str) -> None:
    """The retained control message of a canary's move (`fsar/v1/control/canaries/{target}`):
    an abort tells workers that every claim from now runs on stable; the database's NOTIFY
    says it too."""
    await publish_once(
        url,
        f"fsar/v1/control/canaries/{topic_segment(target)}",
        {"target": target, "canary": canary_id, "state": state, "weight": weight, "why": why[:500]},
        retain=True,
    )
