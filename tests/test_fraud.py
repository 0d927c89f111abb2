"""Fraud flags against a real database: each rule fires on a crafted ledger, naming the
entries behind it, and stays quiet just under its threshold (a sliding-window burst
across an hour boundary; a refund spike after 14 quiet days); the async and sync
readers agree. The pure rules: unit tests, and hypothesis properties (velocity equals
a brute-force check; the dispute rule never flags below its minimum of charges)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.db import fraud as fraud_queries
from fsar_tui.db.connect import aconnect, connect
from fsar_tui.domain import fraud
from fsar_tui.domain.fraud import Flag, FraudRules

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, midnight UTC
_external = itertools.count(1)


def at(hh: int, mm: int = 0, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hh, minutes=mm)


def ledger(dsn: str, rows: list[tuple]) -> list[int]:
    """Rows (kind, occurred_at, customer, idea, metadata) into ledger_entries, in one
    transaction (the ledger_daily trigger keeps the rollup); their ids, in order."""
    ids = []
    with psycopg.connect(dsn) as conn:
        for kind, occurred, customer, idea, meta in rows:
            amount = 1000 if kind == "revenue" else -1000
            ids.append(
                conn.execute(
                    "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, "
                    "idea_id, customer_id, metadata) VALUES ('test', %s, %s, %s, 'USD', %s, %s, %s, %s) RETURNING id",
                    (f"e{next(_external)}", kind, amount, occurred, idea, customer, json.dumps(meta or {})),
                ).fetchone()[0]
            )
    return ids


def charge(occurred, customer, idea="idea_a", **meta):
    return ("revenue", occurred, customer, idea, meta)


def flags_sync(dsn: str, start: datetime, end: datetime, rules: FraudRules = FraudRules()) -> list[Flag]:
    with connect(dsn) as conn:
        return fraud_queries.fraud_flags_sync(conn, start, end, rules)


def by_rule(flags: list[Flag], rule: str) -> dict[str, Flag]:
    return {f.subject: f for f in flags if f.rule == rule}


def newest_first(ids: list[int]) -> tuple[int, ...]:
    return tuple(sorted(ids, reverse=True))  # ids were inserted in time order


# -- against the database ---------------------------------------------------------------


async def test_velocity_slides_across_the_hour_and_stays_quiet_below(db_dsn):
    # cus_a: 5 charges 13:40..14:35 (3 before 14:00, 2 after: fixed hour buckets would miss
    # it), plus a quiet charge in the morning and a fee inside the burst (not a charge).
    burst_a = ledger(
        db_dsn, [charge(at(13, m), "cus_a") for m in (40, 50)] + [charge(at(14, m), "cus_a") for m in (0, 10, 35)]
    )
    ledger(db_dsn, [charge(at(9), "cus_a"), ("payment_fee", at(14, 5), "cus_a", "idea_a", {})])
    # cus_b: 4 charges in 10 minutes (one short). cus_c: 5 charges spanning exactly 1 h.
    ledger(db_dsn, [charge(at(10, m), "cus_b") for m in (0, 3, 6, 9)])
    ledger(db_dsn, [charge(at(16, m), "cus_c") for m in (0, 15, 30, 45)] + [charge(at(17), "cus_c")])
    # cus_d: two bursts, the second of 10 charges in 9 minutes (severity 3).
    first_d = ledger(db_dsn, [charge(at(2, m), "cus_d") for m in (0, 1, 2, 3, 4)])
    second_d = ledger(db_dsn, [charge(at(20, m), "cus_d") for m in range(10)])
    # Card fp_1 used by five customers within 30 minutes; fp_2 four times.
    card_1 = ledger(db_dsn, [charge(at(11, 6 * i), f"cus_card{i}", card_fingerprint="fp_1") for i in range(5)])
    ledger(db_dsn, [charge(at(12, 6 * i), f"cus_card{i}", card_fingerprint="fp_2") for i in range(4)])

    start, end = DAY, DAY + timedelta(days=1)
    conn = await aconnect(db_dsn)
    try:
        flags = await fraud_queries.fraud_flags(conn, start, end)
    finally:
        await conn.close()
    assert flags == flags_sync(db_dsn, start, end)

    customers = by_rule(flags, fraud.VELOCITY_CUSTOMER)
    assert set(customers) == {"cus_a", "cus_d"}
    a = customers["cus_a"]
    assert (a.count, a.entry_ids, a.severity) == (5, newest_first(burst_a), 1)
    assert a.reason == "5 charges in 1 h (threshold 5) 2026-03-02 13:40–14:35 UTC"
    d = customers["cus_d"]
    assert (d.count, d.entry_ids, d.severity) == (15, newest_first(first_d + second_d), 3)
    assert d.reason == "10 charges in 1 h (threshold 5) 2026-03-02 20:00–20:09 UTC; 15 in 2 bursts"

    cards = by_rule(flags, fraud.VELOCITY_CARD)
    assert set(cards) == {"fp_1"}
    assert (cards["fp_1"].count, cards["fp_1"].entry_ids) == (5, newest_first(card_1))
    assert "on one card" in cards["fp_1"].reason
    assert [f.rule for f in flags if f.rule not in (fraud.VELOCITY_CUSTOMER, fraud.VELOCITY_CARD)] == []
    assert flags[0].subject == "cus_d"  # severity first

    # A window that cuts the burst of cus_a at 14:00 sees only its visible part.
    assert "cus_a" not in by_rule(flags_sync(db_dsn, at(14), end), fraud.VELOCITY_CUSTOMER)
    # max_entries caps the ids, not the count.
    capped = by_rule(flags_sync(db_dsn, start, end, FraudRules(max_entries=3)), fraud.VELOCITY_CUSTOMER)["cus_d"]
    assert (capped.count, capped.entry_ids) == (15, newest_first(second_d)[:3])


def test_dispute_rate_per_idea_and_overall(db_dsn):
    rows, disputes = [], {}
    # idea: (charges, disputes): 2.5 % fires; exactly 1 % does not; 19 charges is too few
    # to judge even at 26 %; 20 charges with one dispute (5 %) is enough.
    plan = {"idea_hi": (80, 2), "idea_at": (100, 1), "idea_few": (19, 5), "idea_min": (20, 1)}
    for idea, (n, _disputes) in plan.items():
        rows += [charge(at(1) + timedelta(minutes=7 * i), f"cus_{idea}_{i}", idea) for i in range(n)]
    ledger(db_dsn, rows)
    minute = itertools.count()  # disputes in insertion (= id) order
    for idea, (_charges, d) in plan.items():
        disputes[idea] = ledger(
            db_dsn, [("dispute", at(12, next(minute)), f"cus_{idea}_{i}", idea, {}) for i in range(d)]
        )
    # A dispute the day before the window does not count.
    ledger(db_dsn, [("dispute", at(12, day=-1), "cus_x", "idea_at", {})])

    flags = flags_sync(db_dsn, DAY, DAY + timedelta(days=1))
    got = by_rule(flags, fraud.DISPUTE_RATE)
    assert set(got) == {"idea_hi", "idea_min", "all"}
    assert (got["idea_hi"].count, got["idea_hi"].entry_ids) == (2, newest_first(disputes["idea_hi"]))
    assert got["idea_hi"].reason == (
        "2 disputes / 80 charges = 2.50% (threshold 1.00%, at least 20 charges) 2026-03-02 UTC"
    )
    assert (got["idea_min"].severity, got["idea_hi"].severity) == (3, 3)
    every = sorted(i for ids in disputes.values() for i in ids)
    assert (got["all"].count, got["all"].entry_ids) == (9, newest_first(every))  # 9 / 219 = 4.1 %
    assert [f.rule for f in flags] == [fraud.DISPUTE_RATE] * 3

    # A higher threshold silences it all; fewer max_entries caps the overall ids.
    assert flags_sync(db_dsn, DAY, DAY + timedelta(days=1), FraudRules(dispute_rate=0.05)) == []
    capped = by_rule(flags_sync(db_dsn, DAY, DAY + timedelta(days=1), FraudRules(max_entries=2)), "dispute_rate")
    assert capped["all"].entry_ids == newest_first(every)[:2]


def test_refund_spike_after_fourteen_quiet_days(db_dsn):
    # Days 0..13: 2 refunds a day (mean 2, sd 0: threshold max(5, 2) = 5). Day 14: 6
    # refunds (fires). Day 15: 5 refunds (its threshold is above 5: quiet).
    rows = [("refund", at(10, i, day=d), None, None, {}) for d in range(14) for i in range(2)]
    ledger(db_dsn, rows)
    spike = ledger(db_dsn, [("refund", at(9, 5 * i, day=14), None, "idea_a", {}) for i in range(6)])
    ledger(db_dsn, [("refund", at(9, 5 * i, day=15), None, None, {}) for i in range(5)])

    flags = flags_sync(db_dsn, DAY, DAY + timedelta(days=16))
    assert [(f.rule, f.subject) for f in flags] == [(fraud.REFUND_SPIKE, "2026-03-16")]
    (f,) = flags
    assert (f.count, f.entry_ids, f.severity) == (6, newest_first(spike), 1)
    assert f.reason == (
        "6 refunds on 2026-03-16 UTC (threshold 5.0 = max(5, mean 2.0 + 3 × sd 0.0 of the previous 14 days))"
    )
    # The window need not hold the history; a window of the spike day alone finds it.
    assert flags_sync(db_dsn, at(0, day=14), at(0, day=15)) == flags
    # One refund fewer on the spike day is just at the threshold: quiet.
    with psycopg.connect(db_dsn) as conn:
        conn.execute("DELETE FROM ledger_entries WHERE id = %s", (spike[0],))
    assert flags_sync(db_dsn, DAY, DAY + timedelta(days=16)) == []


def test_country_mismatch_and_flag_entries(db_dsn):
    mismatched = ledger(
        db_dsn,
        [charge(at(h), "cus_x", card_country="NG", ip_country="RU") for h in (1, 5)]
        + [charge(at(9), "cus_x", card_country="US", ip_country="RU")],
    )
    # cus_y: 2 mismatched (one short) and 5 matching; cus_z: no IP country (not judged).
    ledger(
        db_dsn,
        [charge(at(h), "cus_y", card_country="DE", ip_country="FR") for h in (2, 3)]
        + [charge(at(h), "cus_y", card_country="DE", ip_country="DE") for h in (11, 13, 15, 17, 19)]
        + [charge(at(h), "cus_z", card_country="US") for h in (1, 2, 3)],
    )

    flags = flags_sync(db_dsn, DAY, DAY + timedelta(days=1))
    assert [(f.rule, f.subject) for f in flags] == [(fraud.COUNTRY_MISMATCH, "cus_x")]
    (f,) = flags
    assert (f.count, f.entry_ids, f.severity) == (3, newest_first(mismatched), 1)
    assert f.reason == "3 charges with card country ≠ IP country (threshold 3), mostly card NG, IP RU (2)"

    with connect(db_dsn) as conn:
        rows = fraud_queries.flag_entries_sync(conn, [mismatched[2], 999_999, mismatched[0]])
    assert [r[0] for r in rows] == [mismatched[2], mismatched[0]]
    entry_id, occurred, kind, amount, currency, customer, idea, meta = rows[0]
    assert (occurred, kind, amount, currency, customer, idea) == (at(9), "revenue", 1000, "USD", "cus_x", "idea_a")
    assert meta == {"card_country": "US", "ip_country": "RU"}


async def test_flag_entries_async_and_empty(db_dsn):
    ids = ledger(db_dsn, [charge(at(1), "cus_x"), ("refund", at(2), "cus_x", None, {})])
    conn = await aconnect(db_dsn)
    try:
        assert await fraud_queries.flag_entries(conn, []) == []
        rows = await fraud_queries.flag_entries(conn, list(reversed(ids)))
        for _ in range(11):  # never prepared: a generic plan would not know the window's width
            assert await fraud_queries.fraud_flags(conn, DAY, DAY + timedelta(days=1)) == []
        cur = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
        assert await cur.fetchone() == (0,)
    finally:
        await conn.close()
    assert [(r[0], r[2]) for r in rows] == [(ids[1], "refund"), (ids[0], "revenue")]


# -- pure rules -------------------------------------------------------------------------


def brute_members(times: list[datetime], k: int, window: timedelta) -> list[bool]:
    """Any k or more sorted times i..j with t_j − t_i < window make all of i..j members."""
    member = [False] * len(times)
    for i in range(len(times)):
        for j in range(i + k - 1, len(times)):
            if times[j] - times[i] < window:
                for r in range(i, j + 1):
                    member[r] = True
    return member


def brute_peak(times: list[datetime], window: timedelta) -> int:
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6 * 3600), max_size=30), st.integers(2, 6), st.integers(60, 3 * 3600))
def test_velocity_equals_brute_force(offsets, k, window_s):
    times = sorted(DAY + timedelta(seconds=s) for s in offsets)
    window = timedelta(seconds=window_s)
    member = fraud.velocity_members(times, k, window)
    assert member == brute_members(times, k, window)
    peak, i, j = fraud.densest_window(times, window)
    assert peak == brute_peak(times, window)
    if times:
        assert j - i + 1 == peak and times[j] - times[i] < window
    # The flag over these charges: its entries are the members, whatever their order in.
    rules = FraudRules(velocity_charges=k, velocity_window=window, max_entries=1000)
    charges = [("s", t, n) for n, t in enumerate(times)]
    flags = fraud.velocity_flags(fraud.VELOCITY_CUSTOMER, list(reversed(charges)), rules)
    expected = [n for n, m in enumerate(member) if m]
    if expected:
        (flag,) = flags
        assert sorted(flag.entry_ids) == expected and flag.count == len(expected)
    else:
        assert flags == []
    # Leaving out charges that belong to no burst changes nothing (what the SQL relies on).
    subset = [c for c, m in zip(charges, member, strict=False) if m]
    assert fraud.velocity_flags(fraud.VELOCITY_CUSTOMER, subset, rules) == flags


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["", "idea_a", "idea_b", "idea_c"]), st.integers(0, 60), st.integers(0, 30)),
        max_size=8,
    ),
    st.integers(1, 100),
    st.floats(0, 0.5),
)
def test_dispute_rule_never_flags_below_minimum_charges(totals, min_charges, rate):
    rules = FraudRules(dispute_min_charges=min_charges, dispute_rate=rate)
    flags = fraud.dispute_rate_flags(totals, DAY.date(), DAY.date(), rules)
    charges: dict[str, list[int]] = {}
    for idea, c, d in totals:
        charges.setdefault(idea, [0, 0])
        charges[idea][0] += c
        charges[idea][1] += d
    overall = [sum(c for c, _ in charges.values()), sum(d for _, d in charges.values())]
    for f in flags:
        c, d = overall if f.subject == "all" else charges[f.subject]
        assert f.subject != ""
        assert c >= min_charges and d / c > rate and f.count == d


def test_velocity_fixed_buckets_would_miss_what_the_sliding_window_sees():
    times = [at(13, 40), at(13, 50), at(14, 0), at(14, 10), at(14, 35)]
    assert fraud.velocity_members(times, 5, timedelta(hours=1)) == [True] * 5
    assert fraud.velocity_members(times, 5, timedelta(minutes=55)) == [False] * 5
    exactly_an_hour = [at(16, m) for m in (0, 15, 30, 45)] + [at(17)]
    assert fraud.velocity_members(exactly_an_hour, 5, timedelta(hours=1)) == [False] * 5
    assert fraud.velocity_bursts(times + [at(20, m) for m in range(5)], 5, timedelta(hours=1)) == 2


def test_refund_spike_needs_history_and_counts_missing_days_as_zero():
    rules = FraudRules()
    first = date(2026, 3, 1)
    quiet = {first + timedelta(days=d): 1 for d in range(0, 14, 2)}  # 1 every other day
    spike_day = first + timedelta(days=14)
    daily = {**quiet, spike_day: 6}
    (flag,) = fraud.refund_spike_flags(daily, first, spike_day, first, rules)
    assert (flag.subject, flag.count) == ("2026-03-15", 6)
    # mean 0.5, sd 0.5 → 2.0 < floor 5
    assert "threshold 5.0" in flag.reason and "mean 0.5" in flag.reason and "sd 0.5" in flag.reason
    # One day less of ledger history: not judged. No ledger: not judged.
    assert fraud.refund_spike_flags(daily, first, spike_day, first + timedelta(days=1), rules) == []
    assert fraud.refund_spike_flags(daily, first, spike_day, None, rules) == []
    # A noisy history raises the bar above the floor: 3 sd.
    noisy = {first + timedelta(days=d): (0 if d % 2 else 10) for d in range(14)}
    threshold, mean, sd = fraud.refund_threshold([noisy[first + timedelta(days=d)] for d in range(14)], rules)
    assert (mean, sd, threshold) == (5.0, 5.0, 20.0)
    assert fraud.refund_spike_flags({**noisy, spike_day: 20}, spike_day, spike_day, first, rules) == []
    (big,) = fraud.refund_spike_flags({**noisy, spike_day: 40}, spike_day, spike_day, first, rules)
    assert big.severity == 3


def test_severity_sorting_window_days_and_rules_validation():
    assert [fraud.severity(v, 10) for v in (11, 14.9, 15, 19.9, 20, 100)] == [1, 1, 2, 2, 3, 3]
    flags = [
        Flag("country_mismatch", "b", "", 1, (), 9),
        Flag("dispute_rate", "a", "", 2, (), 3),
        Flag("velocity_customer", "c", "", 1, (), 9),
        Flag("refund_spike", "d", "", 2, (), 30),
    ]
    assert [f.subject for f in fraud.sort_flags(flags)] == ["d", "a", "c", "b"]
    assert fraud.window_days(DAY, DAY + timedelta(days=7)) == (date(2026, 3, 2), date(2026, 3, 8))
    assert fraud.window_days(at(13), at(13, 30)) == (date(2026, 3, 2), date(2026, 3, 2))
    with pytest.raises(ValueError):
        fraud.window_days(DAY.replace(tzinfo=None), DAY)
    for bad in (
        {"velocity_charges": 1},
        {"velocity_window": timedelta(0)},
        {"dispute_rate": 1.0},
        {"dispute_min_charges": 0},
        {"max_entries": -1},
    ):
        with pytest.raises(ValueError):
            FraudRules(**bad)


def test_country_mismatch_merges_pairs_newest_first():
    rules = FraudRules(max_entries=3)
    groups = [
        ("cus_x", "NG", "RU", 2, [5, 2], [at(5), at(2)]),
        ("cus_x", "US", "RU", 4, [9, 7, 3], [at(9), at(7), at(3)]),
        ("cus_y", "DE", "FR", 2, [4, 1], [at(4), at(1)]),
    ]
    (flag,) = fraud.country_mismatch_flags(groups, rules)
    assert (flag.subject, flag.count, flag.entry_ids, flag.severity) == ("cus_x", 6, (9, 7, 5), 3)
    assert flag.reason.endswith("mostly card US, IP RU (4)")
