"""Stripe webhook receiver: `fsar-tui webhook --host H --port P --path /stripe/webhook`.

Owns HTTP only; every event goes through the same `StripeIngestor.ingest` as
`ingest-stripe` (fsar_tui/stripe_ingest.py), with Stripe's default 300 s signature
tolerance instead of none.

- stdlib ThreadingHTTPServer, one thread per request, and a bounded pool of database
  connections (psycopg_pool, `--pool-size`, default 8): a burst of deliveries (Stripe
  retries in bulk after an outage: hundreds at once) queues for a connection instead of
  opening one per request, which took every connection slot of the server (799 of 2,000
  answered 503, and the server's other clients got "too many clients" meanwhile). A
  request waits up to `--pool-timeout` (default 5 s) for a free connection, then is
  answered 503 with Retry-After (Stripe retries later). The pool's connections are made
  by db/connect.py like every other (application_name `fsar-tui webhook`, autocommit,
  the 30 s statement timeout, the pooler's settings per transaction behind PgBouncer).
  The signature is checked before any database work.
- POST PATH only: other paths 404, other methods on PATH 405; no Content-Length 411;
  a body over 1 MiB 413 (not read); a body that is not UTF-8 400.
- With FSAR_STRIPE_WEBHOOK_SECRET set, the Stripe-Signature header must verify, else
  400 `{"error": "bad Stripe signature: …"}` and nothing is stored. Without it events
  are accepted unsigned (a warning says so at start).
- 200 `{"result": "accepted" | "duplicate" | "skipped"}`; 400 `{"error": reason}` for a
  rejected event (the same reasons as the file ingestion); 503 with `Retry-After` when
  the database is unreachable or no pooled connection came free in time (Stripe
  retries later), 500 for any other failure.
- One line per request on stderr: client, method, path, status, result or reason,
  event id and type, milliseconds. Input is passed through strip_controls; neither
  the secret nor the signature header is ever logged.
- SIGINT / SIGTERM stop it: requests in flight finish, the pool closes, then exit 0.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from fsar_tui.config import (
    DEFAULT_WEBHOOK_POOL_SIZE,
    DEFAULT_WEBHOOK_POOL_TIMEOUT_S,
    MAX_WEBHOOK_POOL_SIZE,
    MAX_WEBHOOK_POOL_TIMEOUT_S,
)
from fsar_tui.domain.sanitize import first_line, strip_controls
from fsar_tui.domain.stripe_events import WEBHOOK_TOLERANCE, StripeRejection
from fsar_tui.errors import ConnectionFailed, FsarError
from fsar_tui.services.stripe_ingest import STATEMENT_TIMEOUT_MS, StripeIngestor, check_secret

MAX_BODY_BYTES = 1024 * 1024
READ_TIMEOUT_S = 30
APPLICATION_NAME = "fsar-tui webhook"  # how its connections show in pg_stat_activity
DEFAULT_POOL_SIZE = DEFAULT_WEBHOOK_POOL_SIZE  # --pool-size / webhook_pool_size
DEFAULT_POOL_TIMEOUT_S = DEFAULT_WEBHOOK_POOL_TIMEOUT_S  # --pool-timeout / webhook_pool_timeout_s
RETRY_AFTER_S = 5  # what a 503 asks the sender to wait (Stripe keeps its own schedule)


class PoolHealth:
    """What the pool's last connection attempt said: a request that timed out waiting is
    'database unavailable' (with the cause) while the server cannot be reached, 'busy'
    while it can."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failure: ConnectionFailed | None = None

    def heard(self, failure: ConnectionFailed | None) -> None:
        with self._lock:
            self._failure = failure

    @property
    def failure(self) -> ConnectionFailed | None:
        with self._lock:
            return self._failure


