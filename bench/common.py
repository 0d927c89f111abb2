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


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 60) -> str:
    """A one-line terminal plot of `values` (resampled to at most `width` cells)."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [max(values[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)]) for i in range(width)]
    top = max(values) or 1.0
    cells = (SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] if v > 0 else " " for v in values)
    return "".join(cells)


def print_series(title: str, header: list[str], rows: list[list[object]], plots: dict[str, list[float]]) -> None:
    """A time series: one row per sample, then a sparkline per plotted column."""
    print_table(title, header, rows)
    for name, values in plots.items():
        finite = [v for v in values if v == v]  # NaN (no sample) left out of the scale
        top = max(finite) if finite else 0
        print(f"  {name:>24s} {sparkline([v if v == v else 0 for v in values])}  max {top:,.0f}")


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (0 when it is gone): /proc, so it works for the server's
    backends too when the server runs on this machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB (VmRSS), NaN when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return float("nan")


@contextmanager
def simulator(
    dsn: str,
    *,
    rate: float,
    duration: float,
    workers: int = 16,
    processes: int = 2,
    seed: int = 11,
    mqtt_url: str | None = None,
):
    """`fsar-tui simulate` in the background (the real fleet: enqueuer, workers in
    `processes` processes, reaper, money writer), tasks running 2,000× faster than their
    profiles so the rate is set by --rate, not by how long tasks take; publishing to MQTT
    when given a broker. Yields the Popen."""
    import subprocess

    env = {**os.environ, "FSAR_DSN": dsn}
    env.pop("FSAR_MQTT_URL", None)
    if mqtt_url:
        env["FSAR_MQTT_URL"] = mqtt_url
    cmd = [sys.executable, "-m", "fsar_tui", "simulate", "--workers", str(workers), "--processes", str(processes)]
    cmd += ["--rate", str(rate), "--time-scale", "0.0005", "--duration", str(duration), "--seed", str(seed)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def transitions_since(conn: psycopg.Connection, start: float, end: float) -> tuple[int, int]:
    """(task_events, tasks finished) with `at` in [start, end) (epoch seconds)."""
    row = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE to_status IN ('succeeded', 'failed', 'cancelled')) "
        "FROM task_events WHERE at >= to_timestamp(%s) AND at < to_timestamp(%s)",
        (start, end),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
