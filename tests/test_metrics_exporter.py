"""`fsar-tui metrics` as a process on a seeded database, scraped over HTTP: every metric of
domain/metric_names.py with its type and labels, cumulative histograms, money equal to
what the ROI reads give, hostile task types and models that cannot inject a label or a
line, label folding into `other`, and bad input — a port in use, a host that does not
resolve, no database at start, the database going away while it serves (issue 20)."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import RUN_PREFIX, create_database, database_copy, drop_database
from fsar_tui.db import profiles as profile_queries
from fsar_tui.db import roi as roi_queries
from fsar_tui.domain import metric_labels as ml
from fsar_tui.domain.formatting import minor_digits
from fsar_tui.domain.metric_names import METRICS
from fsar_tui.domain.roi import REVENUE_CREDIT_KINDS, REVENUE_KINDS
from fsar_tui.sim.seed import seed_history
from support.pgcluster import free_port
from support.sql import q, x

pytestmark = pytest.mark.services

TARGET = "prompt/implement_idea"


def family_name(m) -> str:
    return m.name.removesuffix("_total") if m.kind == "counter" else m.name


def _env(home: Path) -> dict[str, str]:
    """As conftest's isolated_env: no FSAR_* settings, config and data dirs of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSAR_")}
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_STATE_HOME=str(home / "state"), NO_COLOR="1")  # fmt: skip
    return env


@pytest.fixture(scope="module")
def seeded(server_dsn, template_db, tmp_path_factory):
    """Three days of seeded history with the gates evaluated once (the rollbacks rehearsed
    by the audit pass, as the app's would); cloned by each test."""
    name = f"{RUN_PREFIX}_metrics_src"
    dsn = create_database(server_dsn, name, template=template_db)
    try:
        seed_history(dsn, days=3, tasks=3000, seed=20)
        audit = _cli(_env(tmp_path_factory.mktemp("audit")), "audit", "run", "--dsn", dsn)
        assert "Traceback" not in audit.stderr, audit.stderr
        yield name
    finally:
        drop_database(server_dsn, name)


@pytest.fixture
def db(server_dsn, seeded) -> Iterator[str]:
    with database_copy(server_dsn, seeded) as dsn:
        yield dsn


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fsar_tui", *args], capture_output=True, text=True, env=env, timeout=120
    )


@contextmanager
def exporter(env: dict[str, str], dsn: str, *args: str, cwd=None) -> Iterator[tuple[subprocess.Popen, int]]:
    """`fsar-tui metrics` on a free port, until the block ends (then SIGTERM: exit 0)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsar_tui", "metrics", "--dsn", dsn, "--port", str(port), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the exporter never listened"
                time.sleep(0.1)
        yield proc, port
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in err and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def scrape(port: int, query: str = "") -> dict:
    """name → parsed family."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics{query}", timeout=60) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: dict, name: str, suffix: str = "") -> list:
    m = next(m for m in METRICS if m.name == name)
    return [s for s in families[family_name(m)].samples if s.name == (m.name + suffix)]


def by(samples_: list, *labels: str) -> dict[tuple, float]:
    out: dict[tuple, float] = defaultdict(float)
    for s in samples_:
        out[tuple(s.labels[label] for label in labels)] += s.value
    return dict(out)


def _deploy_canary(env, dsn, tmp_path) -> None:
    artifact = tmp_path / "canary.json"
    artifact.write_text('{"prompt_version": "v-metrics", "system": "You implement ideas, metered."}')
    out = _cli(env, "rollouts", "deploy", TARGET, "--artifact", str(artifact), "--canary", "10", "--reason", "metrics",
               "--yes", "--dsn", dsn)  # fmt: skip
    assert out.returncode == 0, out.stderr


