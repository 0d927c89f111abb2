"""Shared bench plumbing: a database to measure on, and the result table."""

from __future__ import annotations

import os
import statistics
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

SMALL = os.environ.get("BENCH_SCALE") == "small"


def server():
    """FSAR_BENCH_DSN / FSAR_TEST_DSN when set, else a throwaway cluster."""
    from support.pgcluster import server_or_cluster

    return server_or_cluster("FSAR_BENCH_DSN", "FSAR_TEST_DSN")


@contextmanager
def fresh_database(server_dsn: str):
    from fsar_tui.db.migrations import migrate

    name = f"fsar_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = make_conninfo(server_dsn, dbname=name)
    try:
        migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def seeded_database(server_dsn: str, seed: int):
    """A fresh database with 30 days of seeded history (1,000,000 tasks; BENCH_SCALE=small:
    100,000), vacuumed and analysed: yields (dsn, tasks)."""
    from fsar_tui.sim.seed import seed_history

    n = 100_000 if SMALL else 1_000_000
    with fresh_database(server_dsn) as dsn:
        seed_history(dsn, days=30, tasks=n, seed=seed)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        yield dsn, n


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if n else c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


median = statistics.median
