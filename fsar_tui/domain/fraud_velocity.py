"""The velocity state's bucketing: which stretches of which subjects could hold a burst (pure).

Revision 0027 keeps `fraud_velocity`: per subject — a customer (`CUSTOMER`) or a card
fingerprint (`CARD`) — and UTC hour, how many of the subject's charges lie in that hour
(`counts` is the same from scratch: what the tests compare the table with).

Why that finds every burst: the velocity rules (domain/fraud.py) look for k charges whose
first and last are less than a window W apart. When W ≤ STEP (one hour), such a run lies
in at most two consecutive hours, so one of them holds at least ⌈k/2⌉ of its charges
(`busy_threshold`): call it h. The run's first charge lies in h or the hour before, and
its last less than W after the first, so the whole run lies in [h − 1 h, h + 1 h + W).
So the hours holding at least ⌈k/2⌉ charges give stretches (`ranges`, merged and cut to
the window asked for) that hold every charge of every burst; db/fraud.py reads only the
charges there, and fraud.velocity_flags is exact on any set of the window's charges that
holds every burst's. What the check reads grows with the busy hours, not with the
ledger.

The partial index that finds the busy hours holds the rows of at least MIN_BUSY (3)
charges, ⌈5/2⌉ for the default threshold of 5: `served` says whether rules can use the
state (⌈k/2⌉ ≥ 3, i.e. k ≥ 5, and W ≤ 1 h); the others are read by the full scan
(db/fraud_scan.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from fsar_tui.domain.fraud import VELOCITY_CARD, VELOCITY_CUSTOMER, FraudRules

CUSTOMER, CARD = "customer", "card"
RULE_OF = {CUSTOMER: VELOCITY_CUSTOMER, CARD: VELOCITY_CARD}
STEP = timedelta(hours=1)
MIN_BUSY = 3  # the partial index's threshold (revision 0027): rows of fewer charges are not indexed


def hour_of(t: datetime) -> datetime:
    """The UTC hour that holds t (its first instant)."""
    if t.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def counts(charges: Iterable[tuple[str, str, datetime]]) -> Counter[tuple[str, str, datetime]]:
    """(kind, subject, occurred_at) of charges → the state: (kind, subject, hour) → the
    number of the subject's charges in that hour."""
    return Counter((kind, subject, hour_of(at)) for kind, subject, at in charges)


def busy_threshold(rules: FraudRules) -> int:
    """⌈k/2⌉: a burst of k charges in at most two hours has this many in one of them."""
    return (rules.velocity_charges + 1) // 2


def served(rules: FraudRules) -> bool:
    """Whether the state's indexed rows find every burst these rules look for."""
    return rules.velocity_window <= STEP and busy_threshold(rules) >= MIN_BUSY


def ranges(
    rows: Iterable[tuple[str, str, datetime]], rules: FraudRules, start: datetime, end: datetime
) -> list[tuple[str, str, datetime, datetime]]:
    """(kind, subject, hour) of the busy rows (at least busy_threshold charges) → the
    stretches (kind, subject, from, to), [from, to), that hold every charge of every burst
    visible in [start, end): each row's [hour − 1 h, hour + 1 h + W) cut to the window,
    those of one subject that overlap or touch merged; sorted, disjoint."""
    before, after = STEP, STEP + rules.velocity_window
    cut = sorted(
        (kind, subject, max(h - before, start), min(h + after, end))
        for kind, subject, h in rows
        if max(h - before, start) < min(h + after, end)
    )
    merged: list[tuple[str, str, datetime, datetime]] = []
    for kind, subject, t0, t1 in cut:
        if merged and merged[-1][:2] == (kind, subject) and t0 <= merged[-1][3]:
            last = merged[-1]
            merged[-1] = (kind, subject, last[2], max(last[3], t1))
        else:
            merged.append((kind, subject, t0, t1))
    return merged


def first_hour(start: datetime) -> datetime:
    """The earliest busy row that can hold part of a burst visible from `start` on."""
    return hour_of(start)
