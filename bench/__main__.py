"""`make bench`: every benchmark, printed as tables of ratios against the naive approach.

Uses FSAR_BENCH_DSN or FSAR_TEST_DSN (else a throwaway PostgreSQL), FSAR_TEST_MQTT_URL
(else a throwaway broker). BENCH_SCALE=small runs quicker, smaller versions;
BENCH_ONLY=executor, queue, live, profile, roi, audit, webhook or redaction (comma-separated)
runs some groups (redaction needs no database: it runs first, without one);
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
    profile_bench,
    queue_bench,
    redaction_bench,
    roi_bench,
    webhook_bench,
)
from bench.common import server


def main() -> None:
    which = os.environ.get("BENCH_ONLY", "executor,queue,live,profile,roi,audit,webhook,redaction").split(",")
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
        which = os.environ.get("BENCH_ONLY", "executor,queue,live,profile,roi,audit,webhook").split(",")
        if "executor" in which:
            executor_bench.run(server_dsn, mqtt_url)
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


main()
