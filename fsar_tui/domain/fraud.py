"""Fraud flags: the rules, their thresholds, and how fetched figures become flags (pure).

A flag names a rule, its subject, one line of reason with the numbers, a severity (1–3)
and the ledger entries behind it: their ids newest first, at most `max_entries` (50) of
them, and `count`, how many there are in all (the charges in bursts, the disputes, the
day's refunds, the mismatched charges). db/fraud.py fetches the figures; this module
decides.

Rules and their defaults (FraudRules; all times UTC):

- velocity_customer / velocity_card — at least `velocity_charges` (5) charges (revenue
  entries) by one customer, or on one card (metadata card_fingerprint, which Stripe
  ingestion records; charges without one are not judged), within `velocity_window`
  (1 h). The window slides: any 5 consecutive charges whose first and last are less
  than an hour apart count, wherever the hour boundaries fall. One flag per subject;
  its entries are every charge that belongs to such a run, its reason the densest
  stretch (the most charges within one window length) and, when there are several,
  how many separate bursts and charges there were. Only charges inside the window
  asked for are seen, so a burst across its start or end is judged on its visible part.
- dispute_rate — disputes / charges > `dispute_rate` (1 %) for an idea, and for all
  ideas together (subject 'all'; charges attributed to no idea count only there), with
  at least `dispute_min_charges` (20) charges. Counted from the daily ledger rollup
  over the whole UTC days the window touches; a dispute counts on the day it was
  opened (its charge may be older). The entries are the disputes.
- refund_spike — a UTC day whose refund count is above max(`refund_floor` (5),
  mean + `refund_sigmas` (3) × standard deviation (population) of the
  `refund_history_days` (14) days before it), days without refunds counting as 0. A day
  is judged only when the ledger has entries from at least 14 days before it (a new
  ledger has no baseline). Subject: the day (YYYY-MM-DD); entries: its refunds.
- country_mismatch — a customer with at least `mismatch_charges` (3) charges in the
  window whose card country differs from the IP country (metadata card_country vs
  ip_country; charges missing either are not judged, nor charges without a customer).

Severity: 1 when a rule's threshold is crossed, 2 at 1.5 × the threshold, 3 at 2 ×
(velocity: charges in the densest window vs the minimum; disputes: the rate; refunds:
the day's count vs its threshold; country mismatch: charges vs the minimum). Flags sort
by severity, then count, highest first.

Subjects (customer ids, card fingerprints) are kept raw here; screens redact them.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

VELOCITY_CUSTOMER = "velocity_customer"
VELOCITY_CARD = "velocity_card"
DISPUTE_RATE = "dispute_rate"
REFUND_SPIKE = "refund_spike"
COUNTRY_MISMATCH = "country_mismatch"
RULES = (VELOCITY_CUSTOMER, VELOCITY_CARD, DISPUTE_RATE, REFUND_SPIKE, COUNTRY_MISMATCH)
ALL_IDEAS = "all"


@dataclass(frozen=True)
class Flag:
    rule: str
    subject: str
    reason: str
    severity: int
    entry_ids: tuple[int, ...]
    count: int


@dataclass(frozen=True)
class FraudRules:
    velocity_charges: int = 5
    velocity_window: timedelta = timedelta(hours=1)
    dispute_rate: float = 0.01
    dispute_min_charges: int = 20
    refund_floor: int = 5
    refund_sigmas: float = 3.0
    refund_history_days: int = 14
    mismatch_charges: int = 3
    max_entries: int = 50

    def __post_init__(self) -> None:
        if self.velocity_charges < 2:
            raise ValueError("velocity_charges must be at least 2")
        if self.velocity_window <= timedelta(0):
            raise ValueError("velocity_window must be positive")
        if not 0 <= self.dispute_rate < 1:
            raise ValueError("dispute_rate is a fraction in [0, 1)")
        if self.dispute_min_charges < 1 or self.mismatch_charges < 1 or self.refund_history_days < 1:
            raise ValueError("minimum counts and the refund history must be at least 1")
        if self.refund_floor < 0 or self.refund_sigmas < 0 or self.max_entries < 0:
            raise ValueError("refund_floor, refund_sigmas and max_entries cannot be negative")


def severity(value: float, threshold: float) -> int:
    """1 past the threshold, 2 at 1.5 ×, 3 at 2 ×."""
    if threshold > 0 and value >= 2 * threshold:
        return 3
    if threshold > 0 and value >= 1.5 * threshold:
        return 2
    return 1


def sort_flags(flags: Iterable[Flag]) -> list[Flag]:
    order = {rule: i for i, rule in enumerate(RULES)}
    return sorted(flags, key=lambda f: (-f.severity, -f.count, order.get(f.rule, len(order)), f.subject))


def window_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The UTC days [first, last] that the window [start, end) touches (rollup-based rules)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    return first, max(first, last)


def _duration(d: timedelta) -> str:
    s = d.total_seconds()
    if s % 3600 == 0:
        return f"{int(s // 3600)} h"
    if s % 60 == 0:
        return f"{int(s // 60)} min"
    return f"{s:g} s"


def _span(a: datetime, b: datetime) -> str:
    a, b = a.astimezone(UTC), b.astimezone(UTC)
    tail = f"{b:%H:%M}" if a.date() == b.date() else f"{b:%Y-%m-%d %H:%M}"
    return f"{a:%Y-%m-%d %H:%M}–{tail} UTC"


# -- velocity ---------------------------------------------------------------------------


def velocity_members(times: Sequence[datetime], k: int, window: timedelta) -> list[bool]:
    """For times sorted ascending: whether each one belongs to k consecutive times whose
    first and last are less than `window` apart (a sliding window)."""
    member = [False] * len(times)
    covered = 0  # member[:covered] is settled for the runs seen so far
    for i in range(len(times) - k + 1):
        if times[i + k - 1] - times[i] < window:
            for j in range(max(i, covered), i + k):
                member[j] = True
            covered = i + k
    return member


def velocity_bursts(times: Sequence[datetime], k: int, window: timedelta) -> int:
    """How many separate bursts (runs of qualifying windows that share a charge)."""
    bursts, end = 0, -1
    for i in range(len(times) - k + 1):
        if times[i + k - 1] - times[i] < window:
            if i > end:
                bursts += 1
            end = i + k - 1
    return bursts


def densest_window(times: Sequence[datetime], window: timedelta) -> tuple[int, int, int]:
    """(count, i, j): the most times within [times[i], times[i] + window), the first and
    last of them being times[i] and times[j]. (0, -1, -1) when there are none."""
    best, bi, bj, j, n = 0, -1, -1, 0, len(times)
    for i, t in enumerate(times):
        if j < i:
            j = i
        limit = t + window
        while j + 1 < n and times[j + 1] < limit:
            j += 1
        if j - i + 1 > best:
            best, bi, bj = j - i + 1, i, j
    return best, bi, bj


def velocity_flags(rule: str, charges: Iterable[tuple[str, datetime, int]], rules: FraudRules) -> list[Flag]:
    """Charges (subject, occurred_at, entry id) → one flag per subject with a burst.

    Exact on any set of charges that holds every charge of every burst (db/fraud.py
    sends those, not the whole window): a burst's charges all lie within windows of at
    least k charges, so leaving quiet charges out changes no window that counts.
    """
    k, window = rules.velocity_charges, rules.velocity_window
    by_subject: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for subject, at, entry_id in charges:
        by_subject[subject].append((at, entry_id))
    noun = "charges on one card" if rule == VELOCITY_CARD else "charges"
    flags = []
    for subject, rows in by_subject.items():
        rows.sort()
        times = [at for at, _ in rows]
        member = velocity_members(times, k, window)
        ids = [entry_id for (at, entry_id), m in zip(rows, member, strict=True) if m]
        if not ids:
            continue
        peak, i, j = densest_window(times, window)
        bursts = velocity_bursts(times, k, window)
        reason = f"{peak} {noun} in {_duration(window)} (threshold {k}) {_span(times[i], times[j])}"
        if bursts > 1 or len(ids) > peak:
            reason += f"; {len(ids)} in {bursts} burst{'s' if bursts > 1 else ''}"
        flags.append(
            Flag(rule, subject, reason, severity(peak, k), tuple(reversed(ids))[: rules.max_entries], len(ids))
        )
    return flags


# -- disputes, refunds ------------------------------------------------------------------


def dispute_rate_flags(
    totals: Iterable[tuple[str, int, int]], first: date, last: date, rules: FraudRules
) -> list[Flag]:
    """Per idea (charges, disputes) over the days [first, last] → flags per idea and for
    'all'. The entries are attached by the caller (db/fraud.py)."""
    per_idea: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for idea, charges, disputes in totals:
        per_idea[idea or ""][0] += charges
        per_idea[idea or ""][1] += disputes
    overall = [sum(c for c, _ in per_idea.values()), sum(d for _, d in per_idea.values())]
    days = f"{first:%Y-%m-%d}" if first == last else f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"
    flags = []
    candidates = [(idea, cd) for idea, cd in per_idea.items() if idea] + [(ALL_IDEAS, overall)]
    for subject, (charges, disputes) in candidates:
        if charges < rules.dispute_min_charges or disputes <= 0:
            continue
        rate = disputes / charges
        if rate <= rules.dispute_rate:
            continue
        reason = (
            f"{disputes} disputes / {charges} charges = {rate:.2%} "
            f"(threshold {rules.dispute_rate:.2%}, at least {rules.dispute_min_charges} charges) {days} UTC"
        )
        flags.append(Flag(DISPUTE_RATE, subject, reason, severity(rate, rules.dispute_rate), (), disputes))
    return flags


def refund_threshold(history: Sequence[int], rules: FraudRules) -> tuple[float, float, float]:
    """(threshold, mean, standard deviation) from the counts of the days before."""
    mean = statistics.fmean(history) if history else 0.0
    sd = statistics.pstdev(history) if len(history) > 1 else 0.0
    return max(float(rules.refund_floor), mean + rules.refund_sigmas * sd), mean, sd


def refund_spike_flags(
    daily: Mapping[date, int], first: date, last: date, history_from: date | None, rules: FraudRules
) -> list[Flag]:
    """Refunds per UTC day (missing days are 0) → a flag for each day in [first, last]
    above its threshold. `history_from`: the ledger's first day (None: empty ledger)."""
    n_hist = rules.refund_history_days
    flags = []
    day = first
    while day <= last:
        count = daily.get(day, 0)
        if history_from is not None and day - timedelta(days=n_hist) >= history_from and count > rules.refund_floor:
            history = [daily.get(day - timedelta(days=i), 0) for i in range(1, n_hist + 1)]
            threshold, mean, sd = refund_threshold(history, rules)
            if count > threshold:
                reason = (
                    f"{count} refunds on {day:%Y-%m-%d} UTC "
                    f"(threshold {threshold:.1f} = max({rules.refund_floor}, "
                    f"mean {mean:.1f} + {rules.refund_sigmas:g} × sd {sd:.1f} of the previous {n_hist} days))"
                )
                flags.append(Flag(REFUND_SPIKE, f"{day:%Y-%m-%d}", reason, severity(count, threshold), (), count))
        day += timedelta(days=1)
    return flags