class WebhookServer(ThreadingHTTPServer):
    """An HTTP server that hands POST PATH bodies to a StripeIngestor."""

    daemon_threads = False
    block_on_close = True  # server_close() waits for requests in flight
    # socketserver's default listen backlog is 5: bursts of 100-400 concurrent deliveries
    # (Stripe retries in bulk after an outage) got connection resets the server never saw.
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        *,
        ingestor: StripeIngestor,
        path: str,
        log: TextIO | None = None,
        pool: ConnectionPool[Any] | None = None,
        health: PoolHealth | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.webhook_path = path
        self.log = log or sys.stderr
        self.pool = pool
        self.health = health or PoolHealth()
        self._log_lock = threading.Lock()
        super().__init__(address, WebhookHandler)

    def server_close(self) -> None:
        """Stop listening, wait for the requests in flight (block_on_close), close the pool."""
        try:
            super().server_close()
        finally:
            if self.pool is not None:
                self.pool.close()

    def log_line(self, text: str) -> None:
        with self._log_lock:
            print(strip_controls(f"fsar-tui webhook: {text}"), file=self.log, flush=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        self.log_line(f"{client_address[0]} connection error: {type(exc).__name__}: {first_line(str(exc))}")


def make_server(
    dsn: str,
    host: str,
    port: int,
    path: str,
    secret: str | None,
    *,
    log: TextIO | None = None,
    pool_size: int = DEFAULT_POOL_SIZE,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT_S,
    pooler_mode: str = "auto",
) -> WebhookServer:
    """A bound (not yet serving) receiver; port 0 picks a free port (see server_address).
    Its pool is open but needs no server yet: until the database answers, requests get 503.
    server_close() closes the pool."""
    from fsar_tui.db.connect import sync_pool

    if not 1 <= pool_size <= MAX_WEBHOOK_POOL_SIZE:
        raise ValueError(f"pool_size must be 1..{MAX_WEBHOOK_POOL_SIZE}, got {pool_size}")
    if not 0 < pool_timeout <= MAX_WEBHOOK_POOL_TIMEOUT_S:
        raise ValueError(f"pool_timeout must be in (0, {MAX_WEBHOOK_POOL_TIMEOUT_S:g}] seconds, got {pool_timeout}")
    # psycopg_pool logs every failed attempt as a warning: with no handler configured
    # Python would print them raw on stderr. The receiver says it in its own lines.
    logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
    health = PoolHealth()
    pool = sync_pool(
        dsn,
        statement_timeout_ms=STATEMENT_TIMEOUT_MS,
        min_size=1,
        max_size=pool_size,
        wait_timeout=pool_timeout,
        application_name=APPLICATION_NAME,
        pooler_mode=pooler_mode,
        name="fsar-tui webhook",
        on_connect=health.heard,
    )

    def connection() -> AbstractContextManager[psycopg.Connection]:
        return pool.connection()

    ingestor = StripeIngestor(connection, check_secret(secret), tolerance=WEBHOOK_TOLERANCE)
    server = WebhookServer((host, port), ingestor=ingestor, path=path, log=log, pool=pool, health=health)
    pool.open(wait=False)
    return server


class WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookServer
    server_version = "fsar-tui-webhook"
    sys_version = ""
    timeout = READ_TIMEOUT_S

    def do_POST(self) -> None:
        started = time.monotonic()
        if not self._on_path():
            return self._reply(404, {"error": "not found"}, started)
        body = self._read_body(started)
        if body is None:
            return
        status, reply, note = self._ingest(body)
        retry = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
        self._reply(status, reply, started, note, headers=retry)

    def do_GET(self) -> None:
        self._not_post()

    do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _not_post(self) -> None:
        started = time.monotonic()
        if not self._on_path():
            return self._reply(404, {"error": "not found"}, started)
        self._reply(405, {"error": "method not allowed: POST only"}, started, headers={"Allow": "POST"})

    def _on_path(self) -> bool:
        return urlsplit(self.path).path == self.server.webhook_path

    def _read_body(self, started: float) -> bytes | None:
        given = self.headers.get("Content-Length")
        if given is None:
            self._reply(411, {"error": "Content-Length required"}, started)
            return None
        if not given.strip().isdigit():
            self._reply(400, {"error": "invalid Content-Length"}, started)
            return None
        length = int(given)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._reply(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"}, started)
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            self._reply(400, {"error": "body shorter than Content-Length"}, started)
            return None
        return body

    def _ingest(self, body: bytes) -> tuple[int, dict[str, str], str]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return 400, {"error": "body is not valid UTF-8"}, "rejected: body is not valid UTF-8"
        try:
            done = self.server.ingestor.ingest(text, self.headers.get("Stripe-Signature"))
        except StripeRejection as exc:
            return 400, {"error": str(exc)}, f"rejected: {exc}"
        except (PoolTimeout, PoolClosed) as exc:  # before OperationalError: PoolTimeout is one
            failure = self.server.health.failure
            if failure is not None:
                return 503, {"error": "database unavailable"}, f"database unavailable: {first_line(failure.message)}"
            pool = self.server.pool
            size = f" (pool of {pool.max_size})" if pool is not None else ""
            return 503, {"error": "busy: try again later"}, f"busy: no database connection free{size}: {exc}"
        except (FsarError, psycopg.OperationalError) as exc:
            return 503, {"error": "database unavailable"}, f"database unavailable: {first_line(_message(exc))}"
        except psycopg.Error as exc:
            return 500, {"error": "database error"}, f"database error: {first_line(str(exc))}"
        except Exception as exc:  # a bug must still answer (Stripe retries) and log one line
            return 500, {"error": "internal error"}, f"internal error: {type(exc).__name__}: {first_line(str(exc))}"
        return 200, {"result": done.result}, f"{done.result} {done.event.id} {done.event.type}"

    def _reply(
        self,
        status: int,
        reply: dict[str, str],
        started: float,
        note: str = "",
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        elapsed = (time.monotonic() - started) * 1000
        # Logged before the reply goes out, so a client that has its answer finds the line.
        self.server.log_line(
            f"{self.client_address[0]} {self.command} {urlsplit(self.path).path} {status}"
            f"{' ' + note if note else ''} {elapsed:.0f}ms"
        )
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # _reply logs every request once, in our format

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log_line(f"{self.client_address[0]} {format % args}")


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, FsarError) else str(exc)
