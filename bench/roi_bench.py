"""ROI benchmarks (issue: ROI over 10 M tasks and 1 M ledger entries in ≤ 100 ms).

Same database, same run: everything the ROI screen reads for a 30-day window — task
costs and ledger sums from the rollups (both grouping sets), the payment funnel, rollout
names, each idea's completing task (attribution), and the fraud flags — against the
naive GROUP BY over execution_tasks and ledger_entries that gives the same sums. On
1,000,000 tasks seeded here (BENCH_SCALE=small: 100,000) and, when BENCH_QUEUE_DSN names
one, on that database as it is. Then the fraud checks at 1× and 10× ledger volume,
against the full scan they replaced (bench/fraud_volume.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal

from bench import fraud_volume
from bench.common import median, print_table, seeded_database
from fsar_tui.db import fraud, idea_completions
from fsar_tui.db import roi as roi_queries
from fsar_tui.db.connect import connect
from fsar_tui.domain import attribution, roi
from fsar_tui.services import attribution_report


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
            for dim in roi.DIMENSIONS:  # every breakdown under the default method, its notice, per idea
                rows = attribution_report.breakdown(data, dim, attribution.DEFAULT)
                attribution_report.flat_rows(rows, dim)
                attribution_report.per_idea_rows(data, dim)
            roi.summary(data.costs, data.ledger)
            return data

        fast, data = _timed(screen, 7)
        completions_ms, _ = _timed(lambda: idea_completions.completions_sync(conn, data.ideas, end), 7)
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
        [
            f"  of which completing tasks of {len(data.ideas):,} ideas (partial index)",
            f"{completions_ms:.1f} ms",
            "",
            "",
        ],
        ["fraud flags (velocity state, partial indexes)", f"{flags_ms:.1f} ms", f"{len(flags)} flags", ""],
        ["naive GROUP BY over tasks + ledger", f"{slow:,.0f} ms", "1×", ""],
        ["rollups equal the naive sums", "yes" if agree else "NO", "", "yes"],
    ]


def _cli_json(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "fsar_tui", *args, "--format", "json"], capture_output=True, text=True, check=True
    ).stdout
    parsed: dict = json.loads(out, parse_float=Decimal)
    return parsed


def _dev(d: float) -> str:
    return "exact" if d == 0 else f"{d * 100:.2g} %"


def exact_cost(dsn: str) -> tuple[str, list[list[object]]]:
    """Issue 17's proof: each model's model cost from `roi --by model --format json` against
    the independent SQL (tests/support/exact_cost.py: tokens × the price in force at each
    attempt's start, from task_events and model_prices — no cost column), and `profile
    --by model`'s cost per success against the same AI cost over the successes. The
    windows (31 days) hold the whole 30-day seed."""
    from support.exact_cost import deviation, independent_costs

    start, end = roi_queries.day_bounds(*roi_queries.window_days(31))
    with connect(dsn, autocommit=True, statement_timeout_ms=0) as conn:
        t = time.perf_counter()
        expected = independent_costs(conn, start, end)
        sql_s = time.perf_counter() - t
    got = {r["model"]: r for r in _cli_json("roi", "--by", "model", "--window", "31d", "--dsn", dsn)["breakdown"]}
    prof = {g["model"]: g for g in _cli_json("profile", "--by", "model", "--window", "31d", "--dsn", dsn)["groups"]}
    rows: list[list[object]] = []
    for model, want in sorted(expected.items()):
        roi_cost = got.get(model, {}).get("model_cost_minor")
        cps = prof.get(model, {}).get("cost_per_success_minor")
        rows.append(
            [
                model,
                f"{want.attempts:,}",
                f"{want.cost_minor / 100:,.2f} {want.currency}",
                "exact" if roi_cost == want.cost_minor else _dev(deviation(roi_cost, want.cost_minor)),
                f"{want.cost_per_success_minor / 100:.6f}" if want.cost_per_success_minor is not None else "-",
                _dev(deviation(cps, want.cost_per_success_minor)),
                "≤ 0.5 %",
            ]
        )
    return f"independent SQL {sql_s:.1f} s", rows


def run(server_dsn: str) -> None:
    with seeded_database(server_dsn, seed=11) as (dsn, n):
        label, rows = measure(dsn)
        cost_label, cost_rows = exact_cost(dsn)
    print_table(f"ROI, 30-day window, {label}", ["measure", "value", "ratio", "goal"], rows)
    print_table(
        f"Exact cost, {n:,} seeded tasks: largest deviation per model ({cost_label})",
        ["model", "attempts", "model cost (SQL)", "roi --by model", "cost/ok (SQL)", "profile cost/ok", "goal"],
        cost_rows,
    )
    existing = os.environ.get("BENCH_QUEUE_DSN")
    if existing:
        label, rows = measure(existing)
        print_table(f"ROI on BENCH_QUEUE_DSN ({label})", ["measure", "value", "ratio", "goal"], rows)
        read_ms = float(str(rows[0][1]).split()[0].replace(",", ""))
        verdict = "met" if read_ms <= 100 else "MISSED"
        print(f"  ROI reads on BENCH_QUEUE_DSN: {read_ms:.1f} ms — goal ≤ 100 ms at 10 M: {verdict}")
    else:
        print(
            "  ROI reads at 10 M tasks (goal ≤ 100 ms): not measured — seed one "
            "(fsar-tui seed --days 30 --tasks 10000000) and name it in BENCH_QUEUE_DSN"
        )
    fraud_volume.run(server_dsn)
