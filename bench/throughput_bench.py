"""Sustained throughput with the app open (issue 18, point 3).

The real simulator (`fsar-tui simulate`: enqueuer, workers in 2 processes, reaper, money
writer) runs at increasing target rates, each step long enough to be steady, while an
app (headless Pilot, NOTIFY live source, in a process of its own) shows the queue
screen and has keys pressed every 100 ms. Per step: achieved tasks/s and transitions/s
(from task_events: enqueue, claim and finish are one transition each, retries more),
counts lag p50/p99 (a change committed → the app's counts redrawn from a read that
started after its NOTIFY arrived; every 8th task sampled) and key-press latency p50/p99
(`j`/`k` → the cursor moved and the next frame composed), and whether the goals hold:
≥ 95 % of the target rate, lag p99 ≤ 250 ms, key p99 ≤ 100 ms. The first step where
one does not is the rate at which it stops holding. Then the time series, one line per
10 s, with sparklines.

Steps: 250 … 1,250 tasks/s, BENCH_STEP_S each (default 30 s; small: 250 and 500, 15 s).
BENCH_SUSTAIN_S=600 adds the goal's run: 1,000 tasks/s for 10 minutes. On 2 cores the
simulator, PostgreSQL and the app share the CPU: the figures hold at the rate they
were taken on a quiet machine only.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from pathlib import Path

import psycopg

from bench.common import SMALL, fresh_database, percentile, print_series, print_table, simulator, transitions_since
from bench.live_bench import Probe
from fsar_tui.sim.seed import seed_history

STEP_S = float(os.environ.get("BENCH_STEP_S", "15" if SMALL else "30"))
RATES = [250, 500] if SMALL else [250, 500, 750, 1000, 1250]
SUSTAIN_S = float(os.environ.get("BENCH_SUSTAIN_S", "0"))
GOAL_RATE, LAG_GOAL_MS, KEY_GOAL_MS = 1000, 250.0, 100.0
WARM_S = 5.0  # of each step, left out of its figures (workers connecting, queue filling)
SAMPLE = 8  # every 8th task's changes are followed for the counts lag
BUCKET_S = 10


class Sampled(list):
    """The probe's arrivals, every SAMPLE-th task only (a long run sees millions)."""

    def append(self, item) -> None:
        if item[1] % SAMPLE == 0:
            super().append(item)


async def app_main(dsn: str, seconds: float, out: str) -> None:
    """In the app's process: the queue screen, keys pressed until `seconds` have passed or
    `out`.stop exists; then the figures go to `out`."""
    from fsar_tui.app import FsarApp
    from fsar_tui.config import Settings
    from fsar_tui.widgets.keyed_table import KeyedTable

    probe = Probe()
    probe.arrivals = Sampled()
    probe.install()
    app = FsarApp(settings=Settings(dsn=dsn, live="notify"), dsn=dsn)
    keys: list[tuple[float, float]] = []
    async with app.run_test(size=(160, 48)) as pilot:
        while not (app.screen.query(KeyedTable) and app.screen.query_one(KeyedTable).keys):
            await pilot.pause(0.05)
        while app.live_name != "notify":
            await pilot.pause(0.05)
        print("ready", flush=True)
        end, down, stop = time.perf_counter() + seconds, True, Path(out + ".stop")
        while time.perf_counter() < end and not stop.exists():
            table = app.screen.query_one(KeyedTable)
            if table.cursor_row >= min(len(table.keys), 60) - 1:
                down = False
            elif table.cursor_row <= 0:
                down = True
            before, t0, moved = table.current_key, time.perf_counter(), None
            app.simulate_key("j" if down else "k")
            while time.perf_counter() - t0 < 2.0:
                if moved is None and table.current_key != before:
                    moved = time.perf_counter()
                if moved is not None and probe.frames and probe.frames[-1] >= moved:
                    break
                await asyncio.sleep(0.001)
            keys.append((time.time(), (time.perf_counter() - t0) * 1000))
            probe.frames[:-1] = []  # only the last frame is looked at: keep memory flat
            await asyncio.sleep(0.1)
    Path(out).write_text(json.dumps({"keys": keys, "arrivals": probe.arrivals, "redraws": sorted(probe.redraws)}))


def start_app(dsn: str, seconds: float, out: str) -> subprocess.Popen:
    code = (
        "import asyncio, sys; from bench.throughput_bench import app_main; "
        "asyncio.run(app_main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, dsn, str(seconds), out], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the app under load did not start")
    return proc


def event_times(dsn: str, start: float) -> dict[tuple[int, str, int], float]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT task_id, to_status, attempt, extract(epoch FROM at)::float8 FROM task_events "
            "WHERE at >= to_timestamp(%s) AND task_id %% %s = 0",
            (start, SAMPLE),
        ).fetchall()
    return {(t, s, a): at for t, s, a, at in rows}


