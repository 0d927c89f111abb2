"""Fraud checks at 1× and 10× ledger volume (issue 17, point 4: 10× the entries → less
than 2× the time), part of the roi group.

One database, two measurements: a Stripe-shaped ledger of BASE entries over 30 days
(charges, their fees, refunds and disputes later; 50,000 customers — the seeder's — with
a card or two each, 0.5 % of charges from an IP country unlike the card's), plus
the same fraud every time (customer bursts, card testing across customers, customers
with mismatched countries); then nine times BASE more of the ordinary entries from the
same customers. Both loads go through the bulk loader's path (COPY under
fsar.bulk_load, then its ledger_daily and fraud_velocity rows). At each volume the
30-day fraud checks are timed as the app reads them (the velocity state, revision
0027) and as they were read before (every charge of the window: db/fraud_scan.py), and
the two sets of flags compared.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.common import SMALL, fresh_database, median, print_table
from fsar_tui.db import bulk
from fsar_tui.db import fraud as fraud_queries
from fsar_tui.db import roi as roi_queries
from fsar_tui.db.connect import connect

BASE = 20_000 if SMALL else 100_000  # ledger entries at 1×
DAYS = 30
CUSTOMERS = 50_000
COUNTRIES = ["US"] * 70 + ["GB"] * 10 + ["DE"] * 10 + ["BR"] * 6 + ["NG"] * 4
MISMATCHED = 0.005  # of ordinary charges (a VPN, a trip): country mismatch is about the rest
ENTRIES_PER_SALE = 2.05  # a charge and its fee; 4 % refunded, 0.5 % disputed (and a fee)


def _meta(n: int, card: str, country: str, ip: str) -> str:
    return json.dumps({"charge": f"ch_{n}", "card_fingerprint": card, "card_country": country, "ip_country": ip})


def _sale(rng: random.Random, n: int, at: datetime, end: datetime, customer: str, meta: str) -> Iterator[tuple]:
    amount = rng.choice([900, 1900, 4900, 9900, 19900])
    idea = f"idea_{rng.randint(1, 40):03d}"
    yield ("stripe", f"ch_{n}", "revenue", amount, "USD", at, idea, None, customer, meta)
    yield ("stripe", f"fee_{n}", "payment_fee", -(amount * 29 // 1000 + 30), "USD", at, idea, None, customer, meta)
    roll, later = rng.random(), at + timedelta(seconds=rng.uniform(3600, 7 * 86400))
    if roll < 0.045 and later < end:
        kind = "refund" if roll < 0.04 else "dispute"
        yield ("stripe", f"{kind}_{n}", kind, -amount, "USD", later, idea, None, customer, meta)
        if kind == "dispute":
            yield ("stripe", f"dfee_{n}", "dispute_fee", -1500, "USD", later, idea, None, customer, meta)


def ordinary(seed: int, entries: int, end: datetime, first_sale: int) -> Iterator[tuple]:
    """About `entries` ledger rows of ordinary sales over the DAYS before `end`."""
    rng = random.Random(f"fraud-volume:{seed}")
    for n in range(first_sale, first_sale + int(entries / ENTRIES_PER_SALE)):
        c = rng.randint(1, CUSTOMERS)
        country = rng.choice(COUNTRIES)
        ip = country if rng.random() > MISMATCHED else "RU"
        at = end - timedelta(seconds=rng.random() * DAYS * 86400)
        meta = _meta(n, f"fp_{c:06d}_{c % 2 + rng.randint(0, c % 2)}", country, ip)
        yield from _sale(rng, n, at, end, f"cus_{c:06d}", meta)


def fraud(end: datetime, first_sale: int) -> Iterator[tuple]:
    """The same suspicious activity at every volume: 40 customer bursts, 20 card-testing
    runs over many customers, 15 customers whose card and IP countries differ."""
    rng = random.Random("fraud-volume:fraud")
    n = first_sale
    for i in range(40):
        start = end - timedelta(seconds=rng.uniform(3600, DAYS * 86400))
        spread = rng.uniform(3, 55) * 60
        for _ in range(rng.randint(5, 12)):
            n += 1
            at = start + timedelta(seconds=rng.uniform(0, spread))
            yield from _sale(rng, n, at, end, f"cus_burst{i}", _meta(n, f"fp_burst{i}", "US", "US"))
    for i in range(20):
        start = end - timedelta(seconds=rng.uniform(3600, DAYS * 86400))
        for _ in range(rng.randint(6, 15)):
            n += 1
            at = start + timedelta(seconds=rng.uniform(0, 1800))
            customer = f"cus_{rng.randint(1, CUSTOMERS):06d}"
            yield from _sale(rng, n, at, end, customer, _meta(n, f"fp_testing{i}", "BR", "BR"))
    for i in range(15):
        for _ in range(rng.randint(3, 6)):
            n += 1
            at = end - timedelta(seconds=rng.uniform(0, DAYS * 86400))
            yield from _sale(rng, n, at, end, f"cus_mismatch{i}", _meta(n, f"fp_mismatch{i}", "NG", "RU"))


def load(dsn: str, rows: Iterator[tuple]) -> int:
    """Through the bulk loader's path, then VACUUM ANALYZE (as the seeder leaves it)."""
    with connect(dsn, statement_timeout_ms=0) as conn, bulk.bulk_transaction(conn):
        high = bulk.ledger_high_water(conn)
        count = bulk.copy_rows(conn, "ledger_entries", bulk.LEDGER_COLUMNS, rows)
        bulk.add_ledger_daily(conn, high)
        bulk.add_fraud_velocity(conn, high)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE ledger_entries, ledger_daily, fraud_velocity")
    return count


