"""The fraud velocity state (revision 0027) against a real database, and its maths.

The trigger and the bulk loader keep fraud_velocity equal to the charges counted from
scratch (domain/fraud_velocity.counts) through inserts, moves, customer, fingerprint and
kind changes and deletes, whatever the session's time zone; adoption fills it from the
existing ledger and downgrade removes everything. The flags read through it equal the
full scan's (the algorithm before it, db/fraud_scan.py) on a seeded ledger with bursts,
over windows that cut them. The pure maths (hypothesis): the stretches hold every burst,
so the flags over their charges are the flags over the whole window.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fsar_tui.db import bulk
from fsar_tui.db import fraud as fraud_queries
from fsar_tui.db.connect import connect
from fsar_tui.db.migrations import downgrade, migrate, script_directory
from fsar_tui.domain import fraud
from fsar_tui.domain import fraud_velocity as velocity
from fsar_tui.domain.fraud import FraudRules
from fsar_tui.sim.seed import seed_history
from support.sql import q, x

DAY = datetime(2026, 3, 2, tzinfo=UTC)
REVISION = "0027_fraud_velocity"


def at(minutes: float) -> datetime:
    return DAY + timedelta(minutes=minutes)


def insert(dsn: str, rows: list[tuple], timezone: str = "UTC") -> list[int]:
    """Rows (kind, occurred_at, customer, metadata[, idea]) into ledger_entries in one
    statement (the triggers fire per row); their ids, in order."""
    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET TIME ZONE '{timezone}'")
        ids = conn.execute(
            "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, "
            "customer_id, metadata, idea_id) "
            "SELECT 'test', gen_random_uuid()::text, kind, CASE WHEN kind = 'revenue' THEN 1000 ELSE -1000 END, 'USD', "
            "t, c, m::jsonb, i "
            "FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::text[]) "
            "WITH ORDINALITY AS r(kind, t, c, m, i, n) ORDER BY n RETURNING id",
            (
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [json.dumps(r[3]) for r in rows],
                [r[4] if len(r) > 4 else None for r in rows],
            ),
        ).fetchall()
    return [i for (i,) in ids]


def state(dsn: str) -> dict:
    rows = q(dsn, "SELECT subject_kind, subject, hour, charges FROM fraud_velocity WHERE charges <> 0")
    return {(k, s, h): n for k, s, h, n in rows}


def expected(dsn: str) -> dict:
    """The state counted from scratch, in Python, from the ledger's charges."""
    charges = []
    for customer, card, occurred in q(
        dsn,
        "SELECT customer_id, metadata ->> 'card_fingerprint', occurred_at FROM ledger_entries WHERE kind = 'revenue'",
    ):
        if customer is not None:
            charges.append((velocity.CUSTOMER, customer, occurred))
        if card is not None:
            charges.append((velocity.CARD, card, occurred))
    return dict(velocity.counts(charges))


def bursty(rng: random.Random, days: int = 3) -> list[tuple]:
    """Quiet charges from many customers, and bursts by a few customers and on a few cards:
    dense (5–9 charges in 10–59 min), loose (over an hour), some at the same instant; 5 %
    of charges from an IP country unlike the card's, more for the bursting customers;
    disputes and refunds."""
    rows: list[tuple] = []
    span = days * 24 * 60

    def meta(card: str | None, mismatched: float) -> dict:
        countries = {"card_country": "US", "ip_country": "RU" if rng.random() < mismatched else "US"}
        return {**countries, "card_fingerprint": card} if card else countries

    def idea() -> str:
        return rng.choice(["idea_a", "idea_b", "idea_c"])

    for i in range(600):
        card = f"fp_q{rng.randint(1, 300)}" if rng.random() < 0.4 else None
        customer = f"cus_q{rng.randint(1, 400)}" if i % 9 else None
        rows.append(("revenue", at(rng.uniform(0, span)), customer, meta(card, 0.05), idea()))
    for _ in range(60):
        start = rng.uniform(-30, span)
        spread = rng.choice([10, 40, 59, 59.99, 61, 75, 150])
        n = rng.randint(3, 9)
        customer = f"cus_b{rng.randint(1, 15)}"
        card = f"fp_b{rng.randint(1, 10)}" if rng.random() < 0.6 else None
        for j in range(n):
            t = start if j and rng.random() < 0.1 else start + rng.uniform(0, spread)
            who = customer if card is None or rng.random() < 0.7 else f"cus_q{rng.randint(1, 400)}"
            rows.append(("revenue", at(t), who, meta(card, 0.3), idea()))
    # Not charges: never counted.
    rows += [("refund", at(rng.uniform(0, span)), "cus_b1", {"card_fingerprint": "fp_b1"}) for _ in range(20)]
    rows += [("dispute", at(rng.uniform(0, span)), "cus_b2", {}, idea()) for _ in range(15)]
    return rows


