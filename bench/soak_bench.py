"""Soak (issue 18, point 3): an hour at ~500 transitions/s with an app open — only with
BENCH_ONLY=soak (BENCH_SOAK_S seconds, default 3,600; 120 for a quick try).

The real simulator at 160 tasks/s (~3.1 transitions a task: enqueue, claim, finish and
the retries) and an app (headless Pilot, queue screen, a key every 2 s) in a process of
its own. Every SAMPLE_S (60 s; 10 s below a 10-minute soak): the app's RSS (/proc), the
database's size (pg_database_size), its backends (pg_stat_activity), and the rows of
task_events and execution_tasks. Every RETENTION_EVERY_S (5 min; 1 min in a short
soak) `fsar-tui retention run` into a temporary archive directory, as a subprocess
(its exit code and last line are printed), with the shortest policy it accepts: asked
for 10 minutes of events and 20 of tasks it refuses anything shorter than what a figure
still reads raw (the failing-now view's 24 h, the gates' windows) and says how long to
keep; the soak takes that. The database holds 4 days of seeded history, so the first
run has whole days to archive and drop.

Retention drops whole partitions — task_events by UTC day, execution_tasks by
1,000,000 ids — so the size is bounded by the policy plus a partition (a day of
events; a million tasks), not by the policy alone: within an hour the run's own rows
grow it until a UTC midnight passes. The verdict says which held: RSS ≤ +10 % from the
first sample after warm-up to the last, the size within that bound at this rate,
client backends flat (max − min ≤ 2 after warm-up; autovacuum workers, which come
and go with the load, are not connections anything opened), and the rate ≥ 500
transitions/s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.common import fresh_database, print_series, print_table, rss_mb, simulator
from fsar_tui.domain.durations import parse_window
from fsar_tui.sim.seed import seed_history

SOAK_S = float(os.environ.get("BENCH_SOAK_S", "3600"))
SHORT = SOAK_S < 600
SAMPLE_S = 10.0 if SHORT else 60.0
RETENTION_EVERY_S = 60.0 if SHORT else 300.0
RATE = 160  # tasks/s: ~500 transitions/s
WARM_SAMPLES = 2  # samples left out of the RSS and backends baselines
ASKED = {"--task-events": "10m", "--tasks": "20m"}
KEEP_AT_LEAST = re.compile(r"^fsar-tui: retention refused: (task_events|tasks) .*\(keep at least (\w+)")


async def app_main(dsn: str, seconds: float) -> None:
    """In the app's process: the queue screen, a key every 2 s, for `seconds`."""
    from fsar_tui.app import FsarApp
    from fsar_tui.config import Settings

    app = FsarApp(settings=Settings(dsn=dsn, live="notify"), dsn=dsn)
    async with app.run_test(size=(160, 48)) as pilot:
        print("ready", flush=True)
        end, n = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            await pilot.press("j" if n % 20 < 10 else "k")
            n += 1
            await pilot.pause(2.0)


def start_app(dsn: str, seconds: float) -> subprocess.Popen:
    code = (
        "import asyncio, sys; from bench.soak_bench import app_main; "
        "asyncio.run(app_main(sys.argv[1], float(sys.argv[2])))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, dsn, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the app did not start")
    return proc


def shortest_policy(dsn: str) -> list[str] | str:
    """The shortest policy `retention run` accepts here (asked for ASKED, it says how
    long to keep instead), as its flags; or why there is none (the command missing)."""
    policy = dict(ASKED)
    for _ in range(3):
        flags = [x for kv in policy.items() for x in kv]
        cmd = [sys.executable, "-m", "fsar_tui", "retention", "run", "--dry-run", *flags, "--dsn", dsn]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 and "invalid choice" in proc.stderr:
            return "fsar-tui retention run is missing (not built yet)"
        found = KEEP_AT_LEAST.match(proc.stderr.strip())
        if not found:
            return flags
        policy["--task-events" if found[1] == "task_events" else "--tasks"] = found[2]
    return [x for kv in policy.items() for x in kv]


def retention(dsn: str, archive: str, policy: list[str]) -> str:
    """One `fsar-tui retention run`: its outcome in one line."""
    cmd = [sys.executable, "-m", "fsar_tui", "retention", "run", *policy, "--archive", archive, "--dsn", dsn]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "invalid choice" in proc.stderr:
        return "fsar-tui retention run is missing (not built yet)"
    lines = (proc.stdout.strip() or proc.stderr.strip() or "(no output)").splitlines()
    return f"exit {proc.returncode}: {lines[-1][:100]}"


def sample(conn: psycopg.Connection, app_pid: int) -> dict:
    size, backends, events, tasks, oldest = conn.execute(
        "SELECT pg_database_size(current_database()), "
        "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend'), "
        "(SELECT count(*) FROM task_events), (SELECT count(*) FROM execution_tasks), "
        "(SELECT extract(epoch FROM now() - min(at))::float8 FROM task_events)"
    ).fetchone()
    return {
        "rss": rss_mb(app_pid),
        "size": size / 1e6,
        "backends": backends,
        "events": events,
        "tasks": tasks,
        "oldest_h": (oldest or 0.0) / 3600,
    }