def _timed(fn: Any, repeat: int) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t) * 1000)
    return median(samples), result


def measure(dsn: str) -> tuple[int, float, float, int, bool]:
    """(entries, state ms, full-scan ms, flags, equal) over the 30-day window."""
    first, last = roi_queries.window_days(DAYS)
    start, end = roi_queries.day_bounds(first, last)
    with connect(dsn, autocommit=True, statement_timeout_ms=0) as conn:
        entries = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0]
        fraud_queries.fraud_flags_sync(conn, start, end)  # warm: both read from memory
        fraud_queries.fraud_flags_scan_sync(conn, start, end)
        state_ms, flags = _timed(lambda: fraud_queries.fraud_flags_sync(conn, start, end), 11)
        scan_ms, scanned = _timed(lambda: fraud_queries.fraud_flags_scan_sync(conn, start, end), 5)
    return entries, state_ms, scan_ms, len(flags), flags == scanned


def run(server_dsn: str) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    results = []
    with fresh_database(server_dsn) as dsn:
        sales = int(BASE / ENTRIES_PER_SALE)
        load(dsn, itertools.chain(ordinary(1, BASE, end, 0), fraud(end, 20 * sales)))
        results.append(measure(dsn))
        load(dsn, ordinary(2, 9 * BASE, end, sales + 1))
        results.append(measure(dsn))
    (n1, s1, f1, k1, eq1), (n10, s10, f10, k10, eq10) = results
    rows = [
        ["fraud checks (velocity state, 0027)", f"{s1:.1f} ms", f"{s10:.1f} ms", f"{s10 / s1:.2f}×", "< 2×"],
        ["fraud checks, full scan (before 0027)", f"{f1:.1f} ms", f"{f10:.1f} ms", f"{f10 / f1:.2f}×", ""],
        ["state vs full scan", f"{f1 / s1:.1f}× faster", f"{f10 / s10:.1f}× faster", "", ""],
        [
            "flags (equal both ways)",
            f"{k1} ({'yes' if eq1 else 'NO'})",
            f"{k10} ({'yes' if eq10 else 'NO'})",
            "",
            "yes",
        ],
    ]
    print_table(
        f"Fraud checks, 30-day window, {n1:,} → {n10:,} ledger entries ({n10 / n1:.1f}×)",
        ["measure", "1×", "10×", "10× / 1×", "goal"],
        rows,
    )