def buckets(dsn: str, start: float) -> dict[int, tuple[int, int]]:
    """Per BUCKET_S seconds from `start`: (transitions, tasks finished)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT floor((extract(epoch FROM at) - %s) / %s)::int, count(*), "
            "count(*) FILTER (WHERE to_status IN ('succeeded', 'failed', 'cancelled')) "
            "FROM task_events WHERE at >= to_timestamp(%s) GROUP BY 1",
            (start, BUCKET_S, start),
        ).fetchall()
    return {b: (n, done) for b, n, done in rows}


def in_window(pairs, lo: float, hi: float) -> list[float]:
    return [v for t, v in pairs if lo <= t < hi]


def run(server_dsn: str) -> None:
    steps = [(rate, STEP_S) for rate in RATES] + ([(GOAL_RATE, SUSTAIN_S)] if SUSTAIN_S > 0 else [])
    total = sum(s for _, s in steps) + 10 * len(steps) + 30
    with fresh_database(server_dsn) as dsn, tempfile.TemporaryDirectory() as tmp:
        seed_history(dsn, days=1, tasks=20_000, seed=4)
        out = str(Path(tmp) / "app.json")
        app = start_app(dsn, total, out)
        windows = []
        try:
            t0 = time.time()
            for rate, seconds in steps:
                with simulator(dsn, rate=rate, duration=seconds + 5, workers=16, processes=2):
                    start = time.time()
                    time.sleep(seconds)
                    windows.append((rate, seconds, start + WARM_S, time.time()))
                time.sleep(2)
        finally:
            Path(out + ".stop").touch()  # the app writes its figures and exits
            try:
                app.wait(120)
            except subprocess.TimeoutExpired:
                app.kill()
        if not Path(out).exists():
            print("\nthroughput: the app under load wrote no figures (stopped early?)")
            return
        result = json.loads(Path(out).read_text())
        keys = [tuple(k) for k in result["keys"]]
        at = event_times(dsn, t0)
        arrivals = [tuple(a) for a in result["arrivals"]]
        redraws = [tuple(r) for r in result["redraws"]]
        lag_at = lag_series(arrivals, at, redraws, t0)
        with psycopg.connect(dsn) as conn:
            moved = [transitions_since(conn, lo, hi) for _, _, lo, hi in windows]
        report(windows, moved, keys, lag_at, buckets(dsn, t0), t0)


def lag_series(arrivals, at, redraws, t0: float) -> list[tuple[float, float]]:
    """(commit time, lag ms) for every sampled change after t0: its commit → the first
    counts redraw from a read that started after its NOTIFY arrived (as live_bench)."""
    starts = [s for s, _ in redraws]
    lags = []
    for arrived, task_id, to, attempt in arrivals:
        committed = at.get((task_id, to, attempt))
        if committed is None or committed < t0:
            continue
        i = bisect_left(starts, arrived)
        if i < len(redraws):
            lags.append((committed, (redraws[i][1] - committed) * 1000))
    return lags


def report(windows, moved, keys, lags, per_bucket, t0: float) -> None:
    rows, broke = [], None
    for (rate, seconds, lo, hi), (transitions, done) in zip(windows, moved, strict=True):
        span = hi - lo
        tasks_s, transitions_s = done / span, transitions / span
        lag, key = in_window(lags, lo, hi), in_window(keys, lo, hi)
        lag99, key99 = percentile(lag, 99), percentile(key, 99)
        holds = tasks_s >= 0.95 * rate and lag99 <= LAG_GOAL_MS and key99 <= KEY_GOAL_MS
        if not holds and broke is None:
            broke = rate
        rows.append(
            [
                f"{rate:,}" + (f" ({span / 60:.0f} min)" if seconds >= 300 else ""),
                f"{tasks_s:,.0f}",
                f"{transitions_s:,.0f}",
                f"{percentile(lag, 50):.0f} / {lag99:.0f} ms",
                f"{percentile(key, 50):.0f} / {key99:.0f} ms",
                "holds" if holds else "NO",
            ]
        )
    print_table(
        f"Throughput, simulator + app on one machine (steps of {STEP_S:.0f} s, first {WARM_S:.0f} s of each left out)",
        ["target tasks/s", "tasks/s", "transitions/s", "counts lag p50/p99", "key p50/p99", "goals"],
        rows,
    )
    print(
        f"  goals: ≥ {GOAL_RATE:,} tasks/s (~3,000 transitions/s) end to end, counts lag p99 ≤ {LAG_GOAL_MS:.0f} ms, "
        f"key p99 ≤ {KEY_GOAL_MS:.0f} ms; "
        + (f"they stop holding at {broke:,} tasks/s" if broke else "they held at every step")
    )
    series, plots = [], {"transitions/s": [], "counts lag p99 ms": [], "key p99 ms": []}
    for b in range(max(per_bucket, default=0) + 1):
        lo = t0 + b * BUCKET_S
        moved, done = per_bucket.get(b, (0, 0))
        lag, key = in_window(lags, lo, lo + BUCKET_S), in_window(keys, lo, lo + BUCKET_S)
        series.append(
            [
                f"{b * BUCKET_S:>5d}",
                f"{done / BUCKET_S:,.0f}",
                f"{moved / BUCKET_S:,.0f}",
                f"{percentile(lag, 99):.0f}",
                f"{percentile(key, 99):.0f}",
            ]
        )
        plots["transitions/s"].append(moved / BUCKET_S)
        plots["counts lag p99 ms"].append(percentile(lag, 99))
        plots["key p99 ms"].append(percentile(key, 99))
    print_series(
        f"Time series, one line per {BUCKET_S} s",
        ["t (s)", "tasks/s", "transitions/s", "lag p99 ms", "key p99 ms"],
        series,
        plots,
    )