# -- the state, kept ------------------------------------------------------------------


def test_the_trigger_keeps_the_state_through_every_change(db_dsn):
    rng = random.Random(3)
    rows = bursty(rng, days=1)
    rows += [
        ("revenue", at(30), "cus_n", {"card_fingerprint": None}),  # a JSON null: no card
        ("revenue", at(31), "cus_n", ["card_fingerprint"]),  # `?` holds, ->> is NULL: no card
        ("revenue", at(32), None, {"card_fingerprint": "fp_only"}),  # a card, no customer
        ("payment_fee", at(33), "cus_n", {"card_fingerprint": "fp_only"}),
    ]
    ids = insert(db_dsn, rows, timezone="Asia/Kolkata")  # a half-hour zone: hours stay UTC's
    assert state(db_dsn) == expected(db_dsn) != {}
    assert max(state(db_dsn).values()) >= velocity.MIN_BUSY

    changes = [
        ("UPDATE ledger_entries SET occurred_at = occurred_at + interval '50 minutes' WHERE id % 7 = 0", None),
        ("UPDATE ledger_entries SET customer_id = 'cus_moved' WHERE id % 11 = 0", None),
        ("UPDATE ledger_entries SET customer_id = NULL WHERE id % 13 = 0", None),
        ("UPDATE ledger_entries SET metadata = metadata - 'card_fingerprint' WHERE id % 5 = 0", None),
        ('UPDATE ledger_entries SET metadata = \'{"card_fingerprint": "fp_new"}\' WHERE id % 17 = 0', None),
        ('UPDATE ledger_entries SET metadata = metadata || \'{"ip_country": "RU"}\' WHERE id % 3 = 0', None),
        ("UPDATE ledger_entries SET kind = 'refund', amount_minor = -1 WHERE id % 19 = 0", None),
        ("UPDATE ledger_entries SET kind = 'revenue', amount_minor = 1 WHERE kind = 'refund' AND id % 2 = 0", None),
        ("UPDATE ledger_entries SET amount_minor = 2 WHERE id % 4 = 0 AND kind = 'revenue'", None),
        ("DELETE FROM ledger_entries WHERE id = ANY(%s)", (ids[::6],)),
    ]
    for statement, params in changes:
        with psycopg.connect(db_dsn) as conn:
            conn.execute("SET TIME ZONE 'America/St_Johns'")  # -03:30 / -02:30
            conn.execute(statement, params)
        assert state(db_dsn) == expected(db_dsn), statement
    # Rows that came back to 0 stay, out of the partial index.
    assert q(db_dsn, "SELECT count(*) FROM fraud_velocity WHERE charges < 0") == [(0,)]


