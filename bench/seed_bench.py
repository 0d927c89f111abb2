"""Seed rate (issue 18, point 3: 1 M tasks over 30 days in ≤ 60 s on this machine).

- the seeder as it ships (db/bulk.py, db/bulk_rollups.py): binary COPY with the row
  triggers off, rollups computed in bulk after the load — at 1 M tasks (BENCH_SCALE=small:
  100 k), with the wall time of each phase;
- the previous path at a smaller size, same process, same server: text COPY with the
  row triggers on (each returning under the bulk flag), then one sample per finished
  task folded by fsar_fold_duration_samples() — against the shipped path at that size;
- the naive loader: one INSERT and commit per task, the triggers doing everything.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from bench.common import SMALL, fresh_database, print_table
from fsar_tui.db import bulk, bulk_rollups
from fsar_tui.db import profiles as profile_queries
from fsar_tui.sim.enqueuer import draw_tasks
from fsar_tui.sim.seed import seed_history

GOAL_S = 60.0


@contextmanager
def timed_phases() -> Iterator[dict[str, float]]:
    """Wall seconds per loader phase (COPY per table, rollups, …) while the block runs."""
    phases: dict[str, float] = defaultdict(float)
    originals = {}

    def wrap(module, name):
        original = getattr(module, name)
        originals[(module, name)] = original

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                key = f"COPY {args[1]}" if name == "copy_rows" else name
                phases[key] += time.perf_counter() - t

        setattr(module, name, timed)

    phased = ("copy_rows", "add_count_deltas", "add_payment_funnel", "add_ledger_daily", "add_fraud_velocity")
    for name in (*phased, "analyze"):
        wrap(bulk, name)
    wrap(bulk_rollups, "add_loaded_rollups")
    wrap(profile_queries, "count_loaded")
    wrap(profile_queries, "vacuum_rollups")
    try:
        yield phases
    finally:
        for (module, name), original in originals.items():
            setattr(module, name, original)


@contextmanager
def previous_path() -> Iterator[None]:
    """The seeder before issue 18: text COPY, row triggers on, samples folded."""

    @contextmanager
    def triggers_on(conn, table):
        yield []

    copy_rows, triggers_off, add_rollups = bulk.copy_rows, bulk.row_triggers_off, bulk_rollups.add_loaded_rollups
    add_funnel = bulk.add_payment_funnel
    bulk.copy_rows = lambda conn, table, columns, rows, types=None: copy_rows(conn, table, columns, rows)
    bulk.row_triggers_off = triggers_on
    bulk.add_payment_funnel = lambda conn: None  # the funnel's trigger counted them
    bulk_rollups.add_loaded_rollups = profile_queries.count_loaded
    try:
        yield
    finally:
        bulk.copy_rows, bulk.row_triggers_off, bulk_rollups.add_loaded_rollups = copy_rows, triggers_off, add_rollups
        bulk.add_payment_funnel = add_funnel


def seed_seconds(server_dsn: str, tasks: int) -> float:
    with fresh_database(server_dsn) as dsn:
        t = time.perf_counter()
        seed_history(dsn, days=30, tasks=tasks, seed=1)
        return time.perf_counter() - t


def naive_rate(server_dsn: str, n: int) -> float:
    with fresh_database(server_dsn) as dsn:
        tasks = draw_tasks(random.Random(1), n)
        with psycopg.connect(dsn) as conn:
            t = time.perf_counter()
            for task in tasks:  # one INSERT and commit per task, trigger and all
                conn.execute(
                    "INSERT INTO execution_tasks (task_type, ai_model, idea_id, payload) VALUES (%s, %s, %s, %s)",
                    (task["task_type"], task["ai_model"], task["idea_id"], psycopg.types.json.Jsonb(task["payload"])),
                )
                conn.commit()
            return n / (time.perf_counter() - t)


def run(server_dsn: str) -> None:
    n = 100_000 if SMALL else 1_000_000
    n_cmp = 50_000 if SMALL else 200_000
    n_naive = 2_000 if SMALL else 10_000
    with timed_phases() as phases:
        full_s = seed_seconds(server_dsn, n)
    shipped_s = seed_seconds(server_dsn, n_cmp)
    with previous_path():
        previous_s = seed_seconds(server_dsn, n_cmp)
    naive = naive_rate(server_dsn, n_naive)
    rate = n / full_s
    per_million = 1_000_000 / rate
    rows = [
        [
            "seed as shipped (binary COPY, triggers off, bulk rollups)",
            f"{n:,}",
            f"{full_s:.1f}",
            f"{rate:,.0f}",
            f"{rate / naive:,.0f}× naive",
            f"1 M in {per_million:.0f} s (goal ≤ {GOAL_S:.0f} s){'' if per_million <= GOAL_S else ' — MISSED'}",
        ],
        [
            "seed as shipped",
            f"{n_cmp:,}",
            f"{shipped_s:.1f}",
            f"{n_cmp / shipped_s:,.0f}",
            f"{previous_s / shipped_s:.1f}× previous",
            "",
        ],
        [
            "previous path (text COPY, triggers on, samples folded)",
            f"{n_cmp:,}",
            f"{previous_s:.1f}",
            f"{n_cmp / previous_s:,.0f}",
            "1.0×",
            "",
        ],
        ["naive INSERT + commit per task", f"{n_naive:,}", "", f"{naive:,.0f}", "", ""],
    ]
    print_table(
        "Seed rate, 30 days of history (same server, same run)",
        ["loader", "tasks", "seconds", "tasks/s", "ratio", "goal"],
        rows,
    )
    print_table(
        f"Seed phases, {n:,} tasks (wall seconds; COPY overlaps with generating the rows)",
        ["phase", "seconds", "share"],
        [[k, f"{v:.1f}", f"{v / full_s:.0%}"] for k, v in sorted(phases.items(), key=lambda kv: -kv[1])],
    )
