"""Queue-screen benchmarks (issue: the shell and the live queue screen).

On N seeded tasks (1,000,000; BENCH_SCALE=small: 100,000), same database, same run:
- page down: the keyset page 200 pages deep vs the naive OFFSET page at the same depth;
- indexed filter (status:failed type:self_improvement) first page;
- counts per status × type (the query behind the counts panel);
- first paint: app start → first rows on screen (headless Pilot), and its peak RSS.
Each beside its goal from the issue (goals are stated for 10,000,000 tasks).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time

import psycopg

from bench.common import median, print_table, seeded_database
from fsar_tui.db import tasks
from fsar_tui.db.connect import aconnect
from fsar_tui.domain.task_filter import parse_filter


async def timed(fn, repeat: int = 7) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t) * 1000)
    return median(samples)


async def queries(dsn: str) -> list[list[object]]:
    conn = await aconnect(dsn)
    try:
        first = await tasks.page(conn, tasks.PageRequest(limit=100))
        anchor = first[-1].id - 200 * 100  # 200 pages down
        keyset = await timed(lambda: tasks.page(conn, tasks.PageRequest(after=(anchor, anchor), limit=100)))
        offset = await timed(
            lambda: conn.execute(
                f"SELECT {tasks.LIST_COLUMNS} FROM execution_tasks t ORDER BY t.id DESC OFFSET 20000 LIMIT 100"
            )
        )
        f = parse_filter("status:failed type:self_improvement")
        filtered = await timed(lambda: tasks.page(conn, tasks.PageRequest(filter=f, limit=100)))
        counts = await timed(lambda: tasks.status_type_counts(conn))
        naive_counts = await timed(
            lambda: conn.execute("SELECT status, task_type, count(*) FROM execution_tasks GROUP BY 1, 2"), repeat=1
        )
        others = {
            name: await timed(fn, repeat=3)
            for name, fn in (
                ("running tasks", lambda: tasks.running_tasks(conn)),
                ("workers (last 5 min)", lambda: tasks.workers(conn)),
                ("activity (30 min)", lambda: tasks.activity(conn, 30)),
                ("matching count (capped)", lambda: tasks.count_matching(conn, f)),
            )
        }
    finally:
        await conn.close()
    return [
        [
            "page down (keyset, 200 pages deep)",
            f"{keyset:.1f} ms",
            f"{offset / keyset:.0f}× faster than OFFSET",
            "≤ 50 ms",
        ],
        ["page down (naive OFFSET 20,000)", f"{offset:.1f} ms", "1×", ""],
        ["indexed filter, first page", f"{filtered:.1f} ms", "", "≤ 200 ms"],
        [
            "counts per status × type (counters)",
            f"{counts:.1f} ms",
            f"{naive_counts / counts:.0f}× faster than GROUP BY",
            "",
        ],
        ["counts per status × type (naive GROUP BY)", f"{naive_counts:.1f} ms", "1×", ""],
        *([f"{name} (refresh query)", f"{ms:.1f} ms", "", ""] for name, ms in others.items()),
    ]


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space, so it
    starts afresh at exec; ru_maxrss does not — a child forked from a big bench process
    inherits the parent's high-water mark (this is what made earlier runs report
    200 MB for the app after the benchmark had seeded a million tasks)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def first_paint(dsn: str) -> list[list[object]]:
    from fsar_tui.app import FsarApp
    from fsar_tui.config import Settings
    from fsar_tui.widgets.keyed_table import KeyedTable

    app = FsarApp(settings=Settings(dsn=dsn, live="notify"), dsn=dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        start = time.perf_counter()
        connected = None
        while True:
            if connected is None and app.pool is not None:
                connected = time.perf_counter()
            tables = app.screen.query(KeyedTable)
            if tables and tables.first().keys:
                break
            await pilot.pause(0.005)
        painted = time.perf_counter()
    rss_mb = peak_rss_mb()
    return [
        ["first paint after connect", f"{(painted - (connected or start)) * 1000:.0f} ms", "", "≤ 300 ms"],
        ["peak RSS of the app process", f"{rss_mb:.0f} MB", "", "≤ 150 MB"],
    ]


def paint_in_fresh_process(dsn: str) -> list[list[object]]:
    """First paint and peak RSS measured in a process of its own (the seeding above
    would otherwise count towards the app's memory)."""
    import json
    import subprocess
    import sys

    code = (
        "import asyncio, json, sys; from bench.queue_bench import first_paint; "
        "print(json.dumps(asyncio.run(first_paint(sys.argv[1]))))"
    )
    out = subprocess.run([sys.executable, "-c", code, dsn], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(server_dsn: str) -> None:
    """On a fresh database seeded here (1,000,000 tasks; BENCH_SCALE=small 100,000), or on
    BENCH_QUEUE_DSN as it is: seeding 10,000,000 takes ~13 minutes here, so the 10 M
    figures come from a database seeded once with `fsar-tui seed --tasks 10000000`."""
    existing = os.environ.get("BENCH_QUEUE_DSN")
    if existing:
        measure(existing)
        return
    with seeded_database(server_dsn, seed=9) as (dsn, _):
        measure(dsn)


def measure(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        n = (
            conn.execute(
                "SELECT sum(n)::bigint FROM (SELECT n FROM task_counts UNION ALL SELECT n FROM task_count_deltas) c"
            ).fetchone()[0]
            or 0
        )
    rows = asyncio.run(queries(dsn)) + paint_in_fresh_process(dsn)
    print_table(f"Queue screen on {n:,} tasks (goals are for 10,000,000)", ["measure", "median", "ratio", "goal"], rows)