def test_the_bulk_loader_adds_its_own_rows(db_dsn):
    insert(db_dsn, bursty(random.Random(4), days=1))
    loaded = [
        (
            "stripe",
            f"b{i}",
            "revenue",
            900,
            "USD",
            at(600 + i),
            None,
            None,
            "cus_b1",
            json.dumps({"card_fingerprint": "fp_loaded"}),
        )
        for i in range(12)
    ]
    with connect(db_dsn) as conn, bulk.bulk_transaction(conn):
        high = bulk.ledger_high_water(conn)
        bulk.copy_rows(conn, "ledger_entries", bulk.LEDGER_COLUMNS, loaded)
        bulk.add_fraud_velocity(conn, high)
    assert state(db_dsn) == expected(db_dsn)
    assert state(db_dsn)[(velocity.CARD, "fp_loaded", velocity.hour_of(at(600)))] == 12


def test_bulk_load_is_honoured_for_the_owner_only(db_dsn, login):
    """A writer of the ledger (the integration contract's Stripe ingestion) may SET
    fsar.bulk_load too: its charges are counted all the same."""
    writer = login()
    role = psycopg.conninfo.conninfo_to_dict(writer)["user"]
    x(db_dsn, f"GRANT INSERT ON ledger_entries TO {role}")
    x(db_dsn, f"GRANT USAGE ON SEQUENCE ledger_entries_id_seq TO {role}")
    try:
        with psycopg.connect(writer) as conn:
            conn.execute("SET LOCAL fsar.bulk_load = 'on'")
            for minute in range(5):
                conn.execute(
                    "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, "
                    "customer_id, metadata) VALUES ('stripe', %s, 'revenue', 900, 'USD', %s, 'cus_w', '{}')",
                    (f"w{minute}", at(minute)),
                )
        assert state(db_dsn) == expected(db_dsn) == {(velocity.CUSTOMER, "cus_w", DAY): 5}
    finally:
        x(db_dsn, f"REVOKE ALL ON ledger_entries FROM {role}")
        x(db_dsn, f"REVOKE ALL ON SEQUENCE ledger_entries_id_seq FROM {role}")


