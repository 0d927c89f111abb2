"""One simulated agent: claim, run (renewing the lease), record the outcome, repeat.

The outcome of an attempt is drawn from (seed, task id, attempt) — see profiles.py —
so runs are reproducible whichever worker wins the claim, and so is the money a
success causes (sim/payments.py): what happens at once (a payment intent created)
lands with the outcome; what follows seconds to weeks later (the card's outcome, the
charge and its fee, a refund, a dispute) goes to the process's pending list
(sim/pending.py), due after its delay × --time-scale, and the runner writes it then.
A lost database connection is retried with backoff; the attempt it was running is
abandoned and comes back via the lease reaper, never left running forever.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg

from fsar_tui.db import executor
from fsar_tui.db.connect import aconnect
from fsar_tui.domain.backoff import backoff_delay
from fsar_tui.domain.events import TaskChange, task_message, task_topic
from fsar_tui.errors import ConnectionFailed, first_line
from fsar_tui.sim import payments, profiles
from fsar_tui.sim.pending import PendingMoney

if TYPE_CHECKING:
    from fsar_tui.live.mqtt import MqttPublisher  # aiomqtt loads only where a broker is named

log = logging.getLogger("fsar_tui.sim")
RETRY_BASE_S = 5.0
RETRY_CAP_S = 300.0


@dataclass
class WorkerStats:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    lost_leases: int = 0
    reconnects: int = 0
    errors: int = 0
    money_written: int = 0  # payments' later events (sim/pending.py), written when due
    by_outcome: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SimConfig:
    seed: int = 0
    time_scale: float = 1.0
    lease_s: float = 30.0
    idle_sleep_s: float = 0.2
    payment_events: bool = True  # the role may store Stripe events (else: ledger rows only)


async def announce(publisher: MqttPublisher | None, change: TaskChange) -> None:
    if publisher is not None:
        await publisher.publish(task_topic(change), task_message(change))


class Worker:
    def __init__(
        self,
        dsn: str,
        worker_id: str,
        config: SimConfig,
        stop: asyncio.Event,
        publisher: MqttPublisher | None = None,
        stats: WorkerStats | None = None,
        pending: PendingMoney | None = None,
    ) -> None:
        self.dsn = dsn
        self.id = worker_id
        self.config = config
        self.stop = stop
        self.publisher = publisher
        self.stats = stats or WorkerStats()
        self.pending = pending if pending is not None else PendingMoney()
        self.rng = random.Random(f"{config.seed}:{worker_id}")

    async def run(self) -> None:
        attempt = 0
        conn: psycopg.AsyncConnection | None = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = await aconnect(self.dsn)
                    if attempt:
                        self.stats.reconnects += 1
                    attempt = 0
                task = await executor.claim(conn, self.id, self.config.lease_s)
                if task is None:
                    await self._idle()
                    continue
                await self._execute(conn, task)
            except (psycopg.OperationalError, ConnectionFailed):
                attempt += 1
                if conn is not None:
                    await conn.close()
                conn = None
                await asyncio.sleep(backoff_delay(attempt, self.rng, base=0.2, cap=5.0))
            except psycopg.Error as exc:
                # A statement failed (a constraint, a bug): say so, keep the worker alive;
                # the attempt it was running comes back through its lease.
                self.stats.errors += 1
                log.warning("worker %s: %s", self.id, first_line(exc))
                attempt += 1
                if conn is not None:
                    await conn.close()
                conn = None
                await asyncio.sleep(backoff_delay(attempt, self.rng, base=0.2, cap=5.0))
        if conn is not None:
            await conn.close()

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=self.config.idle_sleep_s * (0.5 + self.rng.random()))
        except TimeoutError:
            pass

    async def _run_for(self, conn: psycopg.AsyncConnection, task: executor.ClaimedTask, seconds: float) -> bool:
        """Sleep through the attempt, renewing the lease; False if the lease was lost."""
        renew_every = max(0.05, self.config.lease_s / 3)
        remaining = seconds
        while remaining > 0:
            step = min(remaining, renew_every)
            await asyncio.sleep(step)
            remaining -= step
            if remaining > 0 and not await executor.renew_lease(conn, task, self.id, self.config.lease_s):
                return False
        return True

    async def _execute(self, conn: psycopg.AsyncConnection, task: executor.ClaimedTask) -> None:
        self.stats.claimed += 1
        model = task.ai_model or "unknown"
        await announce(
            self.publisher,
            TaskChange(
                task.id, task.task_type, task.ai_model, "queued", "running", task.attempt, _iso(task.started_at)
            ),
        )
        outcome = profiles.draw_attempt(
            self.config.seed,
            task.id,
            task.attempt,
            task.task_type,
            model,
            profiles.Multipliers.from_artifact(task.simulate),
        )
        if not await self._run_for(conn, task, outcome.duration_s * self.config.time_scale):
            self.stats.lost_leases += 1
            return
        money = payments.Payment()
        retry_in = 0.0
        if outcome.succeeded:
            status = "succeeded"
            if profiles.TYPES.get(task.task_type) and profiles.TYPES[task.task_type].earns_revenue:
                money = payments.draw_payment(self.config.seed, task.id, task.attempt, task.idea_id)
        elif task.attempt < task.max_attempts:
            status = "queued"
            delay = backoff_delay(task.attempt, self.rng, base=RETRY_BASE_S, cap=RETRY_CAP_S)
            retry_in = delay * self.config.time_scale
        else:
            status = "failed"
        at = await executor.finish(
            conn,
            task,
            self.id,
            status=status,
            result=outcome.result,
            error=outcome.error,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            retry_in_s=retry_in,
            ledger=[money_row(task, d) for d in money.ledger if not d.delay_s],
            events=[event_row(i) for i in money.intents if not i.delay_s] if self.config.payment_events else [],
        )
        if at is None:
            self.stats.lost_leases += 1
            return
        self._schedule(task, money)
        if status == "succeeded":
            self.stats.succeeded += 1
        elif status == "failed":
            self.stats.failed += 1
        else:
            self.stats.retried += 1
        duration_ms = int((at - task.started_at).total_seconds() * 1000)
        await announce(
            self.publisher,
            TaskChange(task.id, task.task_type, task.ai_model, "running", status, task.attempt, _iso(at), duration_ms),
        )

    def _schedule(self, task: executor.ClaimedTask, money: payments.Payment) -> None:
        """What happens later goes to the pending list, due after its delay (scaled)."""
        scale = self.config.time_scale
        for d in money.ledger:
            if d.delay_s:
                self.pending.add(d.delay_s * scale, ("ledger", money_row(task, d)))
        for i in money.intents:
            if i.delay_s and self.config.payment_events:
                self.pending.add(i.delay_s * scale, ("event", event_row(i)))


def money_row(task: executor.ClaimedTask, d: payments.LedgerDraft) -> dict:
    return {
        "external_id": d.external_id,
        "kind": d.kind,
        "amount_minor": d.amount_minor,
        "currency": d.currency,
        "idea_id": task.idea_id,
        "task_id": task.id,
        "customer_id": d.customer_id,
        "metadata": d.metadata,
    }


def event_row(i: payments.IntentDraft) -> dict:
    return {"id": i.event_id, "type": i.type, "object_id": i.intent["id"], "payload": i.event(0)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
