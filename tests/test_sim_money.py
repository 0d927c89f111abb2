"""Money that looks like a business (issue 17 point 5): the seed and the simulator.

- Draws (sim/payments.py): payment_intent.* events Stripe's own parser accepts, failure
  reasons as Stripe gives them, a charge when the intent succeeds, refunds hours to days
  and disputes days to weeks after it; deterministic per (seed, task, attempt).
- The pending list (sim/pending.py): items come out in due order, never early.
- A 30-day seed: ROI in the tens to low hundreds of percent, the payment funnel filled
  (with decline reasons), refunds and disputes after their charges, nothing after now.
- The simulator: intents and charges land with (or seconds after) the task's success;
  refunds only when due — never at the charge's instant, dropped if the run ends first.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.domain.stripe_events import PaymentIntentSeen, parse_event
from fsar_tui.sim import payments, profiles
from fsar_tui.sim.pending import PendingMoney
from support.sql import q

REASONS = {decline or code for code, decline in profiles.DECLINES}
CHARGE_OF = "JOIN ledger_entries c ON c.kind = 'revenue' AND c.metadata ->> 'charge' = l.metadata ->> 'charge'"


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 10**9), st.integers(1, 3))
def test_a_payment_is_stripe_shaped_and_its_refund_or_dispute_comes_later(seed, task_id, attempt):
    rng = random.Random(f"{seed}:{task_id}")
    money = payments.draw_payment_with(rng, seed, task_id, attempt, "idea_007")
    again = payments.draw_payment_with(random.Random(f"{seed}:{task_id}"), seed, task_id, attempt, "idea_007")
    assert money == again
    if not money.intents:
        assert money.ledger == []
        return
    created, *outcome = money.intents
    assert created.type == "payment_intent.created" and created.delay_s == 0
    for i in money.intents:
        event = parse_event(json.dumps(i.event(1_790_000_000)), is_currency=lambda c: c == "USD")
        assert isinstance(event.action, PaymentIntentSeen) and event.object_id == created.intent["id"]
    kinds = {d.kind: d for d in money.ledger}
    if not outcome:  # abandoned at checkout
        assert kinds == {}
        return
    (decided,) = outcome
    lo, hi = profiles.CHECKOUT_S
    assert lo <= decided.delay_s <= hi
    if decided.type == "payment_intent.payment_failed":
        error = decided.intent["last_payment_error"]
        assert (error.get("decline_code") or error["code"]) in REASONS and kinds == {}
        return
    assert decided.type == "payment_intent.succeeded"
    charge = kinds["revenue"]
    assert charge.delay_s == decided.delay_s == kinds["payment_fee"].delay_s
    assert decided.intent["latest_charge"] == charge.metadata["charge"]
    assert charge.amount_minor in profiles.CHARGE_AMOUNTS and kinds["payment_fee"].amount_minor < 0
    if "refund" in kinds:
        assert kinds["refund"].delay_s >= charge.delay_s + profiles.REFUND_DELAY_S[2]
    if "dispute" in kinds:
        assert kinds["dispute"].delay_s >= charge.delay_s + profiles.DISPUTE_DELAY_S[2]
        assert kinds["dispute_fee"].delay_s == kinds["dispute"].delay_s


@given(st.lists(st.tuples(st.floats(0, 100), st.integers()), max_size=40), st.floats(0, 120))
def test_pending_money_comes_out_in_due_order_and_never_early(items, now_at):
    clock = [0.0]
    pending = PendingMoney(clock=lambda: clock[0])
    for delay, item in items:
        pending.add(delay, item)
    clock[0] = now_at
    out = pending.pop_due()
    assert [due for due, _ in out] == sorted(due for due, _ in out)
    assert all(due <= now_at for due, _ in out)
    assert len(out) == sum(1 for delay, _ in items if delay <= now_at)
    rest = pending.next_due_in()
    assert (rest is None) == (len(out) == len(items)) and (rest is None or rest > 0)
    pending.put_back(out)  # the database was away: due as they were
    assert len(pending) == len(items) and pending.pop_due() == out


@pytest.mark.services
def test_a_30_day_seed_earns_like_a_business_with_a_funnel_and_late_refunds(db_dsn, run_cli):
    proc = run_cli("seed", "--days", "30", "--tasks", "6000", "--seed", "2", "--dsn", db_dsn)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(run_cli("roi", "--window", "31d", "--format", "json", "--dsn", db_dsn).stdout)
    (usd,) = rec["summary"]
    assert usd["currency"] == "USD" and 10 <= usd["roi_pct"] <= 300, usd
    funnel = {(f["stage"], f["reason"]): f["n"] for f in rec["funnel"]}
    created = sum(n for (stage, _), n in funnel.items() if stage == "created")
    succeeded = sum(n for (stage, _), n in funnel.items() if stage == "succeeded")
    failed = {reason: n for (stage, reason), n in funnel.items() if stage == "failed"}
    assert created > succeeded > 0 and len(failed) >= 3 and set(failed) <= REASONS, funnel
    # Every charge has its intent's success, at the charge's moment.
    assert q(
        db_dsn,
        """SELECT count(*), count(e.id), count(*) FILTER (WHERE e.created = date_trunc('second', l.occurred_at))
           FROM ledger_entries l LEFT JOIN stripe_events e ON e.type = 'payment_intent.succeeded'
                AND e.payload #>> '{data,object,latest_charge}' = l.metadata ->> 'charge'
           WHERE l.kind = 'revenue'""",
    ) == [(succeeded, succeeded, succeeded)]
    # Refunds hours to days, disputes days to weeks after their charge; nothing after now.
    gaps = q(
        db_dsn,
        f"""SELECT l.kind, min(l.occurred_at - c.occurred_at), max(l.occurred_at - c.occurred_at), count(*)
            FROM ledger_entries l {CHARGE_OF} WHERE l.kind IN ('refund', 'dispute') GROUP BY 1 ORDER BY 1""",
    )
    refunds = {kind: (lo, hi, n) for kind, lo, hi, n in gaps}
    assert refunds["refund"][2] > 5 and refunds["refund"][0].total_seconds() >= profiles.REFUND_DELAY_S[2]
    assert refunds["refund"][1].total_seconds() > 86_400  # some a day or more later
    if "dispute" in refunds:
        assert refunds["dispute"][0].total_seconds() >= profiles.DISPUTE_DELAY_S[2]
    assert q(
        db_dsn,
        "SELECT (SELECT count(*) FROM ledger_entries WHERE occurred_at > now()) "
        "+ (SELECT count(*) FROM stripe_events WHERE created > now())",
    ) == [(0,)]


def _run(dsn, **opts):
    from fsar_tui.sim.runner import SimulateOptions, run_process

    return asyncio.run(run_process(dsn, SimulateOptions(workers=4, rate=0, time_scale=0.001, **opts)))


@pytest.mark.services
def test_the_simulator_writes_refunds_when_due_not_at_the_charge(db_dsn, monkeypatch):
    # Every idea task brings a paying customer who asks for a refund: first 10–11
    # simulated hours later (36–40 s at --time-scale 0.001: after the run), then 30–40
    # simulated minutes later (1.8–2.4 s after the charge: within it).
    monkeypatch.setattr(profiles, "INTENT_RATE", 1.0)
    monkeypatch.setattr(profiles, "INTENT_OUTCOMES", {"succeeded": 1})
    monkeypatch.setattr(profiles, "REFUND_RATE", 1.0)
    monkeypatch.setattr(profiles, "REFUND_DELAY_S", (36_000.0, 0.1, 36_000.0, 40_000.0))

    _run(db_dsn, tasks=12, duration=1.0, seed=1)  # stops before any refund is due
    charges = q(db_dsn, "SELECT count(*) FROM ledger_entries WHERE kind = 'revenue'")[0][0]
    assert charges > 0
    assert q(db_dsn, "SELECT count(*) FROM ledger_entries WHERE kind = 'refund'") == [(0,)]  # dropped: not happened
    assert q(db_dsn, "SELECT type, count(*) FROM stripe_events GROUP BY 1 ORDER BY 1") == [
        ("payment_intent.created", charges),
        ("payment_intent.succeeded", charges),
    ]

    monkeypatch.setattr(profiles, "REFUND_DELAY_S", (1800.0, 0.1, 1800.0, 2400.0))
    _run(db_dsn, tasks=12, duration=6.0, seed=2)
    rows = q(
        db_dsn,
        f"""SELECT extract(epoch FROM l.occurred_at - c.occurred_at)::float8,
                   extract(epoch FROM l.occurred_at - t.finished_at)::float8
            FROM ledger_entries l {CHARGE_OF} JOIN execution_tasks t ON t.id = l.task_id
            WHERE l.kind = 'refund'""",
    )
    assert rows, "no refund came due within the run"
    # Due 1.8 s or more after the success; its charge was written at most a moment late.
    assert all(after_charge > 1.5 and after_success >= 1.8 for after_charge, after_success in rows), rows
    # Intents and charges agree with the successes that caused them.
    assert q(
        db_dsn,
        """SELECT count(*) FROM execution_tasks t WHERE t.status = 'succeeded' AND t.idea_id IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM stripe_events e WHERE e.type = 'payment_intent.created'
                             AND e.payload #>> '{data,object,metadata,task_id}' = t.id::text)""",
    ) == [(0,)]
