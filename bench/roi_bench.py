"""ROI benchmarks (issue: ROI over 10 M tasks and 1 M ledger entries in ≤ 100 ms).

Same database, same run: everything the ROI screen reads for a 30-day window — task
costs and ledger sums from the rollups (both grouping sets), the payment funnel, rollout
names, and the fraud flags — against the naive GROUP BY over execution_tasks and
ledger_entries that gives the same sums. On 1,000,000 tasks seeded here (BENCH_SCALE=
small: 100,000) and, when BENCH_QUEUE_DSN names one, on that database as it is.
"""

from __future__ import annotations

import os
import time

from bench.common import median, print_table, seeded_database
from fsar_tui.db import fraud
from fsar_tui.db import roi as roi_queries
from fsar_tui.db.connect import connect
from fsar_tui.domain import roi


def _timed(fn, repeat: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t) * 1000)
    return median(samples), result


def measure(dsn: str) -> tuple[str, list[list[object]]]:
    first, last = roi_queries.window_days(30)
    start, end = roi_queries.day_bounds(first, last)
    params = {"first": first, "last": last}
    with connect(dsn, autocommit=True, statement_timeout_ms=0) as conn:  # as the app connects (JIT off)
        tasks, ledger = conn.execute(
            "SELECT (SELECT count(*) FROM execution_tasks), (SELECT count(*) FROM ledger_entries)"
        ).fetchone()

        def screen():
            data = roi_queries.roi_data_sync(conn, first, last)
            for dim in roi.DIMENSIONS:
                roi.breakdown(data.costs, data.ledger, dim)
            roi.summary(data.costs, data.ledger)
            return data

        fast, data = _timed(screen, 7)
        flags_ms, flags = _timed(lambda: fraud.fraud_flags_sync(conn, start, end), 5)

        def naive():
            costs = conn.execute(roi_queries.NAIVE_COSTS_SQL, params).fetchall()
            led = conn.execute(roi_queries.NAIVE_LEDGER_SQL, params).fetchall()
            return costs, led

        slow, (costs, led) = _timed(naive, 1 if tasks > 2_000_000 else 3)
    # The rollups and the naive scan must agree (same window, same sums).
    naive_costs = [roi.CostRow(*r) for r in costs]
    naive_ledger = [roi.LedgerRow(*r) for r in led]
    agree = {c: (f.net_revenue, f.ai_cost) for c, f in roi.summary(naive_costs, naive_ledger).items()} == {
        c: (f.net_revenue, f.ai_cost) for c, f in roi.summary(data.costs, data.ledger).items()
    }
    label = f"{tasks:,} tasks, {ledger:,} ledger entries"
    return label, [
        [
            "ROI screen reads (rollups) + arithmetic",
            f"{fast:.1f} ms",
            f"{slow / fast:,.0f}× faster",
            "≤ 100 ms at 10 M",
        ],
        ["fraud flags (partial indexes, ledger_daily)", f"{flags_ms:.1f} ms", f"{len(flags)} flags", ""],
        ["naive GROUP BY over tasks + ledger", f"{slow:,.0f} ms", "1×", ""],
        ["rollups equal the naive sums", "yes" if agree else "NO", "", "yes"],
    ]


def run(server_dsn: str) -> None:
    with seeded_database(server_dsn, seed=11) as (dsn, _):
        label, rows = measure(dsn)
    print_table(f"ROI, 30-day window, {label}", ["measure", "value", "ratio", "goal"], rows)
    existing = os.environ.get("BENCH_QUEUE_DSN")
    if existing:
        label, rows = measure(existing)
        print_table(f"ROI on BENCH_QUEUE_DSN ({label})", ["measure", "value", "ratio", "goal"], rows)