# -- country mismatch -------------------------------------------------------------------


def country_mismatch_flags(
    groups: Iterable[tuple[str, str, str, int, Sequence[int], Sequence[datetime]]], rules: FraudRules
) -> list[Flag]:
    """Per (customer, card country, IP country): the number of mismatched charges and
    the newest of them (ids with their times, newest first) → one flag per customer."""
    per_customer: dict[str, list[tuple[str, str, int, Sequence[int], Sequence[datetime]]]] = defaultdict(list)
    for customer, card, ip, n, ids, times in groups:
        per_customer[customer].append((card, ip, n, ids, times))
    flags = []
    for customer, pairs in per_customer.items():
        total = sum(n for _, _, n, _, _ in pairs)
        if total < rules.mismatch_charges:
            continue
        newest = sorted(
            ((at, entry_id) for _, _, _, ids, times in pairs for entry_id, at in zip(ids, times, strict=True)),
            reverse=True,
        )[: rules.max_entries]
        card, ip, n, _, _ = max(pairs, key=lambda p: (p[2], p[0], p[1]))
        reason = f"{total} charges with card country ≠ IP country (threshold {rules.mismatch_charges})"
        reason += f": card {card}, IP {ip}" if len(pairs) == 1 else f", mostly card {card}, IP {ip} ({n})"
        flags.append(
            Flag(
                COUNTRY_MISMATCH,
                customer,
                reason,
                severity(total, rules.mismatch_charges),
                tuple(entry_id for _, entry_id in newest),
                total,
            )
        )
    return flags
