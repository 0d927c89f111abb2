"""The Stripe event parser (domain/stripe_events.py) and the ledger mapping, pure:
property-based — no input makes them fail other than with a StripeRejection — and the
fields the ledger needs read from a real event."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsar_tui.domain.stripe_events import StripeRejection, split_line
from fsar_tui.domain.stripe_ledger import ChargeFacts, ledger_drafts
from fsar_tui.services.stripe_ingest import decode_payload, parse_event
from support.stripe_events import SECRET, charge, event, sign

# ---------------------------------------------------------------- the pure parser, property-based

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HANDLED = [
    "charge.succeeded",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
    "payment_intent.created",
    "payment_intent.payment_failed",
    "customer.created",
]
FIELDS = [
    "id",
    "amount",
    "amount_refunded",
    "currency",
    "customer",
    "metadata",
    "charge",
    "status",
    "balance_transaction",
    "balance_transactions",
    "payment_method_details",
]
field_values = (
    json_values
    | st.sampled_from(["usd", "EUR", "xyz", "12", "", "ch_1", "won"])
    | st.fixed_dictionaries({"fee": json_values, "id": json_values})
    | st.lists(st.fixed_dictionaries({"fee": json_values}), max_size=3)
)
events = st.fixed_dictionaries(
    {
        "id": st.text(max_size=6) | json_values,
        "type": st.sampled_from(HANDLED) | json_values,
        "created": st.integers(min_value=-10, max_value=2**40) | json_values,
        "data": st.fixed_dictionaries({"object": st.dictionaries(st.sampled_from(FIELDS), field_values) | json_values}),
    }
)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_line(text: str, secret: str | None) -> None:
    try:
        payload, signature = split_line(text)
        ev = decode_payload(payload, signature, secret, tolerance=None)
    except StripeRejection as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for facts in (ChargeFacts(), ChargeFacts("i", "c", 7, 10**6)):
        for d in ledger_drafts(ev, facts):
            positive = d.kind in ("revenue", "dispute_won")
            assert (d.amount_minor > 0) if positive else (d.amount_minor < 0)
            assert len(d.currency) == 3 and d.currency.isupper()


@PROPERTY
@given(st.text(max_size=60), st.sampled_from([None, SECRET]))
def test_arbitrary_text_only_ever_raises_the_rejection(text, secret):
    _decode_line(text, secret)


@PROPERTY
@given(json_values | events, st.sampled_from([None, SECRET]))
def test_arbitrary_json_only_ever_raises_the_rejection(value, secret):
    text = json.dumps(value)
    _decode_line(text, secret)
    # The same value as the payload of an envelope, signed right, signed wrong, or not at all.
    for sig in (sign(text), sign(text, "whsec_other"), "t=1,v1=é", None):
        _decode_line(json.dumps({"stripe_signature": sig, "payload": text}), secret)


def test_the_parser_reads_what_the_ledger_needs():
    ev = parse_event(json.dumps(charge("evt_p", "ch_p", 1234, "eur", metadata={"idea_id": "i", "task_id": "12"})))
    assert (ev.id, ev.type, ev.object_id, ev.outcome, ev.charge_id) == (
        "evt_p",
        "charge.succeeded",
        "ch_p",
        "applied",
        "ch_p",
    )
    [rev] = ledger_drafts(ev)
    assert (rev.kind, rev.amount_minor, rev.currency, rev.idea_id, rev.task_hint) == ("revenue", 1234, "EUR", "i", 12)
    assert parse_event(json.dumps(event("evt_q", "customer.created", {"id": "cus_1"}))).outcome == "skipped"
