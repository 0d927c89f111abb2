"""`make bench`: every benchmark, printed as tables of ratios against the naive approach.

Uses FSAR_BENCH_DSN or FSAR_TEST_DSN (else a throwaway PostgreSQL), FSAR_TEST_MQTT_URL
(else a throwaway broker). BENCH_SCALE=small runs quicker, smaller versions;
BENCH_ONLY=seed, executor, throughput, panels, queue, live, profile, roi, audit, webhook,
redaction or soak (comma-separated) runs some groups (redaction needs no database: it
runs first, without one; soak — an hour, BENCH_SOAK_S — runs only when named);
BENCH_STEP_S / BENCH_SUSTAIN_S (throughput), BENCH_PANELS / BENCH_PANELS_S (panels)
size the issue-18 groups (README: Benchmarks);
BENCH_QUEUE_DSN names an already seeded database (10 M tasks) for the queue and
profile, roi and audit groups to measure as it is.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

from bench import (
    audit_bench,
    executor_bench,
    live_bench,
    panels_bench,
    profile_bench,
    queue_bench,
    redaction_bench,
    roi_bench,
    seed_bench,
    soak_bench,
    throughput_bench,
    webhook_bench,
)
from bench.common import server

DEFAULT = "seed,executor,throughput,panels,queue,live,profile,roi,audit,webhook,redaction,metrics"


def main() -> None:
    which = os.environ.get("BENCH_ONLY", DEFAULT).split(",")
    if "redaction" in which:
        redaction_bench.run()
    if not set(which) - {"redaction"}:
        return
    with ExitStack() as stack:
        server_dsn = stack.enter_context(server())
        mqtt_url = os.environ.get("FSAR_TEST_MQTT_URL")
        if not mqtt_url:
            from support.broker import Broker

            broker = Broker()
            stack.callback(broker.stop)
            mqtt_url = broker.url
        if "seed" in which:
            seed_bench.run(server_dsn)
        if "executor" in which:
            executor_bench.run(server_dsn, mqtt_url)
        if "throughput" in which:
            throughput_bench.run(server_dsn)
        if "panels" in which:
            panels_bench.run(server_dsn, mqtt_url)
        if "queue" in which:
            queue_bench.run(server_dsn)
        if "live" in which:
            live_bench.run(server_dsn)
        if "profile" in which:
            profile_bench.run(server_dsn)
        if "roi" in which:
            roi_bench.run(server_dsn)
        if "audit" in which:
            audit_bench.run(server_dsn)
        if "webhook" in which:
            webhook_bench.run(server_dsn)
        if "metrics" in which:
            from bench import metrics_bench

            metrics_bench.run(server_dsn)
        if "soak" in which:
            soak_bench.run(server_dsn)


main()
