"""The Stripe-shaped money a successful idea task causes, drawn deterministically.

Sometimes a customer comes to checkout: a payment intent is created; a few seconds
later its card is charged (payment_intent.succeeded, a revenue entry and Stripe's fee),
declined (payment_intent.payment_failed with Stripe's code and decline code) or the
customer leaves (nothing more). A charge may later be refunded (hours to days after
it) or disputed (days to weeks; the dispute fee with it). Rates, amounts, reasons and
delays are profiles.py's.

Every item carries `delay_s`: simulated seconds after the task succeeded. The seed
writes each at that moment (dropping what falls after its window: not happened yet);
the simulator writes the items due at once with the task's outcome and keeps the rest
in a pending list until they are due (sim/pending.py) — a webhook stream delivers
events when they happen, never ahead of time.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Any

from fsar_tui.domain.money import stripe_fee_minor
from fsar_tui.sim import profiles
from fsar_tui.sim.profiles import external_id

API_VERSION = "2024-06-20"
DECLINE_MESSAGES = {
    "card_declined": "Your card was declined.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
}


@dataclass(frozen=True)
class LedgerDraft:
    external_id: str
    kind: str
    amount_minor: int
    currency: str
    customer_id: str
    metadata: dict
    delay_s: float = 0.0


@dataclass(frozen=True)
class IntentDraft:
    """One payment_intent.* event; `intent` is its data.object."""

    event_id: str
    type: str
    intent: dict[str, Any]
    delay_s: float = 0.0

    def event(self, created: int) -> dict[str, Any]:
        """The Stripe event object, `created` (Unix seconds) being when it happened."""
        return {
            "id": self.event_id,
            "object": "event",
            "api_version": API_VERSION,
            "type": self.type,
            "created": created,
            "livemode": False,
            "data": {"object": self.intent},
        }


@dataclass(frozen=True)
class Payment:
    intents: list[IntentDraft] = field(default_factory=list)
    ledger: list[LedgerDraft] = field(default_factory=list)


def _delay(rng: random.Random, spec: tuple[float, float, float, float]) -> float:
    median, sigma, least, most = spec
    return min(most, max(least, median * math.exp(sigma * rng.gauss(0.0, 1.0))))


def draw_payment(seed: int, task_id: int, attempt: int, idea_id: str | None) -> Payment:
    """The money a successful attempt of an idea task causes (the simulator's draw)."""
    return draw_payment_with(random.Random(f"ledger:{seed}:{task_id}:{attempt}"), seed, task_id, attempt, idea_id)


def draw_payment_with(rng: random.Random, seed: int, task_id: int, attempt: int, idea_id: str | None) -> Payment:
    if idea_id is None or rng.random() > profiles.INTENT_RATE:
        return Payment()
    amount = rng.choice(profiles.CHARGE_AMOUNTS)
    customer = f"cus_{hashlib.sha1(f'{seed}:{rng.randint(1, profiles.CUSTOMERS)}'.encode()).hexdigest()[:14]}"
    card_country = profiles.weighted(rng, profiles.CARD_COUNTRIES)
    ip_country = card_country if rng.random() > 0.05 else "RU"
    outcome = profiles.weighted(rng, profiles.INTENT_OUTCOMES)
    decided = rng.uniform(*profiles.CHECKOUT_S)
    charge_id = f"ch_{external_id(seed, task_id, attempt, 'ch')[4:]}"
    intent: dict[str, Any] = {
        "id": f"pi_{external_id(seed, task_id, attempt, 'pi')[4:]}",
        "object": "payment_intent",
        "amount": amount,
        "currency": profiles.CURRENCY.lower(),
        "customer": customer,
        "status": "requires_payment_method",
        "metadata": {"idea_id": idea_id, "task_id": str(task_id)},
    }

    def event(what: str, status: str, delay: float, **extra: Any) -> IntentDraft:
        return IntentDraft(
            external_id(seed, task_id, attempt, what),
            f"payment_intent.{what}",
            {**intent, "status": status, **extra},
            delay,
        )

    intents = [event("created", "requires_payment_method", 0.0)]
    if outcome == "abandoned":
        return Payment(intents)
    if outcome == "payment_failed":
        code, decline = profiles.weighted(rng, profiles.DECLINES)
        error = {"type": "card_error", "code": code, "message": DECLINE_MESSAGES[code]}
        if decline is not None:
            error["decline_code"] = decline
        intents.append(event("payment_failed", "requires_payment_method", decided, last_payment_error=error))
        return Payment(intents)
    intents.append(event("succeeded", "succeeded", decided, latest_charge=charge_id, amount_received=amount))
    meta = {
        "idea_id": idea_id,
        "task_id": task_id,
        "charge": charge_id,
        "payment_intent": intent["id"],
        "card_country": card_country,
        "ip_country": ip_country,
    }

    def draft(what: str, kind: str, amount_minor: int, delay: float) -> LedgerDraft:
        return LedgerDraft(
            external_id(seed, task_id, attempt, what),
            kind,
            amount_minor,
            profiles.CURRENCY,
            customer,
            meta,
            delay,
        )

    ledger = [
        draft("charge", "revenue", amount, decided),
        draft("fee", "payment_fee", -stripe_fee_minor(amount), decided),
    ]
    roll = rng.random()
    if roll < profiles.REFUND_RATE:
        ledger.append(draft("refund", "refund", -amount, decided + _delay(rng, profiles.REFUND_DELAY_S)))
    elif roll < profiles.REFUND_RATE + profiles.DISPUTE_RATE:
        later = decided + _delay(rng, profiles.DISPUTE_DELAY_S)
        ledger.append(draft("dispute", "dispute", -amount, later))
        ledger.append(draft("dispute_fee", "dispute_fee", -profiles.DISPUTE_FEE_MINOR, later))
    return Payment(intents, ledger)
