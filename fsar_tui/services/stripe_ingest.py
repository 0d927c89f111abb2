"""Stripe ingestion service: one code path for exported files and webhook requests.

Owns the flow from raw bytes to stored rows, and `fsar-tui ingest-stripe FILE`.
The meaning of an event (validation, mapping to ledger rows) lives in
fsar_tui/domain/stripe_events.py; the SQL in fsar_tui/db/stripe.py.

- `StripeIngestor.ingest(payload, signature)` is the single entry point: verify the
  signature when a secret is set (before any database work; `verify_signature`, with
  Stripe's own code), parse and validate (`parse_event`: the domain's parser with
  pycountry's ISO 4217 codes), then
  store the event and its ledger rows in one transaction (`store_event`). The result
  is "accepted" (applied), "skipped" (stored, type not handled) or "duplicate" (the
  event id was already stored: nothing written). A bad event raises StripeRejection
  with a one-line reason; the database refusing a row (DataError, IntegrityError) is
  a rejection of that event too. Losing the connection is not: it propagates.
- Files are JSON lines, each an event or an envelope {"stripe_signature", "payload"};
  blank lines are ignored; a line longer than 4 MiB or not UTF-8 is rejected. Every
  event is its own transaction, so a rejected line never costs the others. Signatures
  in files are checked without a timestamp tolerance (exports are old).
- `run_ingest_command` prints each rejection to stderr as `fsar-tui: FILE:LINE: reason`
  (line numbers 1-based, input passed through strip_controls), then one summary line to
  stdout: `accepted 43, duplicate 0, rejected 0, skipped 1 (customer.created: 1)`.
  Exit 0, or 1 if any line was rejected; a missing file or an empty
  FSAR_STRIPE_WEBHOOK_SECRET is a usage error (2), an unreachable database a
  connection error (2). The secret is never printed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

import psycopg

from fsar_tui.db import stripe as stripe_db
from fsar_tui.domain import stripe_events
from fsar_tui.domain.sanitize import first_line, strip_controls
from fsar_tui.domain.stripe_events import StripeEvent, StripeRejection, split_line
from fsar_tui.domain.stripe_ledger import ChargeFacts, ledger_drafts
from fsar_tui.errors import UsageError

Result = Literal["accepted", "duplicate", "skipped"]
ConnectionSource = Callable[[], AbstractContextManager[psycopg.Connection]]

MAX_LINE_BYTES = 4 * 1024 * 1024
STATEMENT_TIMEOUT_MS = 30_000
SECRET_ENV = "FSAR_STRIPE_WEBHOOK_SECRET"


def is_iso_currency(code: str) -> bool:
    """An upper-cased three-letter code that ISO 4217 lists (pycountry's table)."""
    from pycountry import currencies

    return currencies.get(alpha_3=code) is not None


def parse_event(payload: str) -> StripeEvent:
    """Raw event JSON → a validated StripeEvent, currencies checked against ISO 4217."""
    return stripe_events.parse_event(payload, is_currency=is_iso_currency)


def verify_signature(payload: str, signature: str | None, secret: str, *, tolerance: int | None) -> None:
    """Stripe's own check of the Stripe-Signature header; a StripeRejection when it fails."""
    from stripe import SignatureVerificationError, WebhookSignature

    if not signature:
        raise StripeRejection(f"missing Stripe signature ({SECRET_ENV} is set: every event must be signed)")
    try:
        WebhookSignature.verify_header(payload, signature, secret, tolerance=tolerance)
    except SignatureVerificationError as exc:
        raise StripeRejection(f"bad Stripe signature: {first_line(exc.user_message or '')}") from None
    except (ValueError, TypeError, UnicodeError):
        raise StripeRejection("bad Stripe signature: malformed Stripe-Signature header or payload") from None


def decode_payload(payload: str, signature: str | None, secret: str | None, *, tolerance: int | None) -> StripeEvent:
    """Verify (when a secret is set) and parse one raw event body."""
    if secret is not None:
        verify_signature(payload, signature, secret, tolerance=tolerance)
    return parse_event(payload)


@dataclass(frozen=True)
class Ingested:
    result: Result
    event: StripeEvent


class StripeIngestor:
    """Verify → parse → store, for a file line or a webhook body alike."""

    def __init__(self, connection: ConnectionSource, secret: str | None, *, tolerance: int | None) -> None:
        self._connection = connection
        self._secret = secret
        self._tolerance = tolerance

    def ingest(self, payload: str, signature: str | None) -> Ingested:
        event = decode_payload(payload, signature, self._secret, tolerance=self._tolerance)
        with self._connection() as conn:
            return Ingested(store_event(conn, event), event)


def store_event(conn: psycopg.Connection, event: StripeEvent) -> Result:
    """The event and its ledger rows in one transaction (conn in autocommit mode)."""
    try:
        with conn.transaction():
            return _store(conn, event)
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        cause = first_line(str(exc), "unknown error")
        raise StripeRejection(f"the database refused event {event.id!r}: {cause}") from None


def _store(conn: psycopg.Connection, event: StripeEvent) -> Result:
    new = stripe_db.insert_event(
        conn,
        event_id=event.id,
        event_type=event.type,
        created=event.created,
        object_id=event.object_id,
        livemode=event.livemode,
        outcome=event.outcome,
        payload=event.payload,
    )
    if not new:
        return "duplicate"
    facts = ChargeFacts()
    if event.charge_id is not None:
        stripe_db.lock_charge(conn, event.charge_id)
        facts = stripe_db.charge_facts(conn, event.charge_id)
    for draft in ledger_drafts(event, facts):
        stripe_db.insert_ledger(conn, draft, stripe_db.existing_task_id(conn, draft.task_hint))
    return "skipped" if event.outcome == "skipped" else "accepted"


# ---------------------------------------------------------------- files


@dataclass
class IngestReport:
    accepted: int = 0
    duplicate: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def count(self, ingested: Ingested) -> None:
        if ingested.result == "skipped":
            self.skipped[ingested.event.type] += 1
        elif ingested.result == "duplicate":
            self.duplicate += 1
        else:
            self.accepted += 1

    def summary(self) -> str:
        line = (
            f"accepted {self.accepted}, duplicate {self.duplicate}, rejected {len(self.rejected)}, "
            f"skipped {sum(self.skipped.values())}"
        )
        if self.skipped:
            line += " (" + ", ".join(f"{t}: {n}" for t, n in sorted(self.skipped.items())) + ")"
        return strip_controls(line)


def read_lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """The stream's lines; None stands for a line longer than MAX_LINE_BYTES (skipped)."""
    while line := stream.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES + 1)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield line


def ingest_line(ingestor: StripeIngestor, raw: bytes | None) -> Ingested | None:
    """One file line: None for a blank line; StripeRejection for a bad one."""
    if raw is None:
        raise StripeRejection(f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # a BOM some exporters write
    except UnicodeDecodeError as exc:
        raise StripeRejection(f"not valid UTF-8 (byte {exc.start + 1})") from None
    if not text.strip():
        return None
    payload, signature = split_line(text)
    return ingestor.ingest(payload, signature)


def ingest_lines(
    ingestor: StripeIngestor, lines: Iterable[bytes | None], on_reject: Callable[[int, str], None] | None = None
) -> IngestReport:
    report = IngestReport()
    for number, raw in enumerate(lines, start=1):
        try:
            ingested = ingest_line(ingestor, raw)
        except StripeRejection as exc:
            report.rejected.append((number, str(exc)))
            if on_reject:
                on_reject(number, str(exc))
            continue
        if ingested is not None:
            report.count(ingested)
    return report


def check_secret(secret: str | None) -> str | None:
    if secret is not None and not secret.strip():
        raise UsageError(f"{SECRET_ENV} is set but empty: set the endpoint's signing secret (whsec_…) or unset it")
    return secret
