"""The queue screen under load: the simulator at ~1,000 events/s against the running app.

Same database, same run, two phases of the app against one simulator run:
- live counts (what ships): the counts panel re-queries on every live batch;
- naive: the counts panel only refreshes on the screen's 1 s timer (as before).

Measured in the app's own process (headless Pilot, NOTIFY live source):
- key-press latency: `j`/`k` posted to the app → the cursor has moved to another task
  and the next frame has been composed (the frame is what the terminal receives);
- counts lag: for every status change the simulator commits, the time from the change
  (task_events.at, stamped before the commit, so this errs long) to the counts panel
  being redrawn from a query that started after the app received the change's NOTIFY
  (recorded where its event bus takes it in, so measuring adds no second listener).
The achieved event rate is printed too: on 2 cores the simulator, PostgreSQL and the
app share the CPU, and the figures only mean something at the rate they were taken.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from bisect import bisect_left
from collections import deque
from contextlib import suppress

import psycopg

from bench.common import SMALL, fresh_database, percentile, print_table
from fsar_tui.sim.seed import seed_history

PHASE_S = 8.0 if SMALL else 15.0
WARMUP_S = 4.0
RATE = 320  # tasks/s; each task is ~3.2 events (queued, running, finished, retries)


class Probe:
    """Timestamps from inside the app: frames composed, counts queries and redraws."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, int, str, int]] = []  # NOTIFYs as the app's bus receives them
        self.frames: list[float] = []
        # Starts of counts queries not yet drawn, oldest first: each query's rows are drawn
        # once, in order, on the screen's own message loop (screens/base.py DataLoaded).
        self.count_starts: deque[float] = deque()
        self.redraws: list[tuple[float, float]] = []  # (query started, panel redrawn), wall clock

    def install(self) -> None:
        from textual.app import App

        from fsar_tui.db import tasks as task_queries
        from fsar_tui.screens.queue import QueueScreen

        frames = self.frames
        original_display = App._display

        def display(self_, screen, renderable):
            frames.append(time.perf_counter())
            return original_display(self_, screen, renderable)

        App._display = display
        original_counts = task_queries.status_type_counts

        async def counts(*args, **kwargs):
            self.count_starts.append(time.time())
            return await original_counts(*args, **kwargs)

        task_queries.status_type_counts = counts
        original_render = QueueScreen.render_counts

        def render_counts(screen, rows):
            original_render(screen, rows)
            if self.count_starts:
                self.redraws.append((self.count_starts.popleft(), time.time()))

        QueueScreen.render_counts = render_counts
        from fsar_tui.domain.events import TaskChange
        from fsar_tui.live.bus import EventBus

        original_publish = EventBus.publish
        arrivals = self.arrivals

        def publish(bus, event):
            if isinstance(event, TaskChange):
                arrivals.append((time.time(), event.id, event.to_status, event.attempt))
            return original_publish(bus, event)

        EventBus.publish = publish


async def press_keys(app, probe: Probe, seconds: float) -> list[float]:
    from fsar_tui.widgets.keyed_table import KeyedTable

    latencies = []
    end = time.perf_counter() + seconds
    down = True
    while time.perf_counter() < end:
        table = app.screen.query_one(KeyedTable)
        if table.cursor_row >= min(len(table.keys), 60) - 1:
            down = False
        elif table.cursor_row <= 0:
            down = True
        before = table.current_key
        t0 = time.perf_counter()
        app.simulate_key("j" if down else "k")
        moved = None
        while time.perf_counter() - t0 < 2.0:
            if moved is None and table.current_key != before:
                moved = time.perf_counter()
            if moved is not None and probe.frames and probe.frames[-1] >= moved:
                break
            await asyncio.sleep(0.001)
        latencies.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.1)
    return latencies


def counts_lags(arrivals, event_at, redraws, window) -> list[float]:
    """Per status change committed inside the window: change → first redraw from a query
    started after its NOTIFY arrived (ms)."""
    starts = [s for s, _ in redraws]
    lags = []
    for arrived, task_id, to, attempt in arrivals:
        at = event_at.get((task_id, to, attempt))
        if at is None or not window[0] <= at <= window[1]:
            continue
        i = bisect_left(starts, arrived)
        if i < len(redraws):
            lags.append((redraws[i][1] - at) * 1000)
    return lags