def test_every_metric_is_served_with_its_type_labels_and_the_panels_figures(db, isolated_env, tmp_path):
    _deploy_canary(isolated_env, db, tmp_path)
    three = "SELECT 'implement_idea', 'gpt-4o' FROM generate_series(1, 3)"
    x(db, f"INSERT INTO execution_tasks (task_type, ai_model) {three}")
    with exporter(isolated_env, db) as (_proc, port):
        families = scrape(port)
        only = scrape(port, "?name[]=fsar_tasks_queued&name[]=fsar_task_run_seconds_count")
    assert set(only) == {"fsar_tasks_queued", "fsar_task_run_seconds"}
    assert {s.name for s in only["fsar_task_run_seconds"].samples} == {"fsar_task_run_seconds_count"}
    for m in METRICS:
        family = families[family_name(m)]
        assert family.type == m.kind and family.documentation == m.help, m.name
        assert family.samples, f"{m.name} has no series"
        for s in family.samples:
            assert set(s.labels) - ({"le"} if s.name.endswith("_bucket") else set()) == set(m.labels), (m.name, s)
            if m.kind == "counter":
                assert s.name == m.name and s.value >= 0
    assert set(families) == {family_name(m) for m in METRICS}

    # Histograms: cumulative at the ladder, +Inf == _count, per series.
    for name in ("fsar_task_run_seconds", "fsar_task_queue_wait_seconds"):
        buckets: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
        for s in samples(families, name, "_bucket"):
            buckets[(s.labels["task_type"], s.labels["ai_model"])].append((float(s.labels["le"]), s.value))
        counts = by(samples(families, name, "_count"), "task_type", "ai_model")
        assert set(buckets) == set(counts)
        for key, rows in buckets.items():
            assert [le for le, _ in rows] == [*ml.LE_SECONDS, math.inf]
            values = [n for _, n in rows]
            assert values == sorted(values) and values[-1] == counts[key] > 0

    now = datetime.now(UTC)
    with psycopg.connect(db) as conn:
        active_sql = "SELECT status, task_type, count(*) FROM execution_tasks WHERE status IN ('queued', 'running')"
        active = {(s, t): n for s, t, n in conn.execute(active_sql + " GROUP BY 1, 2")}
        roi = roi_queries.roi_data_sync(conn, (now - timedelta(days=10)).date(), now.date())
        found = profile_queries.load_profiles_sync(conn, now - timedelta(days=10), now, now, ("type",))
    for status in ("queued", "running"):
        exported = by(samples(families, f"fsar_tasks_{status}"), "task_type")
        assert {k: v for k, v in exported.items() if v} == {(t,): n for (s, t), n in active.items() if s == status}
    assert active[("queued", "implement_idea")] >= 3

    # Money: what the ROI read adds up, in major units.
    cost: dict[str, Decimal] = defaultdict(Decimal)
    waste: dict[str, Decimal] = defaultdict(Decimal)
    finished: dict[str, int] = defaultdict(int)
    for row in roi.costs:
        finished["succeeded"] += row.succeeded
        finished["failed"] += row.failed
        finished["cancelled"] += row.cancelled
        if row.currency:
            cost[row.currency] += Decimal(row.model_cost + row.compute_cost).scaleb(-minor_digits(row.currency))
            waste[row.currency] += Decimal(row.waste).scaleb(-minor_digits(row.currency))
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    deductions: dict[str, Decimal] = defaultdict(Decimal)
    for lrow in roi.ledger:
        amount = Decimal(lrow.amount).scaleb(-minor_digits(lrow.currency))
        if lrow.kind in REVENUE_KINDS:  # both counters for every currency with revenue rows
            revenue[lrow.currency] += amount if lrow.kind in REVENUE_CREDIT_KINDS else 0
            deductions[lrow.currency] += 0 if lrow.kind in REVENUE_CREDIT_KINDS else -amount
    assert cost and revenue and any(deductions.values())
    money = (("fsar_cost_total", cost), ("fsar_waste_total", waste), ("fsar_revenue_total", revenue))
    for name, expected in (*money, ("fsar_revenue_deductions_total", deductions)):
        got = by(samples(families, name), "currency")
        assert set(got) == {(c,) for c in expected}, name
        for currency, amount in expected.items():
            assert math.isclose(got[(currency,)], float(amount), rel_tol=1e-12, abs_tol=1e-6), (name, currency)
    assert by(samples(families, "fsar_tasks_finished_total"), "status") == {(k,): v for k, v in finished.items()}
    # Run-time samples per type: what the profile read counts.
    run_counts = by(samples(families, "fsar_task_run_seconds", "_count"), "task_type")
    assert run_counts == {(p.key[0],): p.samples for p in found if p.samples}

    # The canary, the audit pass's record, the gates.
    assert by(samples(families, "fsar_canary_weight"), "target")[(TARGET,)] == pytest.approx(0.1)
    assert set(by(samples(families, "fsar_rollback_ready"), "target").values()) == {1.0}
    gates = by(samples(families, "fsar_gate_hard"), "gate")
    assert gates[("builtin:rollback-artifacts",)] == 1.0
    assert by(samples(families, "fsar_scrape_errors_total"))[()] == 0


