"""Prometheus exporter benchmark (issue 20: one scrape ≤ 100 ms at 10 M tasks).

A whole scrape — the HTTP GET of /metrics from `fsar-tui metrics`' own server and
collector (services/metrics_exporter.py), in this process, on one connection as the
command holds it — at two database sizes seeded here over 30 days: 100,000 and
1,000,000 tasks (BENCH_SCALE=small: 10,000 and 100,000; BENCH_SCALE=large adds
10,000,000, ~13 minutes of seeding), and on BENCH_QUEUE_DSN as it is when set (the
10 M-task figures without seeding them again). The exporter reads counters and rollups
only, so its time must not grow with the tasks: the table shows it at each size beside
the naive exporter's — the same counts, costs and run-time buckets grouped straight
from execution_tasks (one scan).

What a scrape does grow with is the number of (task_type, ai_model) pairs: every pair's
rollups are read and folded before max_pairs keeps 100 of them. The last row seeds
WIDE_TASKS tasks and multiplies its pairs by WIDE_TYPES × WIDE_MODELS (each rollup row copied under new
type and model names: what the exporter reads, without seeding that many tasks) and
scrapes it the same way.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections.abc import Callable

import psycopg

from bench.common import SMALL, fresh_database, median, percentile, print_table
from fsar_tui.db.connect import connect
from fsar_tui.domain.metric_labels import DEFAULT_MAX_LABEL_VALUES, LE_SECONDS
from fsar_tui.services.metrics_exporter import MetricsCollector, registry_for, serve

LARGE = os.environ.get("BENCH_SCALE") == "large"
SIZES = (10_000, 100_000) if SMALL else (100_000, 1_000_000, *((10_000_000,) if LARGE else ()))
SCRAPES = 21
GOAL = "≤ 100 ms at 10 M tasks"
WIDE_TASKS, WIDE_TYPES, WIDE_MODELS = 10_000, 12, 10  # × the seeded pairs' spread: ~2,000 pairs
ROLLUPS = ("duration_rollups", "duration_sketches", "cost_rollups", "task_counts", "task_count_deltas")


def widen(dsn: str) -> int:
    """Copy every rollup row under WIDE_TYPES × WIDE_MODELS new (type, model) names; the
    number of distinct pairs after."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        for table in ROLLUPS:
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                    "AND column_default IS NULL ORDER BY ordinal_position",
                    (table,),
                ).fetchall()
            ]
            picked = ", ".join(
                "t.task_type || '_' || g"
                if c == "task_type"
                else "t.ai_model || '_' || h"
                if c == "ai_model"
                else f"t.{c}"
                for c in columns
            )
            conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {picked} FROM {table} t, "
                f"generate_series(1, {WIDE_TYPES}) g, generate_series(1, {WIDE_MODELS}) h"
            )
        conn.execute("VACUUM ANALYZE")
        return int(conn.execute("SELECT count(DISTINCT (task_type, ai_model)) FROM cost_rollups").fetchone()[0])


# What an exporter without rollups would run at each scrape.
NAIVE_SQL = """
    SELECT task_type, coalesce(ai_model, ''), status, currency,
           width_bucket(extract(epoch FROM finished_at - started_at)::float8, %(ladder)s::float8[]), count(*),
           sum(cost_minor), sum(compute_cost_minor), sum(waste_minor)
    FROM execution_tasks GROUP BY 1, 2, 3, 4, 5"""


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure(dsn: str) -> tuple[int, list[float], int, float]:
    """(tasks, scrape times in ms, exposition bytes, naive query ms)."""
    collector = MetricsCollector(
        lambda: connect(dsn, autocommit=True, statement_timeout_ms=60_000), max_label_values=DEFAULT_MAX_LABEL_VALUES
    )
    server = serve("127.0.0.1", 0, registry_for(collector))
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    size = 0

    def scrape() -> None:
        nonlocal size
        with urllib.request.urlopen(url, timeout=120) as answer:
            size = len(answer.read())

    try:
        scrape()  # connects, warms the caches
        times = _timed(scrape, SCRAPES)
    finally:
        server.shutdown()
        server.server_close()
        worker.join()
        collector.close()
    assert collector.errors == 0, "a scrape failed"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        tasks = conn.execute(
            "SELECT (SELECT coalesce(sum(n), 0) FROM task_counts) + (SELECT coalesce(sum(n), 0) FROM task_count_deltas)"
        ).fetchone()[0]
        naive = median(_timed(lambda: conn.execute(NAIVE_SQL, {"ladder": list(LE_SECONDS)}).fetchall(), 1))
    return int(tasks), times, size, naive


def _row(label: str, tasks: int, times: list[float], size: int, naive: float) -> list[object]:
    fast = median(times)
    return [
        label,
        f"{tasks:,}",
        f"{fast:.1f} ms",
        f"{percentile(times, 95):.1f} ms",
        f"{size / 1024:.0f} KiB",
        f"{naive:.0f} ms",
        f"{naive / fast:.0f}× faster",
        GOAL,
    ]


def run(server_dsn: str) -> None:
    from fsar_tui.sim.seed import seed_history

    rows = []
    medians = []
    for n in SIZES:
        with fresh_database(server_dsn) as dsn:
            seed_history(dsn, days=30, tasks=n, seed=20)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            tasks, times, size, naive = measure(dsn)
        rows.append(_row(f"seeded {n:,}", tasks, times, size, naive))
        medians.append(median(times))
    with fresh_database(server_dsn) as dsn:
        seed_history(dsn, days=30, tasks=WIDE_TASKS, seed=20)
        narrow = median(measure(dsn)[1])
        pairs = widen(dsn)
        tasks, times, size, naive = measure(dsn)
    rows.append(_row(f"{WIDE_TASKS:,} widened", tasks, times, size, naive))
    wide = median(times)
    existing = os.environ.get("BENCH_QUEUE_DSN")
    if existing:
        tasks, times, size, naive = measure(existing)
        rows.append(_row("BENCH_QUEUE_DSN", tasks, times, size, naive))
    header = ["database", "tasks", "scrape (median)", "p95", "exposition", "naive scan", "ratio", "goal"]
    print_table(f"Prometheus scrape, whole HTTP GET ({SCRAPES} scrapes each)", header, rows)
    growth = medians[-1] / medians[0]
    grew = SIZES[-1] // SIZES[0]
    print(f"  scrape time from {SIZES[0]:,} to {SIZES[-1]:,} tasks: ×{growth:.2f} (the tasks grew ×{grew})")
    print(
        f"  widened: {pairs:,} (task_type, ai_model) pairs (its task count is the copied counters'): "
        f"×{wide / narrow:.1f} the same {WIDE_TASKS:,}-task database's scrape before ({narrow:.1f} ms) — "
        "the cost grows with pairs, not tasks"
    )