def test_adoption_counts_the_ledger_and_downgrade_removes_everything(empty_dsn):
    before = script_directory().get_revision(REVISION).down_revision
    assert isinstance(before, str)
    migrate(empty_dsn, before)
    insert(empty_dsn, bursty(random.Random(5), days=1))
    migrate(empty_dsn, REVISION)
    assert state(empty_dsn) == expected(empty_dsn) != {}
    insert(empty_dsn, [("revenue", at(5), "cus_b1", {"card_fingerprint": "fp_b1"})])  # the trigger, from here
    assert state(empty_dsn) == expected(empty_dsn)

    downgrade(empty_dsn, before)
    assert q(
        empty_dsn,
        "SELECT to_regclass('fraud_velocity'), to_regclass('ledger_entries_dispute_idea_idx'), "
        "to_regclass('ledger_entries_mismatch_idx'), to_regclass('ledger_entries_mismatch_customer_idx'), "
        "to_regclass('ledger_entries_country_mismatch_idx')::text",
    ) == [(None, None, None, None, "ledger_entries_country_mismatch_idx")]
    assert q(empty_dsn, "SELECT count(*) FROM pg_proc WHERE proname = 'fsar_fraud_velocity_changed'") == [(0,)]
    assert q(empty_dsn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'ledger_entries_fraud_velocity'") == [(0,)]
    x(empty_dsn, "DELETE FROM ledger_entries")  # nothing left that writes the dropped table


# -- the flags: the state's reads equal the full scan's --------------------------------


def test_flags_through_the_state_equal_the_full_scan_on_a_seeded_ledger(db_dsn):
    seed_history(db_dsn, days=3, tasks=3000, seed=7)  # the bulk path (seeded charges: sparse)
    rng = random.Random(11)
    insert(db_dsn, bursty(rng))
    assert state(db_dsn) == expected(db_dsn)
    seeded_from = q(db_dsn, "SELECT min(occurred_at) FROM ledger_entries WHERE source = 'stripe'")[0][0]
    windows = [(DAY - timedelta(days=4), DAY + timedelta(days=4)), (DAY, DAY + timedelta(days=3))]
    windows += [(at(13 * 60 + 17), at(2 * 1440 + 5 * 60 + 3)), (seeded_from, seeded_from + timedelta(days=3))]
    for _ in range(12):
        a, b = sorted(rng.uniform(-60, 3 * 1440 + 60) for _ in range(2))
        windows.append((at(a), at(max(b, a + 1))))
    rule_sets = [
        FraudRules(),
        FraudRules(max_entries=3),
        FraudRules(velocity_charges=6, velocity_window=timedelta(minutes=30)),
        FraudRules(velocity_charges=3),  # not served by the state: the full scan both ways
    ]
    seen = set()
    with connect(db_dsn) as conn:
        for rules in rule_sets:
            for start, end in windows:
                new = fraud_queries.fraud_flags_sync(conn, start, end, rules)
                assert new == fraud_queries.fraud_flags_scan_sync(conn, start, end, rules), (rules, start, end)
                seen |= {f.rule for f in new}
    assert {fraud.VELOCITY_CUSTOMER, fraud.VELOCITY_CARD, fraud.COUNTRY_MISMATCH, fraud.DISPUTE_RATE} <= seen


def test_only_the_busy_hours_are_read(db_dsn):
    """The quiet charges are in no stretch: the busy rows name the bursting subjects only."""
    rows = [("revenue", at(7 * i), f"cus_quiet{i}", {"card_fingerprint": f"fp_quiet{i}"}) for i in range(300)]
    rows += [("revenue", at(600 + i), "cus_burst", {}) for i in range(5)]
    insert(db_dsn, rows)
    with connect(db_dsn) as conn:
        busy = conn.execute(
            fraud_queries.BUSY_SQL, {"busy": 3, "from": velocity.first_hour(DAY), "end": DAY + timedelta(days=1)}
        ).fetchall()
        (flag,) = fraud_queries.fraud_flags_sync(conn, DAY, DAY + timedelta(days=1))
    assert {(k, s) for k, s, _ in busy} == {(velocity.CUSTOMER, "cus_burst")}
    assert (flag.rule, flag.subject, flag.count) == (fraud.VELOCITY_CUSTOMER, "cus_burst", 5)


# -- the maths --------------------------------------------------------------------------


def test_hours_served_and_a_burst_across_the_hour():
    assert velocity.hour_of(at(13 * 60 + 59.99)) == at(13 * 60)
    kolkata = at(14 * 60 + 10).astimezone(ZoneInfo("Asia/Kolkata"))  # 19:40 there
    assert velocity.hour_of(kolkata) == at(14 * 60)
    assert [velocity.busy_threshold(FraudRules(velocity_charges=k)) for k in (4, 5, 6, 7)] == [2, 3, 3, 4]
    assert velocity.served(FraudRules())
    assert not velocity.served(FraudRules(velocity_charges=4))
    assert not velocity.served(FraudRules(velocity_window=timedelta(minutes=61)))
    # 5 charges 13:59:59 – 14:59:58, 1 in the 13:00 row and 4 in the 14:00 one: that row is
    # busy, and its stretch runs from 13:00 to 16:00 (a burst starting in 13:00 ends by 15:00).
    times = [at(13 * 60 + 59 + 59 / 60)] + [at(14 * 60 + m) for m in (10, 20, 30)] + [at(14 * 60 + 59 + 58 / 60)]
    state_ = velocity.counts((velocity.CUSTOMER, "c", t) for t in times)
    assert state_ == {(velocity.CUSTOMER, "c", at(13 * 60)): 1, (velocity.CUSTOMER, "c", at(14 * 60)): 4}
    rows = [key for key, n in state_.items() if n >= 3]
    assert velocity.ranges(rows, FraudRules(), DAY, DAY + timedelta(days=1)) == [
        (velocity.CUSTOMER, "c", at(13 * 60), at(16 * 60))
    ]
    # Cut to the window; two busy hours of one subject make one stretch.
    rows = [(velocity.CUSTOMER, "c", at(14 * 60)), (velocity.CUSTOMER, "c", at(15 * 60))]
    assert velocity.ranges(rows, FraudRules(), at(14 * 60 + 30), at(20 * 60)) == [
        (velocity.CUSTOMER, "c", at(14 * 60 + 30), at(17 * 60))
    ]


SUBJECTS = [(velocity.CUSTOMER, "a")] * 3 + [(velocity.CUSTOMER, "b"), (velocity.CARD, "a")]


@st.composite
def clustered(draw) -> list[tuple[tuple[str, str], int]]:
    """Charges (subject, second) around a few instants — whole hours or not — so that
    bursts are common, and often straddle an hour."""
    centers = draw(
        st.lists(st.integers(0, 8 * 3600) | st.integers(0, 8).map(lambda h: h * 3600), min_size=1, max_size=3)
    )
    spread = draw(st.sampled_from([600, 3600, 5400, 4 * 3600]))
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(SUBJECTS),
                st.sampled_from(centers).flatmap(lambda c: st.integers(c - spread // 2, c + spread // 2)),
            ),
            min_size=5,
            max_size=40,
        )
    )


