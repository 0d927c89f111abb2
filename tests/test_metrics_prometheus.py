"""The real Prometheus (Debian's `prometheus` package) scrapes `fsar-tui metrics` every
second, and PromQL's `histogram_quantile(0.9, …)` over the exported run-time histogram
of a task type agrees with fsar-tui's own p90 of that type within the stated error
(domain/metric_labels.py): Prometheus interpolates linearly inside the `le` interval
where the rank falls, so its estimate and the true p90 share that interval — widened by
one log bucket below (a straddling log bucket counts one bound up) and by the 0.8 % of
fsar-tui's own reading, plus one log bucket for the two rank definitions
(Prometheus: q·n; fsar-tui: the nearest rank, floor(q·(n−1))). Issue 20.

No `prometheus` binary is a failure, not a skip: `.ci/run` installs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from fsar_tui.db import profiles as profile_queries
from fsar_tui.domain import metric_labels as ml
from fsar_tui.domain.histogram import ALPHA, GAMMA
from fsar_tui.sim.seed import seed_history
from support.pgcluster import free_port
from test_metrics_exporter import exporter

pytestmark = pytest.mark.slow

TYPES = ("implement_idea", "idea_implementation", "self_improvement")


def _prometheus() -> str:
    found = shutil.which("prometheus", path=f"{os.environ.get('PATH', '')}:/usr/bin")
    if found is None:
        pytest.fail("the `prometheus` binary is missing: .ci/run installs Debian's `prometheus` package")
    return found


def _query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=30) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _interval(estimate: float) -> tuple[float, float]:
    """The `le` interval (L_{k−1}, L_k] holding `estimate`."""
    for k, le in enumerate(ml.LE_SECONDS):
        if estimate <= le * (1 + 1e-12):
            return (ml.LE_SECONDS[k - 1] if k else 0.0), le
    raise AssertionError(f"{estimate} is past the ladder")


def test_promql_p90_agrees_with_fsar_tuis_within_the_bucket_error(db_dsn, isolated_env, tmp_path):
    binary = _prometheus()
    seed_history(db_dsn, days=3, tasks=6000, seed=31)
    now = datetime.now(UTC)
    with psycopg.connect(db_dsn) as conn:
        found = profile_queries.load_profiles_sync(conn, now - timedelta(days=10), now, now, ("type",))
    ours = {p.key[0]: p.p(0.9) / 1000 for p in found if p.samples >= 500}
    assert set(ours) == set(TYPES), ours
    with exporter(isolated_env, db_dsn) as (_proc, port):
        web = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"scrape_configs:\n  - job_name: fsar\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        )
        log = (tmp_path / "prometheus.log").open("w")
        server = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                assert server.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
                try:
                    if _query(web, "fsar_task_run_seconds_count"):
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-3000:]
                time.sleep(0.5)
            theirs = {}
            for task_type in TYPES:
                promql = (
                    f'histogram_quantile(0.9, sum by (le) (fsar_task_run_seconds_bucket{{task_type="{task_type}"}}))'
                )
                (result,) = _query(web, promql)
                theirs[task_type] = float(result["value"][1])
            up = _query(web, 'up{job="fsar"}')
        finally:
            server.terminate()
            server.wait(30)
            log.close()
    assert [r["value"][1] for r in up] == ["1"]
    for task_type in TYPES:
        estimate, p90 = theirs[task_type], ours[task_type]
        low, high = _interval(estimate)
        # The true p90 lies in (low/γ, high]; fsar-tui reads it within α; ranks differ by one sample.
        assert low / GAMMA**2 / (1 + ALPHA) <= p90 <= high * GAMMA * (1 + ALPHA), (task_type, estimate, p90)
        assert abs(estimate - p90) / p90 <= ml.QUANTILE_ERROR + 2 * ALPHA + (GAMMA - 1), (task_type, estimate, p90)