async def phase(dsn: str, live_counts: bool) -> dict:
    from fsar_tui.app import FsarApp
    from fsar_tui.config import Settings
    from fsar_tui.screens.queue import QueueScreen
    from fsar_tui.widgets.keyed_table import KeyedTable

    probe = Probe()
    probe.install()
    if not live_counts:
        QueueScreen.request_counts = lambda self: None  # the naive screen: timer only
    app = FsarApp(settings=Settings(dsn=dsn, live="notify"), dsn=dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        while not (
            app.screen.query(KeyedTable) and app.screen.query_one(KeyedTable).keys and app.live_name == "notify"
        ):
            await pilot.pause(0.05)
        await asyncio.sleep(1.0)
        start = time.time()
        keys = await press_keys(app, probe, PHASE_S)
        end = time.time()
        await asyncio.sleep(1.5)  # let the last changes reach the panel
    return {"keys": keys, "arrivals": probe.arrivals, "redraws": sorted(probe.redraws), "window": (start, end)}


def run_phase(dsn: str, live_counts: bool) -> dict:
    # Each phase in a process of its own: the monkeypatches above stay in it.
    code = (
        "import asyncio, json, sys; from bench.live_bench import phase; "
        "r = asyncio.run(phase(sys.argv[1], sys.argv[2] == '1')); print(json.dumps(r))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, dsn, "1" if live_counts else "0"], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def summarise(dsn: str, result: dict) -> dict:
    start, end = result["window"]
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT task_id, to_status, attempt, extract(epoch FROM at) FROM task_events "
            "WHERE at >= to_timestamp(%s) - interval '5 seconds'",
            (start,),
        ).fetchall()
    event_at = {(t, s, a): float(at) for t, s, a, at in rows}
    in_window = sum(1 for at in event_at.values() if start <= at <= end)
    lags = counts_lags(
        [tuple(a) for a in result["arrivals"]], event_at, [tuple(r) for r in result["redraws"]], (start, end)
    )
    return {"rate": in_window / (end - start), "keys": result["keys"], "lags": lags}


def run(server_dsn: str) -> None:
    with fresh_database(server_dsn) as dsn:
        seed_history(dsn, days=7, tasks=20_000 if SMALL else 100_000, seed=4)
        env = {**os.environ, "FSAR_DSN": dsn}
        env.pop("FSAR_MQTT_URL", None)
        duration = 2 * (PHASE_S + 12) + WARMUP_S + 20
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fsar_tui",
                "simulate",
                "--workers",
                "16",
                "--processes",
                "2",
                "--rate",
                str(RATE),
                "--time-scale",
                "0.0005",
                "--duration",
                str(duration),
                "--seed",
                "11",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(WARMUP_S)
            shipped = summarise(dsn, run_phase(dsn, live_counts=True))
            naive = summarise(dsn, run_phase(dsn, live_counts=False))
        finally:
            sim.terminate()
            with suppress(subprocess.TimeoutExpired):
                sim.wait(30)
            if sim.poll() is None:
                sim.kill()

    def p(values, q):
        return f"{percentile(values, q):.0f} ms"

    lag_ratio = percentile(naive["lags"], 99) / max(percentile(shipped["lags"], 99), 1e-9)
    rows = [
        ["simulator events/s (live phase / naive phase)", f"{shipped['rate']:.0f} / {naive['rate']:.0f}", "", "1,000"],
        ["key-press latency p50", p(shipped["keys"], 50), "", ""],
        ["key-press latency p99", p(shipped["keys"], 99), f"{len(shipped['keys'])} presses", "≤ 100 ms"],
        ["counts lag p50 (live counts)", p(shipped["lags"], 50), "", ""],
        ["counts lag p99 (live counts)", p(shipped["lags"], 99), f"{lag_ratio:.1f}× lower than timer", "≤ 250 ms"],
        ["counts lag p99 (naive: 1 s timer)", p(naive["lags"], 99), "1×", ""],
        ["key-press latency p99 (naive phase)", p(naive["keys"], 99), "", ""],
    ]
    print_table(
        f"Queue screen under the simulator (~{RATE} tasks/s), {len(shipped['lags']):,} changes measured",
        ["measure", "value", "ratio", "goal"],
        rows,
    )