HOSTILE_TYPES = [
    'x"} 1\nfsar_gate_failing{gate="pwn"} 1\n#',  # ≤ 64 characters: task_type is varchar(64)
    "back\\slash{brace}",
    "\x1b]52;c;SGk=\x07\u202ebidi",
    "new\nline\r",
]
HOSTILE_MODELS = ['m"odel\\' + "z" * 300, '\nai_model="evil"', "{}", '"']


def test_hostile_types_and_models_cannot_inject_labels_or_lines(db, isolated_env):
    expected_cost = {}
    for i, (task_type, model) in enumerate(zip(HOSTILE_TYPES, HOSTILE_MODELS, strict=True)):
        expected_cost[(ml.label_value(task_type), ml.label_value(model), "USD")] = (100 + i + 5) / 100
        x(db, "INSERT INTO execution_tasks (task_type, ai_model) VALUES (%s, %s)", (task_type, model))
        x(
            db,
            """INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, finished_at,
                                            cost_minor, compute_cost_minor, currency)
               VALUES (%s, %s, 'succeeded', 1, now() - interval '2 minutes', now() - interval '90 seconds', now(),
                       %s, 5, 'USD')""",
            (task_type, model, 100 + i),
        )
    with exporter(isolated_env, db) as (_proc, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as answer:
            text = answer.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {family_name(m) for m in METRICS}
    for m in METRICS:
        for s in families[family_name(m)].samples:
            assert set(s.labels) - {"le"} == set(m.labels)
    assert "pwn" not in {s.labels.get("gate") for s in families["fsar_gate_failing"].samples}
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(lines) == sum(len(f.samples) for f in families.values())  # one sample, one line
    expected = {(ml.label_value(t), ml.label_value(m)) for t, m in zip(HOSTILE_TYPES, HOSTILE_MODELS, strict=True)}
    queued = by(samples(families, "fsar_tasks_queued"), "task_type", "ai_model")
    assert expected <= set(queued)
    assert all(queued[key] == 1 for key in expected)
    run = by(samples(families, "fsar_task_run_seconds", "_count"), "task_type", "ai_model")
    assert all(run[key] == 1 for key in expected)
    cost = by(samples(families, "fsar_cost_total"), "task_type", "ai_model", "currency")
    assert {key: cost[key] for key in expected_cost} == pytest.approx(expected_cost)
    for value in {v for s in families["fsar_tasks_queued"].samples for v in s.labels.values()}:
        assert len(value) <= ml.MAX_LABEL_CHARS and not any(ord(c) < 0x20 for c in value)


def test_sixty_types_fold_into_fifty_values_with_other(db_dsn, isolated_env, tmp_path):
    # Type i has i + 1 queued and i + 1 finished tasks: the 49 heaviest (by finished tasks, all
    # time: never the queue, domain/metric_labels.py) keep their names, the 11 lightest are `other`.
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model) "
        "SELECT 'fold_' || lpad(i::text, 2, '0'), 'm' FROM generate_series(0, 59) i, generate_series(0, i) j",
    )
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, started_at, finished_at) "
        "SELECT 'fold_' || lpad(i::text, 2, '0'), 'm', 'succeeded', 1, now() - interval '1 minute', now() "
        "FROM generate_series(0, 59) i, generate_series(0, i) j",
    )
    config = tmp_path / "config.toml"
    config.write_text("[metrics]\nmax_label_values = 50\n")
    with exporter(isolated_env, db_dsn, "--config", str(config)) as (_proc, port):
        families = scrape(port)
    queued = by(samples(families, "fsar_tasks_queued"), "task_type")
    assert len(queued) == 50
    assert queued[(ml.OTHER,)] == sum(i + 1 for i in range(11))
    assert all(queued[(f"fold_{i:02d}",)] == i + 1 for i in range(11, 60))
    assert sum(queued.values()) == sum(i + 1 for i in range(60))
    assert len(by(samples(families, "fsar_drift_alerts_firing"), "task_type")) == 50
    with exporter(isolated_env, db_dsn, "--config", str(config), "--max-label-values", "5") as (_proc, port):
        assert len(by(samples(scrape(port), "fsar_tasks_queued"), "task_type")) == 5  # the flag wins