def run(server_dsn: str) -> None:
    with fresh_database(server_dsn) as dsn, tempfile.TemporaryDirectory() as archive:
        seed_history(dsn, days=4, tasks=20_000, seed=4)
        policy = shortest_policy(dsn)
        app = start_app(dsn, SOAK_S + 60)
        samples: list[tuple[float, dict]] = []
        runs: list[tuple[float, str]] = []
        try:
            with (
                simulator(dsn, rate=RATE, duration=SOAK_S + 10, workers=8, processes=2),
                psycopg.connect(dsn, autocommit=True) as conn,
            ):
                t0 = next_retention = time.time()
                next_retention += RETENTION_EVERY_S
                while (now := time.time()) - t0 < SOAK_S:
                    samples.append((now - t0, sample(conn, app.pid)))
                    if now >= next_retention:
                        outcome = retention(dsn, archive, policy) if isinstance(policy, list) else policy
                        runs.append((now - t0, outcome))
                        next_retention += RETENTION_EVERY_S
                    time.sleep(max(0.0, SAMPLE_S - (time.time() - now)))
                with psycopg.connect(dsn) as c:
                    moved = c.execute("SELECT count(*) FROM task_events WHERE at >= to_timestamp(%s)", (t0,)).fetchone()
        finally:
            app.terminate()
            app.wait(60)
        report(samples, runs, (moved[0] if moved else 0) / SOAK_S, Path(archive), policy)


def report(samples: list[tuple[float, dict]], runs, rate: float, archive: Path, policy: list[str] | str) -> None:
    rows = [
        [
            f"{t:>6.0f}",
            f"{s['rss']:.1f}",
            f"{s['size']:,.0f}",
            s["backends"],
            f"{s['events']:,}",
            f"{s['tasks']:,}",
            f"{s['oldest_h']:.0f} h",
        ]
        for t, s in samples
    ]
    print_series(
        f"Soak, {SOAK_S / 60:.0f} min at ~{rate:,.0f} transitions/s (goal ≥ 500), one line per {SAMPLE_S:.0f} s",
        ["t (s)", "app RSS MB", "db MB", "backends", "task_events", "execution_tasks", "oldest event"],
        rows,
        {
            "app RSS MB": [s["rss"] for _, s in samples],
            "db MB": [s["size"] for _, s in samples],
            "backends": [float(s["backends"]) for _, s in samples],
        },
    )
    said = " ".join(policy) if isinstance(policy, list) else policy
    print_table(f"Retention runs ({said})", ["t (s)", "outcome"], [[f"{t:.0f}", o] for t, o in runs])
    steady = samples[WARM_SAMPLES:] or samples
    rss0, rss1 = steady[0][1]["rss"], steady[-1][1]["rss"]
    growth = rss1 / rss0 - 1 if rss0 else float("nan")
    backends = [s["backends"] for _, s in steady]
    size0, size1 = samples[0][1]["size"], samples[-1][1]["size"]
    per_hour = (size1 - size0) / max(1.0, samples[-1][0] - samples[0][0]) * 3600
    # What retention keeps: the policy's events plus at most one UTC day (a partition).
    kept = dict(zip(policy[::2], policy[1::2], strict=True)) if isinstance(policy, list) else {}
    events_s = parse_window(kept.get("--task-events", "1d")) + 86_400
    bounded = samples[-1][1]["oldest_h"] <= events_s / 3600
    archived = sum(1 for _ in archive.rglob("*.gz"))
    print_table(
        "Soak verdict",
        ["measure", "figure", "goal", "verdict"],
        [
            [
                "app RSS, first steady sample → last",
                f"{rss0:.1f} → {rss1:.1f} MB ({growth:+.1%})",
                "≤ +10 %",
                _v(growth <= 0.10),
            ],
            [
                "oldest event kept (retention's bound: the policy + one day's partition)",
                f"{samples[-1][1]['oldest_h']:.1f} h",
                f"≤ {events_s / 3600:.0f} h",
                _v(bounded),
            ],
            [
                "database size",
                f"{size0:,.0f} → {size1:,.0f} MB ({per_hour:+,.0f} MB/h); {archived} partition(s) archived",
                "bounded as the oldest event is",
                _v(bounded and archived > 0),
            ],
            [
                "transitions/s, on average over the soak",
                f"{rate:,.0f}",
                "≥ 500",
                _v(rate >= 500),
            ],
            [
                "client backends of the database",
                f"{min(backends)}–{max(backends)}",
                "flat (±2)",
                _v(max(backends) - min(backends) <= 2),
            ],
        ],
    )


def _v(ok: bool) -> str:
    return "holds" if ok else "NO"
