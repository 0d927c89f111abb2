"""Stripe, headless: `fsar-tui ingest-stripe FILE|-` (exported events, JSON lines) and
`fsar-tui webhook` (an HTTP receiver); both through services/stripe_ingest.py.

With FSAR_STRIPE_WEBHOOK_SECRET set every event must be signed (an envelope
{"stripe_signature": …, "payload": …} in a file). Idempotent by event id; each event
lands in its own transaction, so a rejected line (reported with its number and reason)
never stops the others. Exit 1 if any line was rejected.
"""

from __future__ import annotations

import argparse
import os
import sys
from argparse import Namespace
from contextlib import nullcontext
from typing import BinaryIO

from fsar_tui.commands.base import Context, Parser, add_command, bounded_int
from fsar_tui.config import (
    DEFAULT_WEBHOOK_POOL_SIZE,
    DEFAULT_WEBHOOK_POOL_TIMEOUT_S,
    MAX_WEBHOOK_POOL_SIZE,
    parse_pool_timeout,
)
from fsar_tui.domain.sanitize import MAX_HOST_CHARS, clip, strip_controls
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, UsageError


def seconds(text: str) -> float:
    """--pool-timeout: seconds, more than 0 and at most 300."""
    try:
        return parse_pool_timeout(text, "")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.message.removeprefix(": ")) from None


def register(sub, common: Parser) -> None:
    stripe_in = add_command(
        sub,
        common,
        "ingest-stripe",
        run_ingest_stripe,
        help="ingest exported Stripe events (JSON lines)",
        description='Each line a Stripe event, or an envelope {"stripe_signature": …, "payload": …} as '
        "received by a webhook. With FSAR_STRIPE_WEBHOOK_SECRET set, every line must be a signed "
        "envelope. Idempotent by event id; each event lands in its own transaction, so a rejected "
        "line (reported with its number and reason) never stops the others. Exit 1 if any line "
        "was rejected.",
    )
    stripe_in.add_argument("file", metavar="FILE", help="a .jsonl file, or - for standard input")
    hook = add_command(
        sub,
        common,
        "webhook",
        run_webhook,
        help="receive Stripe webhooks over HTTP",
        description="A small HTTP receiver for Stripe webhooks: POST PATH with the Stripe-Signature header, "
        "verified when FSAR_STRIPE_WEBHOOK_SECRET is set; the same ingestion as ingest-stripe.",
    )
    hook.add_argument("--port", type=int, default=8787, help="TCP port (default 8787)")
    hook.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    hook.add_argument("--path", default="/stripe/webhook", help="URL path (default /stripe/webhook)")
    hook.add_argument(
        "--pool-size",
        type=bounded_int(1, MAX_WEBHOOK_POOL_SIZE, "a number of connections"),
        metavar="N",
        help=f"database connections at most, shared by all requests (1..{MAX_WEBHOOK_POOL_SIZE}; "
        f"config webhook_pool_size, env FSAR_WEBHOOK_POOL_SIZE; default {DEFAULT_WEBHOOK_POOL_SIZE})",
    )
    hook.add_argument(
        "--pool-timeout",
        type=seconds,
        metavar="SECONDS",
        help="how long a request waits for a free connection before it is answered 503 with Retry-After "
        f"(config webhook_pool_timeout_s, env FSAR_WEBHOOK_POOL_TIMEOUT_S; default {DEFAULT_WEBHOOK_POOL_TIMEOUT_S:g})",
    )


def _secret() -> str | None:
    return os.environ.get("FSAR_STRIPE_WEBHOOK_SECRET")


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {strip_controls(path)}: {exc.strerror or exc}") from None


def run_ingest_stripe(args: Namespace, ctx: Context) -> int:
    """`fsar-tui ingest-stripe FILE`: exit 0, or 1 if any line was rejected."""
    from fsar_tui.db.connect import connect
    from fsar_tui.domain.stripe_events import FILE_TOLERANCE
    from fsar_tui.services.stripe_ingest import (
        STATEMENT_TIMEOUT_MS,
        StripeIngestor,
        check_secret,
        ingest_lines,
        read_lines,
    )

    stream = _open(args.file)
    try:
        secret = check_secret(_secret())
        shown = strip_controls(args.file)

        def reject(number: int, reason: str) -> None:
            print(strip_controls(f"fsar-tui: {shown}:{number}: {reason}"), file=sys.stderr, flush=True)

        with connect(ctx.dsn(), autocommit=True, statement_timeout_ms=STATEMENT_TIMEOUT_MS) as conn:
            ingestor = StripeIngestor(lambda: nullcontext(conn), secret, tolerance=FILE_TOLERANCE)
            report = ingest_lines(ingestor, read_lines(stream), on_reject=reject)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    print(report.summary())
    return EXIT_FAILED if report.rejected else EXIT_OK


def run_webhook(args: Namespace, ctx: Context) -> int:
    """Serve until SIGINT or SIGTERM, then return 0."""
    from fsar_tui.db.connect import connect
    from fsar_tui.services.stripe_ingest import check_secret
    from fsar_tui.services.until_signal import serve_until_signal
    from fsar_tui.services.webhook import make_server

    host, port, path, secret = args.host, args.port, args.path, _secret()
    if not 0 < port < 65536:
        raise UsageError(f"--port must be 1-65535, got {port}")
    if not path.startswith("/"):
        raise UsageError(f"--path must start with /, got {strip_controls(path)!r}")
    check_secret(secret)
    settings = ctx.settings
    pool_size = args.pool_size if args.pool_size is not None else settings.webhook_pool_size
    pool_timeout = args.pool_timeout if args.pool_timeout is not None else settings.webhook_pool_timeout_s
    dsn = ctx.dsn()
    # An unreachable database is a connection error now, not at the first event (and the
    # pooler, if any, is found once here for every pooled connection).
    connect(dsn, statement_timeout_ms=settings.statement_timeout_ms, pooler_mode=settings.pooler).close()
    try:
        server = make_server(
            dsn, host, port, path, secret, pool_size=pool_size, pool_timeout=pool_timeout, pooler_mode=settings.pooler
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on {clip(host, MAX_HOST_CHARS)}:{port}: {exc.strerror or exc}") from None
    bound_host, bound_port = server.server_address[:2]
    checked = "verified" if secret else "NOT verified (FSAR_STRIPE_WEBHOOK_SECRET is not set)"
    serve_until_signal(
        server,
        name="fsar-webhook",
        started=lambda: server.log_line(
            f"listening on http://{bound_host!s}:{bound_port}{path}; signatures {checked}; "
            f"at most {pool_size} database connection(s), a request waits {pool_timeout:g}s for one"
        ),
        cleanup=lambda: None,
    )
    server.log_line("stopped")
    return EXIT_OK
