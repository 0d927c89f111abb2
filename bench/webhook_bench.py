"""The Stripe webhook receiver under a burst (issue 15: 2,000 deliveries at 400
concurrent, as Stripe sends after an outage), on a real PostgreSQL: every request must
get an HTTP answer — zero connection resets — and the receiver must keep to its pool of
database connections (default 8), so the server's other clients keep theirs.

Rows, in the same run:
- naive: socketserver's default listen backlog of 5 (what the receiver had first) — the
  resets;
- naive: one database connection per request (what it had until the pool) — only with
  BENCH_WEBHOOK_PER_REQUEST=1, because it takes every connection slot of the server
  during the burst (the attack: 799 of 2,000 answered 503, other clients "too many
  clients"): run it on a server nobody else is using (without FSAR_BENCH_DSN /
  FSAR_TEST_DSN the bench starts a throwaway one);
- fsar-tui webhook: backlog 1024, a pool of 8, requests wait up to 60 s for a connection
  (the default wait is 5 s; here the point is that nothing is refused).
Each request is a new connection (Stripe does not keep connections alive across
deliveries) carrying a distinct unsigned event that the ingestion records as skipped.
"most backends" is the most server connections of the database at once, sampled every
few ms during the burst.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg

from bench.common import SMALL, fresh_database, print_table

REQUESTS = 400 if SMALL else 2_000
CONCURRENT = 100 if SMALL else 400
PER_REQUEST = os.environ.get("BENCH_WEBHOOK_PER_REQUEST") == "1"


def _deliver(host: str, port: int, path: str) -> str:
    event = {"id": f"evt_bench_{uuid.uuid4().hex}", "type": "customer.created", "created": int(time.time()),
             "data": {"object": {"id": "cus_bench"}}}  # fmt: skip
    conn = http.client.HTTPConnection(host, port, timeout=120)
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


class _Backends:
    """The most backends connected to the database at once (the sampler's own excluded)."""

    def __init__(self, dsn: str) -> None:
        self.dsn, self.most = dsn, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).fetchone()
                self.most = max(self.most, row[0] if row else 0)
                time.sleep(0.005)

    def __enter__(self) -> _Backends:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _per_request_server(dsn: str, log):
    """The receiver as it was: a new connection for every request."""
    from fsar_tui.db.connect import connect
    from fsar_tui.domain.stripe_events import WEBHOOK_TOLERANCE
    from fsar_tui.services.stripe_ingest import STATEMENT_TIMEOUT_MS, StripeIngestor
    from fsar_tui.services.webhook import WebhookServer

    ingestor = StripeIngestor(
        lambda: connect(dsn, autocommit=True, statement_timeout_ms=STATEMENT_TIMEOUT_MS),
        None,
        tolerance=WEBHOOK_TOLERANCE,
    )
    return WebhookServer(("127.0.0.1", 0), ingestor=ingestor, path="/stripe", log=log)


def _burst(dsn: str, kind: str) -> tuple[Counter[str], float, int]:
    from fsar_tui.services.webhook import WebhookServer, make_server

    log = open(os.devnull, "w")  # closed below, after the server
    if kind == "per-request":
        server = _per_request_server(dsn, log)
    else:
        saved = WebhookServer.request_queue_size
        if kind == "backlog 5":
            WebhookServer.request_queue_size = 5
        try:
            server = make_server(dsn, "127.0.0.1", 0, "/stripe", None, log=log, pool_size=8, pool_timeout=60)
        finally:
            WebhookServer.request_queue_size = saved
    host, port = server.server_address[0], server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    if server.pool is not None:
        server.pool.wait(timeout=30)  # its first connection is up, as after `fsar-tui webhook` starts
    started = time.monotonic()
    try:
        with _Backends(dsn) as backends, ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
            outcomes = Counter(pool.map(lambda _: _deliver(str(host), int(port), "/stripe"), range(REQUESTS)))
    finally:
        elapsed = time.monotonic() - started
        server.shutdown()
        server.server_close()
        log.close()
    return outcomes, elapsed, backends.most


def run(server_dsn: str) -> None:
    rows = []
    kinds = [("naive: listen backlog 5 (pool of 8)", "backlog 5")]
    if PER_REQUEST:
        kinds.append(("naive: a connection per request (backlog 1024)", "per-request"))
    kinds.append(("fsar-tui webhook (backlog 1024, pool of 8)", "pooled"))
    with fresh_database(server_dsn) as dsn:
        for label, kind in kinds:
            outcomes, elapsed, most = _burst(dsn, kind)
            resets = outcomes.get("reset", 0)
            ok = outcomes.get("http 200", 0)
            busy = outcomes.get("http 503", 0)
            other = sum(n for what, n in outcomes.items() if what.startswith("http")) - ok - busy
            errors = sum(n for what, n in outcomes.items() if what.startswith("error"))
            rows.append([label, f"{REQUESTS:,}", CONCURRENT, ok, busy, other, resets, errors, most, f"{elapsed:.1f}s"])
    print_table(
        f"webhook burst: {REQUESTS:,} deliveries, {CONCURRENT} at a time (goal: zero resets, every one 200, "
        "at most 8 backends)",
        [
            "server",
            "requests",
            "concurrent",
            "200",
            "503",
            "other http",
            "resets",
            "other errors",
            "most backends",
            "time",
        ],
        rows,
    )
