"""The simulator's outage limit: a fleet whose database is gone for good ends its run.

The enqueuer and the workers reconnect after a lost connection (a restart, a failover)
and go on — that is the integration contract. But a database that does not come back
left `simulate` retrying for ever and, once stopped, printing "claimed 0 …" and exiting
0 as if it had run. So one watcher per process probes the database with a direct
connection every PROBE_S while the run lasts; after `limit_s` without one answer it
stops the run and `run_process` ends it as a connection error: one line, exit 2
(issue 18, point 6). `--outage-limit 0` keeps retrying for ever (a fleet that must
outlive any outage). A probe answered resets the clock, so a restart or a brief
network cut never ends the run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fsar_tui.db.connect import aconnect
from fsar_tui.errors import ConnectionFailed, first_line

PROBE_S = 1.0


@dataclass
class Outage:
    """What the watcher found: set when the limit was reached."""

    cause: str | None = None
    lasted_s: float = 0.0


async def outage_watch(dsn: str, stop: asyncio.Event, limit_s: float, found: Outage) -> None:
    """Until `stop`: probe; after limit_s with no answer, fill `found` and set `stop`."""
    answered = time.monotonic()
    while not stop.is_set():
        try:
            conn = await asyncio.wait_for(aconnect(dsn), timeout=max(PROBE_S, 5.0))
        except (ConnectionFailed, OSError, TimeoutError) as exc:
            cause = exc.message if isinstance(exc, ConnectionFailed) else first_line(exc) or type(exc).__name__
            if time.monotonic() - answered >= limit_s:
                found.cause, found.lasted_s = cause, time.monotonic() - answered
                stop.set()
                return
        else:
            await conn.close()
            answered = time.monotonic()
        try:
            await asyncio.wait_for(stop.wait(), timeout=PROBE_S)
        except TimeoutError:
            pass