def test_a_port_in_use_is_one_line_and_exit_2(db_dsn, run_cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_cli("metrics", "--dsn", db_dsn, "--port", str(port), timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--host", "no-such-host.invalid"), "cannot listen on no-such-host.invalid"),
        (("--host", "192.0.2.1"), "cannot listen on 192.0.2.1"),  # TEST-NET: not this machine's
        (("--port", "65536"), "--port"),
        (("--max-label-values", "0"), "--max-label-values"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(db_dsn, run_cli, args, words):
    out = run_cli("metrics", "--dsn", db_dsn, *args, timeout=60)
    assert out.returncode == 2 and words in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_no_database_at_start_is_one_line_and_exit_2(run_cli):
    out = run_cli("metrics", "--dsn", f"postgresql://fsar@127.0.0.1:{free_port()}/nothing", "--port", "0")
    assert out.returncode == 2 and "cannot connect" in out.stderr and out.stderr.count("\n") == 1, out.stderr


def _counters(families: dict) -> dict[tuple, float]:
    out: dict[tuple, float] = {}
    for m in METRICS:
        if m.kind == "counter":
            for s in samples(families, m.name):
                out[(m.name, *sorted(s.labels.items()))] = s.value
    return out


def test_a_refund_takes_no_counter_down(db, isolated_env):
    """A net revenue counter fell on a refund: Prometheus read a reset and increase() counted
    the whole total again (an attack's finding). Refunds, disputes and fees add to
    fsar_revenue_deductions_total; no counter series ever decreases."""
    with exporter(isolated_env, db) as (_proc, port):
        before = _counters(scrape(port))
        x(
            db,
            """INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at)
               VALUES ('test', 'r1', 'refund', -100000, 'USD', now()),
                      ('test', 'd1', 'dispute_fee', -1500, 'USD', now())""",
        )
        after = _counters(scrape(port))
    assert set(before) <= set(after)
    assert all(after[k] >= v for k, v in before.items()), [k for k, v in before.items() if after[k] < v]
    key = ("fsar_revenue_deductions_total", ("currency", "USD"))
    assert after[key] - before[key] == pytest.approx(1015.00)
    assert after[("fsar_revenue_total", ("currency", "USD"))] == before[("fsar_revenue_total", ("currency", "USD"))]


def test_an_empty_database_serves_zero_series_not_errors(db_dsn, isolated_env):
    with exporter(isolated_env, db_dsn) as (_proc, port):
        families = scrape(port)
    assert set(families) == {family_name(m) for m in METRICS}
    assert by(samples(families, "fsar_scrape_errors_total"))[()] == 0
    assert samples(families, "fsar_task_run_seconds", "_bucket") == []


def _rename(server_dsn: str, old: str, new: str) -> None:
    """Rename a database, its sessions (the exporter's) cut first."""
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        for _ in range(50):
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (old,))
            try:
                admin.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
                )
                return
            except psycopg.errors.ObjectInUse:
                time.sleep(0.1)
    raise AssertionError(f"could not rename {old}")


def test_the_database_going_away_is_counted_and_the_figures_come_back(server_dsn, db, isolated_env):
    name = q(db, "SELECT current_database()")[0][0]
    gone = f"{name}_gone"
    with exporter(isolated_env, db) as (proc, port):
        assert "fsar_tasks_queued" in scrape(port)
        _rename(server_dsn, name, gone)
        try:
            broken = scrape(port)  # the connection was cut: this scrape fails, the next cannot connect
            again = scrape(port)
        finally:
            _rename(server_dsn, gone, name)
        back = scrape(port)
    for families, errors in ((broken, 1), (again, 2)):
        assert set(families) == {"fsar_scrape_duration_seconds", "fsar_scrape_errors"}
        assert by(samples(families, "fsar_scrape_errors_total"))[()] == errors
    assert set(back) == {family_name(m) for m in METRICS}
    assert by(samples(back, "fsar_scrape_errors_total"))[()] == 2


def test_the_read_only_viewer_role_serves_every_metric(db, login, isolated_env):
    user = conninfo_to_dict(login("fsar_viewer"))["user"]  # a LOGIN granted fsar_viewer, on the seeded copy
    viewer = make_conninfo(db, user=user)
    with exporter(isolated_env, viewer) as (_proc, port):
        families = scrape(port)
    assert set(families) == {family_name(m) for m in METRICS}
    assert by(samples(families, "fsar_scrape_errors_total"))[()] == 0
    assert samples(families, "fsar_task_run_seconds", "_count")
