"""Live ingestion of FSAR reports published on MQTT `fsar/v1/proposals` (`--ingest-live`).

Each message's payload is one report, as the file would hold it (UTF-8 text). It goes
through the same parser and the same all-or-nothing ingestion as `fsar-tui ingest-fsar`
(a batch of one): re-publishing a stored report is a no-op, a different report under a
stored id is a conflict and is refused, a malformed one is refused with line and reason.
The outcome of every message is reported through `on_result(message, ok)` (the app shows
it as a notification). The subscription reconnects with backoff, like the live source.

Delivery: QoS 1 gets each report to the app at least once while it is subscribed; a
report published while no app with --ingest-live is connected is not kept by the broker
(publish the file with `fsar-tui ingest-fsar` too when it matters).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiomqtt
import psycopg

from fsar_tui.domain.fsar_report import ReportError, parse_report
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import FsarError, first_line
from fsar_tui.live.mqtt import parse_mqtt_url
from fsar_tui.live.reconnect import Reconnect

PROPOSALS_TOPIC = "fsar/v1/proposals"


def ingest_message(dsn: str, payload: bytes, *, statement_timeout_ms: int, actor: str) -> tuple[str, bool]:
    """Parse and store one published report: (what happened, whether it was stored or already there)."""
    from fsar_tui.db import proposals
    from fsar_tui.db.connect import connect

    try:
        report = parse_report(payload, f"mqtt:{PROPOSALS_TOPIC}")
    except ReportError as err:
        return f"rejected: {err}", False
    try:
        with connect(dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
            result = proposals.ingest(conn, [report], actor=actor)
    except FsarError as err:
        return f"{report.id}: {err.message}" + (f" ({err.details[0]})" if err.details else ""), False
    except psycopg.Error as exc:
        return f"{report.id}: not stored: {type(exc).__name__}: {mask_dsn(first_line(exc))}", False
    if result.unchanged:
        return f"{report.id}: already stored (unchanged)", True
    blocks = f", BLOCKS {report.task_type}" if report.block_execution else ""
    return f"ingested {report.id} (severity {report.severity}{blocks})", True


async def follow_proposals(
    url: str,
    dsn: str,
    on_result: Callable[[str, bool], None],
    *,
    statement_timeout_ms: int,
    actor: str = "mqtt-ingest",
    subscribed: asyncio.Event | None = None,
) -> None:
    """Subscribe and ingest until cancelled."""
    target = parse_mqtt_url(url)
    reconnect = Reconnect(f"mqtt {mask_dsn(url)}", base=0.5, cap=10.0)
    while True:
        try:
            async with target.client() as client:
                await client.subscribe(PROPOSALS_TOPIC, qos=1)
                reconnect.connected()
                if subscribed is not None:
                    subscribed.set()
                async for message in client.messages:
                    outcome = await asyncio.to_thread(
                        ingest_message,
                        dsn,
                        bytes(message.payload or b""),
                        statement_timeout_ms=statement_timeout_ms,
                        actor=actor,
                    )
                    on_result(*outcome)
        except aiomqtt.MqttError as exc:
            if subscribed is not None:
                subscribed.clear()
            await reconnect.failed(exc)
