"""Stripe events, parsed and validated: what an event asks of the ledger, pure (no I/O).

Owns what an incoming Stripe event means for the ledger. `fsar_tui/services/stripe_ingest.py`
feeds it (file lines and webhook bodies alike, after checking their signatures with
Stripe's own code) and `fsar_tui/db/stripe.py` stores the result; nothing here touches
the database or the network, and nothing here imports a library: the ISO 4217 check
comes in as `parse_event(..., is_currency=...)` (the service passes pycountry's).

Input
- A file line is either a Stripe event object or an envelope
  `{"stripe_signature": "<Stripe-Signature header>", "payload": "<raw JSON body>"}`
  (`split_line`). A webhook request is the same pair: body + header.
- With a secret (FSAR_STRIPE_WEBHOOK_SECRET) every event must carry a signature that
  Stripe's own code (`stripe.WebhookSignature.verify_header`, in the service) accepts;
  files are checked without a timestamp tolerance (`FILE_TOLERANCE`: exports are old),
  the webhook with Stripe's 300 s (`WEBHOOK_TOLERANCE`). Without a secret, envelopes
  are unwrapped and not checked.

Validation (anything else is a `StripeRejection`, one line, never another exception)
- JSON must parse (no NaN/Infinity), be an object, have a non-empty string `id` and
  `type` and an integer `created` (Unix seconds; it becomes occurred_at); no string
  may hold a NUL or an unpaired surrogate, no number overflow to infinity
  (PostgreSQL cannot store them).
- For the handled types below: `data.object` must be an object, the currency an ISO
  4217 code (`is_currency`, given the upper-cased code), every amount used an integer of minor units as
  Stripe sends it (not a float, string or bool; not negative; present), fees likewise
  when given. Other types are not checked further.

Mapping to ledger rows: domain/stripe_ledger.py.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fsar_tui.domain.sanitize import first_line

MAX_MINOR = 2**53  # far above any real amount; sums stay well inside bigint
MAX_CREATED = 253402300799  # 9999-12-31T23:59:59Z
FILE_TOLERANCE: int | None = None  # exported events are old: signature checked, age not
WEBHOOK_TOLERANCE = 300  # Stripe's default

PAYMENT_INTENT_TYPES = frozenset(
    {"payment_intent.created", "payment_intent.succeeded", "payment_intent.payment_failed"}
)
Outcome = Literal["applied", "skipped"]
IsCurrency = Callable[[str], bool]  # an upper-cased three-letter code → is it ISO 4217?


class StripeRejection(ValueError):
    """An event (a line, a request) that is refused; `str(exc)` is the one-line reason."""


# ---------------------------------------------------------------- what an event asks for


@dataclass(frozen=True)
class ChargeSucceeded:
    charge_id: str
    amount: int
    currency: str
    idea_id: str | None
    customer_id: str | None
    task_hint: int | None
    card_country: str | None
    card_fingerprint: str | None
    ip_country: str | None
    fee: int | None
    balance_transaction_id: str | None


@dataclass(frozen=True)
class ChargeRefunded:
    charge_id: str
    amount_refunded: int
    currency: str
    idea_id: str | None
    customer_id: str | None
    task_hint: int | None


@dataclass(frozen=True)
class DisputeCreated:
    dispute_id: str | None
    charge_id: str
    amount: int
    currency: str
    fee: int


@dataclass(frozen=True)
class DisputeClosed:
    dispute_id: str | None
    charge_id: str
    amount: int
    currency: str
    won: bool


@dataclass(frozen=True)
class PaymentIntentSeen:
    """Stored only; the funnel trigger does the counting."""


Action = ChargeSucceeded | ChargeRefunded | DisputeCreated | DisputeClosed | PaymentIntentSeen


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    created: datetime
    livemode: bool
    object_id: str | None
    payload: dict[str, Any] = field(repr=False)
    action: Action | None  # None: a type we do not handle (stored as 'skipped')

    @property
    def outcome(self) -> Outcome:
        return "skipped" if self.action is None else "applied"

    @property
    def charge_id(self) -> str | None:
        """The charge whose ledger history this event needs (and must be serialised on)."""
        return getattr(self.action, "charge_id", None)


# ---------------------------------------------------------------- input: lines and payloads


def split_line(line: str) -> tuple[str, str | None]:
    """A file line → (raw event JSON, signature header or None)."""
    value = _loads(line, "")
    if not isinstance(value, dict):
        raise StripeRejection(f"expected a JSON object, got {_kind(value)}")
    if "payload" not in value and "stripe_signature" not in value:
        return line, None
    payload, signature = value.get("payload"), value.get("stripe_signature")
    if not isinstance(payload, str):
        raise StripeRejection("envelope: 'payload' must be the raw event JSON as a string")
    if signature is not None and not isinstance(signature, str):
        raise StripeRejection("envelope: 'stripe_signature' must be a string")
    return payload, signature or None


def parse_event(payload: str, *, is_currency: IsCurrency) -> StripeEvent:
    """Raw event JSON → a validated StripeEvent (its action says what it means).
    `is_currency` decides which three-letter codes are currencies."""
    event = _loads(payload, "payload ")
    if not isinstance(event, dict):
        raise StripeRejection(f"expected a Stripe event object, got {_kind(event)}")
    _check_storable(event)
    event_id = _required_text(event, "id", "event")
    event_type = _required_text(event, "type", "event")
    created = _created(event)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    object_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
    action = _action(event_type, obj, is_currency)
    return StripeEvent(event_id, event_type, created, event.get("livemode") is True, object_id, event, action)


# ---------------------------------------------------------------- validation helpers


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise StripeRejection(f"malformed JSON {what}({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError, TypeError) as exc:
        raise StripeRejection(f"malformed JSON {what}({first_line(str(exc), type(exc).__name__)})") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_storable(value: Any) -> None:
    """No NUL, unpaired surrogate or infinite number anywhere (jsonb and text refuse them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise StripeRejection("a number is too large for JSON storage (it overflows to infinity)")
        elif isinstance(item, str):
            if "\x00" in item:
                raise StripeRejection("a string holds a NUL character (\\u0000), which PostgreSQL cannot store")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise StripeRejection("a string holds an unpaired UTF-16 surrogate escape") from None


def _required_text(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise StripeRejection(f"{where} has no {key}" if value is None else f"{where}.{key} must be a non-empty string")
    return value


def _created(event: Mapping[str, Any]) -> datetime:
    value = event.get("created")
    if value is None:
        raise StripeRejection("event has no created")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CREATED:
        raise StripeRejection(f"event.created must be Unix seconds as an integer, got {_show(value)}")
    return datetime.fromtimestamp(value, tz=UTC)


def _amount(obj: Mapping[str, Any], key: str) -> int:
    if key not in obj or obj[key] is None:
        raise StripeRejection(f"data.object.{key} is missing")
    return _minor(obj[key], f"data.object.{key}")


def _minor(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StripeRejection(f"{where} must be an integer amount in minor units, got {_show(value)}")
    if not 0 <= value <= MAX_MINOR:
        raise StripeRejection(f"{where} out of range: {_show(value)}")
    return value


def _currency(obj: Mapping[str, Any], is_currency: IsCurrency) -> str:
    value = obj.get("currency")
    if value is None:
        raise StripeRejection("data.object.currency is missing")
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value) or not is_currency(value.upper()):
        raise StripeRejection(f"unknown currency {_show(value)} (not an ISO 4217 code)")
    return value.upper()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ref(value: Any) -> str | None:
    """A Stripe reference: an id string, or an expanded object's id."""
    if isinstance(value, dict):
        value = value.get("id")
    return _text(value)


def _task_hint(value: Any) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _show(value: Any) -> str:
    """Input shown in a reason: repr (escapes control characters), one line, short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


# ---------------------------------------------------------------- per-type actions


def _action(event_type: str, obj: Any, is_currency: IsCurrency) -> Action | None:
    builder = _BUILDERS.get(event_type)
    if builder is None:
        return None
    if not isinstance(obj, dict):
        raise StripeRejection(f"{event_type}: data.object is missing or not an object")
    return builder(obj, is_currency)


def _charge_succeeded(obj: dict[str, Any], is_currency: IsCurrency) -> ChargeSucceeded:
    metadata = _dict(obj.get("metadata"))
    card = _dict(_dict(obj.get("payment_method_details")).get("card"))
    txn = obj.get("balance_transaction")
    fee = None
    if isinstance(txn, dict) and txn.get("fee") is not None:
        fee = _minor(txn["fee"], "data.object.balance_transaction.fee")
    return ChargeSucceeded(
        charge_id=_required_text(obj, "id", "data.object"),
        amount=_amount(obj, "amount"),
        currency=_currency(obj, is_currency),
        idea_id=_text(metadata.get("idea_id")),
        customer_id=_ref(obj.get("customer")),
        task_hint=_task_hint(metadata.get("task_id")),
        card_country=_text(card.get("country")),
        card_fingerprint=_text(card.get("fingerprint")),
        ip_country=_text(metadata.get("ip_country")),
        fee=fee,
        balance_transaction_id=_ref(txn),
    )


def _charge_refunded(obj: dict[str, Any], is_currency: IsCurrency) -> ChargeRefunded:
    metadata = _dict(obj.get("metadata"))
    return ChargeRefunded(
        charge_id=_required_text(obj, "id", "data.object"),
        amount_refunded=_amount(obj, "amount_refunded"),
        currency=_currency(obj, is_currency),
        idea_id=_text(metadata.get("idea_id")),
        customer_id=_ref(obj.get("customer")),
        task_hint=_task_hint(metadata.get("task_id")),
    )


def _dispute_charge(obj: dict[str, Any]) -> str:
    charge = _ref(obj.get("charge"))
    if charge is None:
        raise StripeRejection("data.object.charge is missing (a dispute names its charge)")
    return charge


def _dispute_fee(obj: dict[str, Any]) -> int:
    txns = obj.get("balance_transactions")
    if not isinstance(txns, list):
        return 0
    fees = [t["fee"] for t in txns if isinstance(t, dict) and t.get("fee") is not None]
    return sum(_minor(fee, "data.object.balance_transactions[].fee") for fee in fees)


def _dispute_created(obj: dict[str, Any], is_currency: IsCurrency) -> DisputeCreated:
    return DisputeCreated(
        dispute_id=_text(obj.get("id")),
        charge_id=_dispute_charge(obj),
        amount=_amount(obj, "amount"),
        currency=_currency(obj, is_currency),
        fee=_dispute_fee(obj),
    )


def _dispute_closed(obj: dict[str, Any], is_currency: IsCurrency) -> DisputeClosed:
    return DisputeClosed(
        dispute_id=_text(obj.get("id")),
        charge_id=_dispute_charge(obj),
        amount=_amount(obj, "amount"),
        currency=_currency(obj, is_currency),
        won=obj.get("status") == "won",
    )


def _payment_intent(obj: dict[str, Any], is_currency: IsCurrency) -> PaymentIntentSeen:
    _amount(obj, "amount")
    _currency(obj, is_currency)
    return PaymentIntentSeen()


_BUILDERS: dict[str, Callable[[dict[str, Any], IsCurrency], Action]] = {
    "charge.succeeded": _charge_succeeded,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
    **dict.fromkeys(PAYMENT_INTENT_TYPES, _payment_intent),
}
