"""Duration-profile benchmarks (issue: profiles that stay fast at tens of millions of tasks).

Same database, same run:
- the profile query (rollups, 30-day window, type × model) against exact
  `percentile_cont` over the same tasks and the same window, on 1,000,000 tasks seeded
  here (BENCH_SCALE=small: 100,000) and, when BENCH_QUEUE_DSN names one, on that
  database as it is (the 10,000,000-task figures: seed it once, then
  `fsar-tui profile --backfill` if it predates the rollups);
- the largest relative error of p50, p90 and p99 against the exact values;
- the cost of keeping rollups: claim-and-finish throughput of the reference workers with
  the rollup trigger and with it disabled, alternating runs, median of each.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import psycopg

from bench.common import SMALL, fresh_database, median, print_table, seeded_database
from fsar_tui.db import profiles as profile_queries
from fsar_tui.db.connect import connect
from fsar_tui.domain import rollup_windows

EXACT_SQL = """
    SELECT task_type, coalesce(ai_model, ''), count(*),
           percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP
               (ORDER BY greatest(0, extract(epoch FROM finished_at - started_at) * 1000)::float8)
    FROM execution_tasks
    WHERE status IN ('succeeded', 'failed') AND started_at IS NOT NULL
      AND finished_at >= %(start)s AND finished_at < %(end)s
    GROUP BY 1, 2"""


def measure(dsn: str) -> tuple[int, list[list[object]]]:
    now = datetime.now(UTC)
    start, end = now - timedelta(days=30), now + timedelta(seconds=1)
    effective = rollup_windows.cover(start, end, now)[0][1]  # the rollups' window, exactly
    with connect(dsn, autocommit=True, statement_timeout_ms=0) as conn:  # as the app connects (JIT off)
        done, target = profile_queries.backfill_state(conn)
        samples = []
        for _ in range(7):
            t = time.perf_counter()
            built = profile_queries.load_profiles_sync(conn, start, end, now)
            samples.append((time.perf_counter() - t) * 1000)
        fast = median(samples)
        exact_times = []
        for _ in range(1 if target > 2_000_000 or not SMALL else 3):
            t = time.perf_counter()
            exact = conn.execute(EXACT_SQL, {"start": effective, "end": end}).fetchall()
            exact_times.append((time.perf_counter() - t) * 1000)
        slow = median(exact_times)
    got = {p.key: p for p in built}
    errors = {0.5: 0.0, 0.9: 0.0, 0.99: 0.0}
    n = 0
    for task_type, model, count, values in exact:
        n += count
        p = got.get((task_type, model))
        for q, want in zip((0.5, 0.9, 0.99), values, strict=True):
            have = p.p(q) if p else None
            err = 1.0 if have is None else abs(have - want) / want
            errors[q] = max(errors[q], err)
    note = "" if done >= target else f" (backfill incomplete: {done:,}/{target:,})"
    rows = [
        [f"profile query (rollups){note}", f"{fast:.1f} ms", f"{slow / fast:,.0f}× faster", "≤ 50 ms, ≥ 100× at 10 M"],
        ["exact percentile_cont (naive)", f"{slow:,.0f} ms", "1×", ""],
        [
            "largest relative error p50 / p90 / p99",
            " / ".join(f"{100 * errors[q]:.2f} %" for q in (0.5, 0.9, 0.99)),
            "",
            "≤ 1 %",
        ],
    ]
    return n, rows


async def _throughput(dsn: str, n: int, with_trigger: bool) -> float:
    from bench.executor_bench import _claim_run

    with psycopg.connect(dsn, autocommit=True) as conn:
        action = "ENABLE" if with_trigger else "DISABLE"
        for trigger in ("execution_tasks_rollups_update", "execution_tasks_rollups_insert_delete"):
            conn.execute(f"ALTER TABLE execution_tasks {action} TRIGGER {trigger}")
    return await _claim_run(dsn, None, n)


def trigger_cost(server_dsn: str) -> list[list[object]]:
    n = 2_000 if SMALL else 8_000
    runs: dict[bool, list[float]] = {True: [], False: []}
    for with_trigger in (True, False, True, False, True, False):
        with fresh_database(server_dsn) as dsn:
            runs[with_trigger].append(asyncio.run(_throughput(dsn, n, with_trigger)))
    on, off = median(runs[True]), median(runs[False])
    return [
        ["claim+finish, rollup trigger on", f"{on:,.0f} tasks/s", f"{100 * (1 - on / off):+.1f} % slower", "≤ 15 %"],
        ["claim+finish, rollup trigger off (naive)", f"{off:,.0f} tasks/s", "", ""],
    ]


def run(server_dsn: str) -> None:
    with seeded_database(server_dsn, seed=9) as (dsn, n):
        counted, rows = measure(dsn)
    print_table(
        f"Duration profiles, 30-day window, type × model, {n:,} tasks seeded ({counted:,} runs in window)",
        ["measure", "value", "ratio", "goal"],
        rows,
    )
    existing = os.environ.get("BENCH_QUEUE_DSN")
    if existing:
        counted, rows = measure(existing)
        print_table(
            f"Duration profiles on BENCH_QUEUE_DSN ({counted:,} runs in window)",
            ["measure", "value", "ratio", "goal"],
            rows,
        )
    print_table(
        "Cost of keeping the rollups (reference workers, 8 per process)",
        ["measure", "value", "ratio", "goal"],
        trigger_cost(server_dsn),
    )
