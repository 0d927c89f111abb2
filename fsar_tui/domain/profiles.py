"""Duration profiles from rollup rows: pure, so the screen and the CLI print the same.

Input: rows of (group key, outcome, metric, bucket, currency, n, total) already summed
over a window (db/profiles.py). Output: one Profile per group with
- n: finished tasks (succeeded + failed + cancelled), failure rate = failed /
  (succeeded + failed) — a cancel is the operator's doing, not the task's;
- run time (finished − started) of tasks that ran to an outcome (succeeded or failed):
  mean (exact, from sums), p50 / p90 / p99 (histogram, ≤ 0.8 % error), max (upper
  edge of the highest bucket, so within 0.8 % above the true max);
- queue-wait p90 over the same tasks;
- cost per successful task: all cost of the group (failures cost money too) divided by
  its successes, in the group's currency ("mixed" never happens in practice: costs are
  priced per model).
A p99 of 12 tasks means little: `samples` travels with every figure so screens can say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fsar_tui.domain.histogram import highest, quantile

RUN, WAIT, COST = 0, 1, 2
MIN_SAMPLES = 100  # below this many runs a p99 is a handful of tasks: screens and exports flag it
RAN = ("succeeded", "failed", "*")  # "*": compact rollup rows, every outcome that ran

Key = tuple[Any, ...]  # a group as the query grouped it: (type, model[, revision]); model may be None
Row = tuple[Any, ...]  # a database row as documented where it is read


@dataclass
class Profile:
    key: Key
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    run: dict[int, int] = field(default_factory=dict)
    run_total_ms: float = 0.0
    wait: dict[int, int] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def samples(self) -> int:
        return sum(self.run.values())

    @property
    def failure_rate(self) -> float | None:
        ran = self.succeeded + self.failed
        return self.failed / ran if ran else None

    @property
    def mean_ms(self) -> float | None:
        return self.run_total_ms / self.samples if self.samples else None

    def p(self, q: float) -> float | None:
        return quantile(self.run, q)

    @property
    def max_ms(self) -> float | None:
        return highest(self.run)

    @property
    def wait_p90_ms(self) -> float | None:
        return quantile(self.wait, 0.9)

    @property
    def cost_per_success(self) -> tuple[float, str] | None:
        if not self.succeeded or not self.cost:
            return None
        currency, total = max(self.cost.items(), key=lambda item: abs(item[1]))
        return total / self.succeeded, currency

    def add_finished(self, outcome: str, n: int, currency: str, cost: float) -> None:
        """A count/cost rollup row (metric COST): n tasks that ended with `outcome`."""
        if outcome == "succeeded":
            self.succeeded += n
        elif outcome == "failed":
            self.failed += n
        elif outcome == "cancelled":
            self.cancelled += n
        if currency:
            self.cost[currency] = self.cost.get(currency, 0.0) + cost


def build_from_sketches(rows: Iterable[Row]) -> list[Profile]:
    """rows: (type, model, outcome, metric, currency, buckets, counts, total) — a histogram
    per row as parallel arrays (db.profiles.SKETCH_SQL); keys are (type, model).
    Histograms are summed into flat lists indexed by bucket (list item updates are
    several times cheaper than dict ones; this loop is the profile screen's main cost)
    and turned into dicts once at the end."""
    profiles: dict[Key, Profile] = {}
    dense: dict[tuple[Key, int], list[int]] = {}  # (key, metric) -> counts by bucket
    get = profiles.get
    for task_type, model, outcome, metric, currency, buckets, counts, total in rows:
        key = (task_type, model)
        p = get(key)
        if p is None:
            p = profiles[key] = Profile(key)
        if metric == COST:
            p.add_finished(outcome, sum(counts), currency, total)
        elif outcome in RAN:
            acc = dense.get((key, metric))
            if acc is None:
                acc = dense[(key, metric)] = [0] * 2048
            top = max(buckets)
            if top >= len(acc):
                acc.extend([0] * (top + 1 - len(acc)))
            for bucket, n in zip(buckets, counts, strict=True):
                acc[bucket] += n
            if metric == RUN:
                p.run_total_ms += total
    for (key, metric), acc in dense.items():
        # A bucket whose samples cancelled out (retries) is no bucket.
        hist = {b: n for b, n in enumerate(acc) if n}
        if metric == RUN:
            profiles[key].run = hist
        else:
            profiles[key].wait = hist
    return sorted((p for p in profiles.values() if p.n), key=lambda p: p.key)


def build(rows: Iterable[Row]) -> list[Profile]:
    """rows: (key tuple, outcome, metric, bucket, currency, n, total). A hot loop (thousands
    of rows per refresh), hence the local names."""
    profiles: dict[Key, Profile] = {}
    get = profiles.get
    for key, outcome, metric, bucket, currency, n, total in rows:
        p = get(key)
        if p is None:
            p = profiles[key] = Profile(key)
        if metric == COST:
            p.add_finished(outcome, n, currency, total)
        elif n and outcome in RAN:
            if metric == RUN:
                p.run[bucket] = p.run.get(bucket, 0) + n
                p.run_total_ms += total
            else:
                p.wait[bucket] = p.wait.get(bucket, 0) + n
    return sorted((p for p in profiles.values() if p.n), key=lambda p: p.key)


def merge(parts: Iterable[Profile], key: Key = ("*",)) -> Profile:
    """One profile for several groups (an audit gate's scope): counts, histograms and
    costs add up, so its percentiles are those of the union."""
    out = Profile(key)
    for p in parts:
        out.succeeded += p.succeeded
        out.failed += p.failed
        out.cancelled += p.cancelled
        out.run_total_ms += p.run_total_ms
        for target, source in ((out.run, p.run), (out.wait, p.wait)):
            for bucket, n in source.items():
                target[bucket] = target.get(bucket, 0) + n
        for currency, total in p.cost.items():
            out.cost[currency] = out.cost.get(currency, 0.0) + total
    return out
