"""Many operators (issue 18, point 4): 25 panels open on one database while the fleet
runs — what one idle panel costs the database.

The simulator runs at RATE tasks/s throughout. First the fleet alone (BASE_S), then 25
apps (BENCH_PANELS), each a process of its own — the real app, headless, with its own
session, pool and live source, on the queue screen, nobody pressing a key — named
`fsar-bench-panel-NN` in pg_stat_activity (application_name in its DSN); once with
NOTIFY as the live source, and again with MQTT when a broker is there (the simulator
then publishes too). Once every panel has been idle for the screen's 30 s, for
BENCH_PANELS_S seconds (default 120; small 60; the issue's runs: 600):
- statements/s per panel: counted in each panel's process as it sends them (every
  psycopg cursor execute; the pool's empty-query connection checks apart, as pings),
  with what they read;
- transactions/s per panel: this database's xact count less the fleet's own (its
  transactions per transition, measured alone, times its transitions meanwhile);
- server CPU per panel: utime + stime (/proc) of the panels' backends, sampled every
  second (one living less than a second is missed), its LISTEN backend apart (with
  NOTIFY every listener is handed every notification: the fan-out DESIGN.md §6 moves
  to the MQTT broker), as a share of all this database's backends' CPU;
- audit passes: distinct evaluation times in audit_runs during the window, against the
  number of CHECK_EVERY_S intervals it spans (the goal: once per interval in total).
Goal: ≤ 1 query/s per idle panel, its live data from NOTIFY/MQTT and the counters.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from bench.common import SMALL, cpu_seconds, fresh_database, print_table, simulator
from fsar_tui.services.audit_pass import CHECK_EVERY_S
from fsar_tui.sim.seed import seed_history

PANELS = int(os.environ.get("BENCH_PANELS", "25"))
WINDOW_S = float(os.environ.get("BENCH_PANELS_S", "60" if SMALL else "120"))
RATE = 200  # tasks/s: a fleet that keeps every panel's live feed busy
BASE_S = 20.0
IDLE_WAIT_S = 35.0  # the queue screen counts as idle after 30 s without a key
APP_NAME = "fsar-bench-panel"
CONNECTIONS_PER_PANEL = 4  # its pool and LISTEN connection, and while starting a pass's and a write's


def panel_main(dsn: str, seconds: float, out: str, live: str, mqtt_url: str) -> None:
    """In a panel's process: count what it sends, show the queue screen for `seconds`;
    the counts so far are written to `out` every 5 s (the bench may stop it any time)."""
    import asyncio

    from fsar_tui.app import FsarApp
    from fsar_tui.config import Settings

    sent: Counter[str] = Counter()
    marks: list[tuple[float, dict[str, int]]] = []

    def kind(query) -> str:
        text = str(query) if isinstance(query, str) else repr(query)
        return "ping" if not text.strip() else " ".join(text.split())[:60]

    sync_execute, async_execute = psycopg.Cursor.execute, psycopg.AsyncCursor.execute

    def counted(self, query, *args, **kwargs):
        sent[kind(query)] += 1
        return sync_execute(self, query, *args, **kwargs)

    async def acounted(self, query, *args, **kwargs):
        sent[kind(query)] += 1
        return await async_execute(self, query, *args, **kwargs)

    psycopg.Cursor.execute = counted  # type: ignore[method-assign]
    psycopg.AsyncCursor.execute = acounted  # type: ignore[method-assign]

    async def main() -> None:
        settings = Settings(dsn=dsn, live=live, mqtt_url=mqtt_url or None)
        app = FsarApp(settings=settings, dsn=dsn)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.live_name != live:
                await pilot.pause(0.1)
            print("ready", flush=True)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                marks.append((time.time(), dict(sent)))
                if len(marks) % 5 == 0:  # whole files only: the bench may read (or stop us) any time
                    Path(out + ".tmp").write_text(json.dumps(marks))
                    os.replace(out + ".tmp", out)
                await pilot.pause(1.0)

    asyncio.run(main())


def start_panel(dsn: str, n: int, seconds: float, out: str, live: str, mqtt_url: str) -> subprocess.Popen:
    panel_dsn = make_conninfo(dsn, application_name=f"{APP_NAME}-{n:02d}")
    code = (
        "import sys; from bench.panels_bench import panel_main; "
        "panel_main(sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])"
    )
    with open(out + ".err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-c", code, panel_dsn, str(seconds), out, live, mqtt_url],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def wait_ready(panel: subprocess.Popen, out: str, timeout: float = 180) -> None:
    """Until the panel says it is showing live data; a panel that died or hangs stops the
    bench with its last line of stderr."""
    assert panel.stdout is not None
    ready, _, _ = select.select([panel.stdout], [], [], timeout)
    if ready and panel.stdout.readline().strip() == "ready":
        return
    lines = Path(out + ".err").read_text().strip().splitlines()
    raise RuntimeError(f"a panel did not start: {lines[-1] if lines else 'no output'}")


def free_connections(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)"
        ).fetchone()
    return int(row[0]) if row else 0


def xacts(conn: psycopg.Connection) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
    return int(row.fetchone()[0])


def backends(conn: psycopg.Connection) -> list[tuple[int, str, str]]:
    return conn.execute(
        "SELECT pid, coalesce(application_name, ''), coalesce(query, '') FROM pg_stat_activity "
        "WHERE datname = current_database()"
    ).fetchall()


def transitions(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM task_events").fetchone()[0])


def measure(conn: psycopg.Connection, seconds: float) -> dict:
    """During `seconds`: CPU seconds per backend (first to last sight), the panels' split
    into their LISTEN backends and the rest, everyone's; the xact count's and the
    fleet's transitions' changes."""
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    panel_pids: set[int] = set()
    listeners: set[int] = set()
    x0, t0, end = xacts(conn), transitions(conn), time.monotonic() + seconds
    while time.monotonic() < end:
        for pid, name, query in backends(conn):
            used = cpu_seconds(pid)
            first.setdefault(pid, used)
            last[pid] = used
            if name.startswith(APP_NAME):
                panel_pids.add(pid)
                if query.lstrip().upper().startswith("LISTEN"):
                    listeners.add(pid)
        time.sleep(1.0)
    used = {pid: last[pid] - first[pid] for pid in last}
    return {
        "panels": sum(used[p] for p in panel_pids - listeners),
        "listeners": sum(used[p] for p in listeners),
        "all": sum(used.values()),
        "xacts": xacts(conn) - x0,
        "transitions": transitions(conn) - t0,
        "seconds": seconds,
    }


def run(server_dsn: str, mqtt_url: str | None = None) -> None:
    with ExitStack() as stack:
        needed = PANELS * CONNECTIONS_PER_PANEL + 40  # and the fleet's, the bench's
        free = free_connections(server_dsn)
        if free < needed:
            from support.pgcluster import Cluster

            cluster = Cluster().start()
            stack.callback(cluster.destroy)
            cluster.wait_ready()
            server_dsn = cluster.dsn()
            print(
                f"\n  ({free} connections free on the server; {PANELS} panels and the fleet need ~{needed}: measured "
                "on a throwaway cluster of this machine's, max_connections 200)"
            )
        for live in ("notify", "mqtt") if mqtt_url else ("notify",):
            measure_panels(server_dsn, live, mqtt_url or "")
    if not mqtt_url:
        print("  (no MQTT broker: the panels were measured on NOTIFY only)")


def measure_panels(server_dsn: str, live: str, mqtt_url: str) -> None:
    with fresh_database(server_dsn) as dsn, tempfile.TemporaryDirectory() as tmp:
        seed_history(dsn, days=1, tasks=10_000, seed=4)
        panel_s = WINDOW_S + IDLE_WAIT_S + 120
        fleet = simulator(dsn, rate=RATE, duration=BASE_S + panel_s + 60, workers=8, processes=2, mqtt_url=mqtt_url)
        with fleet, psycopg.connect(dsn, autocommit=True) as conn:
            time.sleep(5)
            base = measure(conn, BASE_S)
            outs = [str(Path(tmp) / f"panel{n}.json") for n in range(PANELS)]
            panels: list[subprocess.Popen] = []
            try:
                for n, out in enumerate(outs):  # one after another: 25 apps starting at once starve the fleet
                    panels.append(start_panel(dsn, n, panel_s, out, live, mqtt_url))
                    time.sleep(0.5)
                for p, out in zip(panels, outs, strict=True):
                    wait_ready(p, out)
                time.sleep(IDLE_WAIT_S)
                start = time.time()
                window = measure(conn, WINDOW_S)
                end = time.time()
                passes = conn.execute(
                    "SELECT count(DISTINCT at) FROM audit_runs WHERE at >= to_timestamp(%s) AND at < to_timestamp(%s)",
                    (start, end),
                ).fetchone()[0]
                time.sleep(6)  # the panels' last counts reach their files
            finally:
                for p in panels:
                    p.terminate()
                for p in panels:
                    try:
                        p.wait(60)
                    except subprocess.TimeoutExpired:
                        p.kill()
        sent = statements(outs, start, end)
    report(live, sent, base, window, passes, end - start)


def statements(outs: list[str], start: float, end: float) -> list[Counter[str]]:
    """Per panel, what it sent between start and end (its marks nearest each)."""
    per_panel = []
    for out in outs:
        if not Path(out).exists():
            continue
        try:
            marks = json.loads(Path(out).read_text())
        except ValueError:
            continue
        before = max((m for m in marks if m[0] <= start), key=lambda m: m[0], default=None)
        after = max((m for m in marks if m[0] <= end), key=lambda m: m[0], default=None)
        if before is None or after is None:
            continue
        per_panel.append(Counter(after[1]) - Counter(before[1]))
    return per_panel


def report(live: str, sent, base: dict, window: dict, passes: int, seconds: float) -> None:
    n = max(1, len(sent))
    total: Counter[str] = Counter()
    for c in sent:
        total.update(c)
    pings = total.pop("ping", 0)
    per_s = sum(total.values()) / n / seconds
    # The fleet's own transactions scale with its transitions: take them out at the rate
    # the fleet alone ran them, what is left is the panels'.
    fleet_per_transition = base["xacts"] / max(1, base["transitions"])
    panel_xps = (window["xacts"] - fleet_per_transition * window["transitions"]) / window["seconds"] / n
    cpu, listen = window["panels"], window["listeners"]
    intervals = seconds / CHECK_EVERY_S
    print_table(
        f"{len(sent)} idle panels ({live}) on one database, the fleet at "
        f"~{window['transitions'] / window['seconds']:,.0f} transitions/s, {seconds:.0f} s",
        ["measure", "figure", "goal"],
        [
            ["statements/s per idle panel (sent)", f"{per_s:.2f}", "≤ 1" + ("" if per_s <= 1 else " — MISSED")],
            ["pool connection checks/s per panel (empty query)", f"{pings / n / seconds:.2f}", ""],
            ["transactions/s per panel (server, the fleet's taken out)", f"{panel_xps:.2f}", ""],
            [
                "server CPU per panel: its queries",
                f"{cpu / n / seconds * 1000:.1f} ms/s ({cpu / window['all']:.1%} of the database's)",
                "almost none",
            ],
            [
                "server CPU per panel: its LISTEN backend",
                f"{listen / n / seconds * 1000:.1f} ms/s ({listen / window['all']:.1%} of the database's)",
                "(NOTIFY fan-out; none on MQTT)",
            ],
            [
                "audit passes (distinct evaluation times)",
                f"{passes} in {intervals:.1f} intervals of {CHECK_EVERY_S} s",
                "once per interval in total" + ("" if passes <= intervals + 1 else " — MISSED"),
            ],
        ],
    )
    print_table(
        f"What an idle panel still sends ({live}; per panel per minute)",
        ["statement", "per minute"],
        [[k, f"{v / n / seconds * 60:.1f}"] for k, v in total.most_common(8)],
    )
