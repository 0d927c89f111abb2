"""Stripe event builders and signing, shared by the Stripe ingestion, parser and webhook
tests (real object shapes, as Stripe's published fixtures have them)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from stripe import WebhookSignature

# A copy of ../shared/stripe/events.jsonl: 44 events from Stripe's published API fixtures.
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "stripe" / "events.jsonl"
SECRET = "whsec_test_5ecret_never_printed"
T0 = 1767350000  # 2026-01-02


def event(evt_id: str, event_type: str, obj: dict[str, Any], created: int = T0) -> dict[str, Any]:
    return {
        "id": evt_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "livemode": False,
        "api_version": "2024-06-20",
        "data": {"object": obj},
    }


def charge(
    evt_id: str,
    charge_id: str,
    amount: Any = 1200,
    currency: Any = "usd",
    *,
    created: int = T0,
    metadata: dict | None = None,
    customer: str | None = "cus_t",
    **extra: Any,
) -> dict[str, Any]:
    obj = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "metadata": {"idea_id": "idea_t"} if metadata is None else metadata,
        "balance_transaction": "txn_unexpanded",
        "payment_method_details": {"card": {"country": "US", "fingerprint": "fp_1"}, "type": "card"},
        **extra,
    }
    return event(evt_id, "charge.succeeded", obj, created)


def refund(
    evt_id: str,
    charge_id: str,
    amount_refunded: int,
    *,
    created: int = T0 + 100,
    metadata: dict | None = None,
    customer: str | None = None,
) -> dict[str, Any]:
    obj = {
        "id": charge_id,
        "object": "charge",
        "amount": 2000,
        "amount_refunded": amount_refunded,
        "currency": "usd",
        "customer": customer,
        "metadata": metadata or {},
    }
    return event(evt_id, "charge.refunded", obj, created)


def dispute(
    evt_id: str,
    event_type: str,
    charge_id: str,
    amount: int,
    *,
    status: str = "needs_response",
    fees: tuple[int, ...] = (),
    created: int = T0 + 200,
) -> dict[str, Any]:
    obj = {
        "id": f"dp_{charge_id}",
        "object": "dispute",
        "amount": amount,
        "currency": "usd",
        "charge": charge_id,
        "status": status,
        "balance_transactions": [{"id": f"txn_{i}", "fee": f} for i, f in enumerate(fees)],
    }
    return event(evt_id, event_type, obj, created)


def sign(payload: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header, computed by the stripe library's own signing code."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={WebhookSignature._compute_signature(f'{timestamp}.{payload}', secret)}"


def envelope(ev: dict[str, Any], secret: str = SECRET, timestamp: int | None = None) -> str:
    payload = json.dumps(ev)
    return json.dumps({"stripe_signature": sign(payload, secret, timestamp), "payload": payload})


def write_lines(path: Path, lines: list[str | dict]) -> Path:
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines))
    return path