@settings(max_examples=500, deadline=None)
@given(
    clustered(),
    st.sampled_from([5, 6]) | st.integers(5, 8),
    st.sampled_from([600, 1800, 3599, 3600]) | st.integers(1, 3600),
    st.just(-4 * 3600) | st.integers(-3600, 9 * 3600),
    st.just(20 * 3600) | st.integers(1, 9 * 3600),
)
# Bursts split over two hours: 2 + 3 of 5 (the busy hour is the second), 3 + 3 of 6.
@example([(SUBJECTS[0], s) for s in (3500, 3550, 3700, 3800, 3900)], 5, 1800, -4 * 3600, 20 * 3600)
@example([(SUBJECTS[0], s) for s in (3400, 3500, 3550, 3700, 3800, 3900)], 6, 1800, -4 * 3600, 20 * 3600)
def test_the_stretches_hold_every_burst(charges, k, window_s, start_s, length_s):
    rules = FraudRules(velocity_charges=k, velocity_window=timedelta(seconds=window_s), max_entries=1000)
    start, end = DAY + timedelta(seconds=start_s), DAY + timedelta(seconds=start_s + length_s)
    rows = [(kind, subject, DAY + timedelta(seconds=s), n) for n, ((kind, subject), s) in enumerate(charges)]
    state_ = velocity.counts((kind, subject, t) for kind, subject, t, _ in rows)
    # The state: each row counts the subject's charges in its hour.
    for (kind, subject, h), n in state_.items():
        assert n == sum(1 for c in rows if c[:2] == (kind, subject) and h <= c[2] < h + velocity.STEP)
    busy = [key for key, n in state_.items() if n >= velocity.busy_threshold(rules)]
    stretches = velocity.ranges(busy, rules, start, end)
    for (k1, s1, a1, b1), (k2, s2, a2, _) in zip(stretches, stretches[1:], strict=False):
        assert (k1, s1, a1) < (k2, s2, a2) and ((k1, s1) != (k2, s2) or b1 < a2)
    assert all(start <= a < b <= end for _, _, a, b in stretches)
    visible = [c for c in rows if start <= c[2] < end]
    picked = [c for c in visible if any(c[:2] == s[:2] and s[2] <= c[2] < s[3] for s in stretches)]
    for kind, rule in velocity.RULE_OF.items():
        every = fraud.velocity_flags(rule, [(s, t, n) for k_, s, t, n in visible if k_ == kind], rules)
        assert fraud.velocity_flags(rule, [(s, t, n) for k_, s, t, n in picked if k_ == kind], rules) == every
