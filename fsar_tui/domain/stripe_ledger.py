"""Stripe events → ledger drafts: the rows an event adds, given what the ledger already
holds for its charge. Pure (no I/O); domain/stripe_events.py parses and validates the
event, services/stripe_ingest.py stores the drafts through db/stripe.py.

Mapping (external_id = event id unless said; all amounts signed as the ledger wants)
- charge.succeeded → 'revenue' +amount; idea_id = metadata.idea_id, customer_id =
  object.customer, task hint = metadata.task_id when it is an integer (the store keeps
  it only if that task exists); metadata {charge, event, card_country,
  card_fingerprint, ip_country} (card_* from payment_method_details.card, ip_country
  from object.metadata; a key whose value is absent is left out). When
  balance_transaction is an expanded object with a `fee` > 0: 'payment_fee' −fee,
  external_id "<event id>:fee". A fee is never estimated.
- charge.refunded → 'refund' −(amount_refunded − refunds already recorded for the
  charge) when positive. amount_refunded is cumulative, so refund events may arrive
  in any order or twice and the total stays exact. idea/customer/task from the
  charge's metadata, else from the charge's revenue entry.
- charge.dispute.created → 'dispute' −amount for object.charge (idea/customer/task from
  the charge's revenue entry when known) and, when balance_transactions[] carry fees
  summing to > 0, 'dispute_fee' −sum, external_id "<event id>:fee".
- charge.dispute.closed → 'dispute_won' +amount if status == 'won'; otherwise nothing.
- payment_intent.created / .succeeded / .payment_failed → no ledger entry (a trigger
  counts them into payment_funnel_daily).
All of the above are outcome 'applied'; any other type is stored as 'skipped'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fsar_tui.domain.stripe_events import (
    ChargeRefunded,
    ChargeSucceeded,
    DisputeClosed,
    DisputeCreated,
    StripeEvent,
)


@dataclass(frozen=True)
class ChargeFacts:
    """What the ledger already holds for a charge (from its revenue and refund entries)."""

    idea_id: str | None = None
    customer_id: str | None = None
    task_id: int | None = None
    refunded_minor: int = 0  # refunds recorded so far, as a positive number


@dataclass(frozen=True)
class LedgerDraft:
    kind: str
    amount_minor: int
    currency: str
    external_id: str
    occurred_at: datetime
    idea_id: str | None
    customer_id: str | None
    task_hint: int | None  # kept only if such a task exists
    metadata: dict[str, Any]


def ledger_drafts(event: StripeEvent, facts: ChargeFacts = ChargeFacts()) -> tuple[LedgerDraft, ...]:
    """The ledger rows an event adds, given what the ledger holds for its charge. Total."""
    action = event.action
    if isinstance(action, ChargeSucceeded):
        return _revenue_drafts(event, action)
    if isinstance(action, ChargeRefunded):
        return _refund_drafts(event, action, facts)
    if isinstance(action, DisputeCreated):
        return _dispute_drafts(event, action, facts)
    if isinstance(action, DisputeClosed) and action.won:
        return (
            _draft(event, facts, "dispute_won", action.amount, action.currency, event.id, _dispute_meta(event, action)),
        )
    return ()


def _draft(
    event: StripeEvent,
    facts: ChargeFacts,
    kind: str,
    amount: int,
    currency: str,
    external_id: str,
    metadata: dict[str, Any],
    *,
    idea_id: str | None = None,
    customer_id: str | None = None,
    task_hint: int | None = None,
) -> LedgerDraft:
    return LedgerDraft(
        kind=kind,
        amount_minor=amount,
        currency=currency,
        external_id=external_id,
        occurred_at=event.created,
        idea_id=idea_id or facts.idea_id,
        customer_id=customer_id or facts.customer_id,
        task_hint=task_hint or facts.task_id,
        metadata=metadata,
    )


def _revenue_drafts(event: StripeEvent, c: ChargeSucceeded) -> tuple[LedgerDraft, ...]:
    meta = {
        "charge": c.charge_id,
        "event": event.id,
        "card_country": c.card_country,
        "card_fingerprint": c.card_fingerprint,
        "ip_country": c.ip_country,
    }
    who = ChargeFacts(idea_id=c.idea_id, customer_id=c.customer_id, task_id=c.task_hint)
    drafts = [_draft(event, who, "revenue", c.amount, c.currency, event.id, _present(meta))]
    if c.fee:
        fee_meta = {"charge": c.charge_id, "event": event.id, "balance_transaction": c.balance_transaction_id}
        drafts.append(_draft(event, who, "payment_fee", -c.fee, c.currency, f"{event.id}:fee", _present(fee_meta)))
    return tuple(drafts)


def _refund_drafts(event: StripeEvent, r: ChargeRefunded, facts: ChargeFacts) -> tuple[LedgerDraft, ...]:
    new = r.amount_refunded - facts.refunded_minor
    if new <= 0:
        return ()
    meta = {"charge": r.charge_id, "event": event.id, "amount_refunded": r.amount_refunded}
    return (
        _draft(
            event,
            facts,
            "refund",
            -new,
            r.currency,
            event.id,
            meta,
            idea_id=r.idea_id,
            customer_id=r.customer_id,
            task_hint=r.task_hint,
        ),
    )


def _dispute_drafts(event: StripeEvent, d: DisputeCreated, facts: ChargeFacts) -> tuple[LedgerDraft, ...]:
    meta = _dispute_meta(event, d)
    drafts = [_draft(event, facts, "dispute", -d.amount, d.currency, event.id, meta)]
    if d.fee:
        drafts.append(_draft(event, facts, "dispute_fee", -d.fee, d.currency, f"{event.id}:fee", meta))
    return tuple(drafts)


def _dispute_meta(event: StripeEvent, d: DisputeCreated | DisputeClosed) -> dict[str, Any]:
    return _present({"charge": d.charge_id, "event": event.id, "dispute": d.dispute_id})


def _present(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if v is not None}
