"""The Stripe webhook receiver under a burst (issue 15: 2,000 deliveries at 400
concurrent, as Stripe sends after an outage): every request must get an HTTP answer —
zero connection resets — on a real PostgreSQL.

Measured against the naive server: the same handler with socketserver's default listen
backlog of 5 (what the receiver had before), in the same run. Each request is a new
connection (Stripe does not keep connections alive across deliveries) carrying a
distinct unsigned event that the ingestion records as skipped.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bench.common import SMALL, fresh_database, print_table

REQUESTS = 400 if SMALL else 2_000
CONCURRENT = 100 if SMALL else 400


def _deliver(host: str, port: int, path: str) -> str:
    event = {"id": f"evt_bench_{uuid.uuid4().hex}", "type": "customer.created", "created": int(time.time()),
             "data": {"object": {"id": "cus_bench"}}}  # fmt: skip
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", path, body=json.dumps(event), headers={"Content-Type": "application/json"})
        status = conn.getresponse().status
        return f"http {status}"
    except ConnectionResetError:
        return "reset"
    except (http.client.RemoteDisconnected, BrokenPipeError):
        return "reset"
    except OSError as exc:
        return f"error {type(exc).__name__}"
    finally:
        conn.close()


def _burst(dsn: str, backlog: int | None) -> tuple[Counter[str], float]:
    from fsar_tui.services.webhook import WebhookServer, make_server

    if backlog is not None:
        WebhookServer.request_queue_size, saved = backlog, WebhookServer.request_queue_size
    try:
        log = open("/dev/null", "w")  # closed below, after the server
        server = make_server(dsn, "127.0.0.1", 0, "/stripe", None, log=log)
    finally:
        if backlog is not None:
            WebhookServer.request_queue_size = saved
    host, port = server.server_address[0], server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
            outcomes = Counter(pool.map(lambda _: _deliver(str(host), int(port), "/stripe"), range(REQUESTS)))
    finally:
        elapsed = time.monotonic() - started
        server.shutdown()
        server.server_close()
        log.close()
    return outcomes, elapsed


def run(server_dsn: str) -> None:
    rows = []
    with fresh_database(server_dsn) as dsn:
        for label, backlog in (("naive: listen backlog 5", 5), ("fsar-tui webhook (backlog 1024)", None)):
            outcomes, elapsed = _burst(dsn, backlog)
            resets = outcomes.get("reset", 0)
            answered = sum(n for what, n in outcomes.items() if what.startswith("http"))
            errors = sum(n for what, n in outcomes.items() if what.startswith("error"))
            rows.append([label, f"{REQUESTS:,}", CONCURRENT, answered, resets, errors, f"{elapsed:.1f}s"])
    print_table(
        f"webhook burst: {REQUESTS:,} deliveries, {CONCURRENT} at a time (goal: zero resets)",
        ["server", "requests", "concurrent", "answered", "resets", "other errors", "time"],
        rows,
    )
