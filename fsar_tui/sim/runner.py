"""`fsar-tui simulate`: an enqueuer plus N async workers per process, P processes.

Process 0 (the one you started) enqueues, runs its workers and a lease reaper, and
starts P-1 child processes that run workers and a reaper only. Every process also
runs a money writer: the money its workers' successes cause later (a card's outcome,
charges, refunds hours to days after them, disputes) waits in a pending list
(sim/pending.py) and is written when due, stamped with the database's time then. The DSN reaches the
children through the environment, never the command line (`ps` would show it).
Stopping: --duration S, --until-idle (every task terminal and nothing left to
enqueue), or SIGINT/SIGTERM. On stop, workers stop claiming and running attempts
get a short grace period; anything cut off comes back through its lease; money that
is due by then is written, money due later is dropped (it never happened).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import psycopg

from fsar_tui.db import executor
from fsar_tui.db.connect import aconnect
from fsar_tui.domain.events import TaskChange
from fsar_tui.errors import CheckFailed, ConnectionFailed, UsageError, first_line
from fsar_tui.sim import profiles
from fsar_tui.sim.enqueuer import enqueue_loop
from fsar_tui.sim.outage import Outage, outage_watch
from fsar_tui.sim.pending import PendingMoney
from fsar_tui.sim.worker import SimConfig, Worker, WorkerStats, announce

if TYPE_CHECKING:
    from fsar_tui.live.mqtt import MqttPublisher

log = logging.getLogger("fsar_tui.sim")
GRACE_S = 5.0


@dataclass(frozen=True)
class SimulateOptions:
    workers: int = 4
    processes: int = 1
    rate: float = 5.0
    duration: float | None = None
    tasks: int | None = None
    seed: int = 0
    time_scale: float = 1.0
    lease_s: float = 30.0
    until_idle: bool = False
    enqueue: bool = True
    child_index: int = 0
    mqtt_url: str | None = None
    payment_events: bool = True  # preflight: the role may store Stripe events
    outage_limit_s: float = 60.0  # sim/outage.py: 0 = retry for ever

    def validate(self) -> None:
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.processes < 1:
            raise UsageError(f"--processes must be at least 1, got {self.processes}")
        if self.rate < 0:
            raise UsageError(f"--rate cannot be negative, got {self.rate}")
        if self.duration is not None and self.duration <= 0:
            raise UsageError(f"--duration must be positive, got {self.duration}")
        if self.tasks is not None and self.tasks < 0:
            raise UsageError(f"--tasks cannot be negative, got {self.tasks}")
        if self.time_scale < 0:
            raise UsageError(f"--time-scale cannot be negative, got {self.time_scale}")
        if self.lease_s <= 0:
            raise UsageError(f"--lease must be positive, got {self.lease_s}")
        if self.outage_limit_s < 0:
            raise UsageError(f"--outage-limit cannot be negative, got {self.outage_limit_s}")
        if self.mqtt_url:
            from fsar_tui.live.mqtt import parse_mqtt_url  # aiomqtt only when a broker is named

            parse_mqtt_url(self.mqtt_url)


def worker_prefix() -> str:
    return f"sim-{socket.gethostname()}-{os.getpid()}"


async def reaper_loop(dsn: str, stop: asyncio.Event, interval: float, publisher: MqttPublisher | None) -> int:
    reaped = 0
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = await aconnect(dsn)
            for task_id, task_type, model, status, attempt in await executor.reap_expired(conn):
                reaped += 1
                log.warning("reaper: task %s lost its worker; now %s", task_id, status)
                await announce(publisher, TaskChange(task_id, task_type, model, "running", status, attempt))
        except Exception:  # the next round reconnects; the reaper must never die
            if conn is not None:
                await conn.close()
            conn = None
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
    if conn is not None:
        await conn.close()
    return reaped


async def money_loop(dsn: str, pending: PendingMoney, wake: asyncio.Event, done: asyncio.Event) -> int:
    """Write what falls due, when it falls due, until `done` (set once the workers have
    stopped: what is due then is written, the rest dropped). Returns the items written."""
    written = failures = 0
    conn = None
    while True:
        due = pending.pop_due()
        if due:
            try:
                if conn is None:
                    conn = await aconnect(dsn)
                ledger = [row for _, (kind, row) in due if kind == "ledger"]
                events = [row for _, (kind, row) in due if kind == "event"]
                await executor.record_money(conn, ledger, events)
                written += len(due)
                failures = 0
            except (psycopg.Error, ConnectionFailed) as exc:  # database away: keep them, try again
                failures += 1
                log.warning("money writer: %s", first_line(exc))
                pending.put_back(due)
                if conn is not None:
                    await conn.close()
                conn = None
                if done.is_set():
                    break
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                continue
        if done.is_set():
            break
        wake.clear()
        timeout = pending.next_due_in()
        try:
            await asyncio.wait_for(_first(wake, done), timeout=1.0 if timeout is None else min(timeout, 1.0))
        except TimeoutError:
            pass
    if len(pending):
        log.info("money writer: %s item(s) not due yet dropped", len(pending))
    if conn is not None:
        await conn.close()
    return written


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def idle_watch(
    dsn: str,
    stop: asyncio.Event,
    enqueued: asyncio.Task | None,
    checkout_s: float = 0.0,
    later: PendingMoney | None = None,
) -> None:
    """Stop the run once nothing is queued or running, nothing is left to enqueue and no
    payment is at checkout (money due within `checkout_s`; refunds and disputes, hours
    to weeks away, are not waited for)."""
    conn = None
    while not stop.is_set():
        await asyncio.sleep(0.2)
        if enqueued is not None and not enqueued.done():
            continue
        due_in = later.next_due_in() if later is not None else None
        if due_in is not None and due_in <= checkout_s:
            continue
        try:
            if conn is None:
                conn = await aconnect(dsn)
            if await executor.active_work_count(conn) == 0:
                stop.set()
        except (psycopg.Error, ConnectionFailed):  # database restarting: ask again shortly
            if conn is not None:
                await conn.close()
            conn = None
    if conn is not None:
        await conn.close()


async def run_process(dsn: str, opts: SimulateOptions) -> tuple[WorkerStats, int, MqttPublisher | None]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    prefix = worker_prefix()
    config = SimConfig(
        seed=opts.seed, time_scale=opts.time_scale, lease_s=opts.lease_s, payment_events=opts.payment_events
    )
    wake, money_done = asyncio.Event(), asyncio.Event()
    later = PendingMoney(on_add=wake.set)
    money = asyncio.create_task(money_loop(dsn, later, wake, money_done))
    stats = WorkerStats()
    worker_ids = [f"{prefix}-{n}" for n in range(opts.workers)]
    publisher = None
    background: list[asyncio.Task] = []
    if opts.mqtt_url:
        from fsar_tui.live.mqtt import MqttPublisher

        publisher = MqttPublisher(
            opts.mqtt_url,
            presence_id=prefix,
            presence={"workers": worker_ids, "pid": os.getpid(), "host": socket.gethostname()},
        )
        background.append(asyncio.create_task(publisher.run()))
        try:  # give a reachable broker a moment so the first transitions are not dropped
            await asyncio.wait_for(publisher.connected.wait(), timeout=2)
        except TimeoutError:
            pass
    workers = [asyncio.create_task(Worker(dsn, wid, config, stop, publisher, stats, later).run()) for wid in worker_ids]
    reaper = asyncio.create_task(reaper_loop(dsn, stop, max(0.2, min(5.0, opts.lease_s / 4)), publisher))
    enqueuer = None
    if opts.enqueue and (opts.tasks is None or opts.tasks > 0):
        enqueuer = asyncio.create_task(
            enqueue_loop(dsn, rate=opts.rate, total=opts.tasks, seed=opts.seed, stop=stop, publisher=publisher)
        )
        # An enqueuer that dies (not a lost connection: it reconnects) ends the run at once.
        enqueuer.add_done_callback(lambda t: None if t.cancelled() or t.exception() is None else stop.set())
    outage = Outage()
    if opts.outage_limit_s > 0:
        background.append(asyncio.create_task(outage_watch(dsn, stop, opts.outage_limit_s, outage)))
    if opts.until_idle:
        checkout_s = profiles.CHECKOUT_S[1] * opts.time_scale
        background.append(asyncio.create_task(idle_watch(dsn, stop, enqueuer, checkout_s, later)))
    try:
        await asyncio.wait_for(stop.wait(), timeout=opts.duration)
    except TimeoutError:
        stop.set()
    _, pending = await asyncio.wait(workers, timeout=GRACE_S)
    for task in pending:
        task.cancel()
    reaped = await reaper
    money_done.set()
    stats.money_written = await money
    died: list[str] = []
    if enqueuer is not None:
        (outcome,) = await asyncio.gather(enqueuer, return_exceptions=True)
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            died.append(f"the enqueuer stopped: {describe(outcome)}")
    for task in workers:
        if task.done() and not task.cancelled() and task.exception() is not None:
            died.append(f"a worker stopped: {describe(task.exception())}")
    if publisher is not None:
        await publisher.close()
    for task in background:
        task.cancel()
    await asyncio.gather(*pending, *background, return_exceptions=True)
    if outage.cause is not None:
        raise ConnectionFailed(
            f"simulator: database unreachable for {outage.lasted_s:.0f} s (--outage-limit "
            f"{opts.outage_limit_s:g}): {outage.cause}; stopped after claiming {stats.claimed}"
        )
    if died:
        # A fleet that silently lost a part would report a healthy run: say it, exit 1.
        raise CheckFailed(f"simulator: {died[0]}" + (f" (+{len(died) - 1} more)" if len(died) > 1 else ""))
    return stats, reaped, publisher


def describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no error"
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {first_line(exc)}"


def preflight(dsn: str, *, enqueue: bool) -> bool:
    """Before any worker starts: the database answers (else exit 2, one line), and the role
    may do what the fleet does — claim and finish tasks, and insert them when enqueuing
    (a viewer's `simulate` is a usage error, said once, not one permission error per
    worker and claim). Returns whether it may also store Stripe events (the payment
    intents of the funnel: the simulator plays Stripe too); without, it says so once and
    writes the ledger only."""
    from fsar_tui.db.connect import connect
    from fsar_tui.db.executor import fleet_privileges_sync, may_write_stripe_events_sync

    with connect(dsn, autocommit=True) as conn:
        missing = fleet_privileges_sync(conn, enqueue=enqueue)
        payment_events = may_write_stripe_events_sync(conn)
    if missing:
        raise UsageError(
            f"simulate: role {missing[0]} may not {', '.join(missing[1:])} — run the fleet as a role "
            "granted the executor's rights (not fsar_viewer)"
        )
    if not payment_events:
        print(
            "simulate: this role may not insert into stripe_events: no payment intents (the ROI screen's "
            "funnel), ledger entries only",
            file=sys.stderr,
        )
    return payment_events


def child_command(opts: SimulateOptions, index: int) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "fsar_tui",
        "simulate",
        "--child-index",
        str(index),
        "--workers",
        str(opts.workers),
        "--seed",
        str(opts.seed),
        "--time-scale",
        str(opts.time_scale),
        "--lease",
        str(opts.lease_s),
        "--no-enqueue",
        "--outage-limit",
        "0",  # the parent watches the database; it ends its children with SIGTERM
    ]
    if opts.duration is not None:
        cmd += ["--duration", str(opts.duration)]
    return cmd


def simulate(dsn: str, opts: SimulateOptions) -> WorkerStats:
    opts.validate()
    # Preflight first: an unreachable database is one line from this process, not one per child.
    opts = replace(opts, payment_events=preflight(dsn, enqueue=opts.enqueue and opts.child_index == 0))
    children: list[subprocess.Popen] = []
    if opts.child_index == 0 and opts.processes > 1:
        env = {**os.environ, "FSAR_DSN": dsn}
        if opts.mqtt_url:
            env["FSAR_MQTT_URL"] = opts.mqtt_url
        children = [subprocess.Popen(child_command(opts, i), env=env) for i in range(1, opts.processes)]
    try:
        stats, reaped, publisher = asyncio.run(run_process(dsn, opts))
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=GRACE_S + 10)
            except subprocess.TimeoutExpired:
                child.kill()
    who = "simulator" if opts.child_index == 0 else f"simulator child {opts.child_index}"
    mqtt = f", mqtt {publisher.published} published/{publisher.dropped} dropped" if publisher else ""
    print(
        f"{who} (pid {os.getpid()}): claimed {stats.claimed}, succeeded {stats.succeeded}, failed {stats.failed}, "
        f"retried {stats.retried}, lost leases {stats.lost_leases}, reaped {reaped}, "
        f"money events written later {stats.money_written}{mqtt}",
        file=sys.stderr,
    )
    return stats
