"""The fleet and the app: `simulate` (the reference agent fleet), `seed` (bulk history),
`demo` (embedded database + history + simulator + app) and the bare command (the app).

The app's modules (Textual) are imported only inside the handlers that open it, so the
headless commands never load Textual or aiomqtt.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from argparse import Namespace

from fsar_tui.commands.base import Context, Parser, add_command
from fsar_tui.errors import EXIT_OK, UsageError

# The demo's fleet: 24 async workers at a tenth of real run times (a 2-minute task takes 12 s).
DEMO_WORKERS = 24
DEMO_TIME_SCALE = 0.1


def register(sub, common: Parser) -> None:
    sim = add_command(
        sub,
        common,
        "simulate",
        run_simulate,
        help="run the reference agent fleet against the database",
        description="An enqueuer plus N async workers per process that follow the integration "
        "contract: claim with SKIP LOCKED, lease, run, record, retry, publish.",
    )
    sim.add_argument("--workers", type=int, default=4, help="async workers per process (default 4)")
    sim.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    sim.add_argument("--rate", type=float, default=5.0, help="new tasks per second; 0 = all of --tasks at once")
    sim.add_argument("--duration", type=float, help="stop after this many seconds")
    sim.add_argument("--tasks", type=int, help="enqueue exactly this many tasks, then stop enqueuing")
    sim.add_argument("--seed", type=int, default=0, help="makes task mix and outcomes reproducible")
    sim.add_argument("--time-scale", type=float, default=1.0, help="multiply run times (0 = instant)")
    sim.add_argument("--lease", type=float, default=30.0, dest="lease_s", help="lease seconds (default 30)")
    sim.add_argument("--until-idle", action="store_true", help="stop when every task is terminal")
    sim.add_argument("--no-enqueue", action="store_false", dest="enqueue", help="only run workers")
    sim.add_argument(
        "--outage-limit",
        type=float,
        default=60.0,
        dest="outage_limit_s",
        help="end the run (exit 2) after the database is unreachable this long (s); 0 = retry for ever (default 60)",
    )
    sim.add_argument("--child-index", type=int, default=0, help=argparse.SUPPRESS)

    demo = add_command(
        sub,
        common,
        "demo",
        run_demo,
        help="embedded database + demo history + simulator + the app",
        description="Starts (or reuses) the embedded database, migrates it, seeds 30 days of "
        "history on first run, runs the simulator in the background, opens the app.",
    )
    demo.add_argument("--tasks", type=int, default=200_000, help="history to seed on first run (default 200,000)")
    demo.add_argument(
        "--rate",
        type=float,
        default=None,
        help="simulator tasks per second (default: what the demo's workers keep up with, about 1.5)",
    )

    seed = add_command(
        sub,
        common,
        "seed",
        run_seed,
        help="bulk-load plausible history (COPY)",
        description="Tasks, task_events, ledger entries, price history, rollouts and FSAR "
        "proposals over the last D days, in one transaction.",
    )
    seed.add_argument("--days", type=int, default=30)
    seed.add_argument("--tasks", type=int, default=200_000)
    seed.add_argument("--seed", type=int, default=0)


def configure_logging() -> None:
    """Warnings from background machinery (reconnects, reaper) as `fsar-tui: …` lines."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fsar-tui: %(message)s"))
    root = logging.getLogger("fsar_tui")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def run_simulate(args: Namespace, ctx: Context) -> int:
    from fsar_tui.sim.runner import SimulateOptions, simulate

    opts = SimulateOptions(
        workers=args.workers,
        processes=args.processes,
        rate=args.rate,
        duration=args.duration,
        tasks=args.tasks,
        seed=args.seed,
        time_scale=args.time_scale,
        lease_s=args.lease_s,
        until_idle=args.until_idle,
        enqueue=args.enqueue,
        child_index=args.child_index,
        mqtt_url=ctx.settings.mqtt_url,
        outage_limit_s=args.outage_limit_s,
    )
    opts.validate()  # before starting any server or process
    configure_logging()
    simulate(ctx.dsn(), opts)
    return EXIT_OK


def run_seed(args: Namespace, ctx: Context) -> int:
    from fsar_tui.sim.seed import seed_history, validate_seed_args

    validate_seed_args(args.days, args.tasks)  # before any server is started
    dsn = ctx.dsn()
    started = time.monotonic()
    result = seed_history(dsn, days=args.days, tasks=args.tasks, seed=args.seed)
    elapsed = time.monotonic() - started
    rate = result.tasks / elapsed if elapsed > 0 else 0.0
    print(
        f"seeded {result.tasks} tasks, {result.events} task events, {result.ledger} ledger entries, "
        f"{result.payment_events} payment intent events, "
        f"{result.proposals} proposals over {args.days} days in {elapsed:.1f}s ({rate:,.0f} tasks/s)"
    )
    return EXIT_OK


def run_demo(args: Namespace, ctx: Context) -> int:
    from fsar_tui.sim.demo import prepare_demo
    from fsar_tui.sim.profiles import sustainable_rate

    if args.tasks < 0 or (args.rate is not None and args.rate < 0):
        raise UsageError("--tasks and --rate cannot be negative")
    from fsar_tui.services.notify import preflight

    preflight(ctx.settings.notify)  # as the bare command: before anything starts
    # The simulator must keep up with what it enqueues, or the lowest priorities (every
    # retried task among them) wait forever and the demo shows a starving fleet.
    capacity = sustainable_rate(DEMO_WORKERS, DEMO_TIME_SCALE)
    rate = round(capacity, 2) if args.rate is None else args.rate
    if rate > capacity:
        print(
            f"fsar-tui: at --rate {rate:g} the demo's {DEMO_WORKERS} workers cannot keep up (about {capacity:.2f}/s): "
            "the queue grows and priority-0 tasks, retries among them, starve",
            file=sys.stderr,
        )
    demo = prepare_demo(
        ctx.dsn(),
        tasks=args.tasks,
        statement_timeout_ms=ctx.settings.statement_timeout_ms,
        logins=not ctx.settings.dsn,  # the embedded server's: no roles made on a configured server
        say=lambda line: print(f"fsar-tui: {line}", file=sys.stderr),
    )
    log = open(os.devnull, "w")
    env = {**os.environ, "FSAR_DSN": demo.fleet_dsn}
    if ctx.settings.mqtt_url:
        env["FSAR_MQTT_URL"] = ctx.settings.mqtt_url
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fsar_tui",
            "simulate",
            "--workers",
            str(DEMO_WORKERS),
            "--rate",
            str(rate),
            "--time-scale",
            str(DEMO_TIME_SCALE),
            "--lease",
            "10",
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    print(f"fsar-tui: simulator running in the background (pid {simulator.pid})", file=sys.stderr)
    try:
        from fsar_tui.app import FsarApp

        FsarApp(settings=ctx.settings, dsn=demo.app_dsn).run()
    finally:
        simulator.terminate()
        try:
            simulator.wait(timeout=15)
        except subprocess.TimeoutExpired:
            simulator.kill()
        log.close()
    return EXIT_OK


def run_app(args: Namespace, ctx: Context) -> int:
    """The bare command: open the app."""
    from fsar_tui.services.notify import preflight

    preflight(ctx.settings.notify)  # an SMTP server that does not answer: one line, exit 2, no app
    dsn = ctx.dsn()
    from fsar_tui.app import FsarApp

    FsarApp(settings=ctx.settings, dsn=dsn).run()
    return EXIT_OK
