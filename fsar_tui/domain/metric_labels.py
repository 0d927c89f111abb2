"""Prometheus label values and histogram buckets for `fsar-tui metrics` (issue 20): pure.

Label values. Task types, models, gates, targets (and currencies) are written by agents
and operators: untrusted. `label_value` makes one inert — control characters and
invisible format characters removed (domain/sanitize.one_line), a newline shown as ␤,
at most MAX_LABEL_CHARS characters — and prometheus-client escapes what is left that the
text format gives a meaning to (backslash, double quote, newline), so a value can neither
end its label, add one, nor start a line. Two raw values that clean to the same text
become one series (their values summed): the exposition never holds a label set twice.

Cardinality: two bounds, one plan each per scrape, shared by every metric of the scrape.
- Values: each label name (task_type, ai_model, gate, target, currency) keeps at most
  `limit` (max_label_values) distinct values: when there are more, the `limit − 1` with
  the largest weight keep their names, ties broken by name, and every other value
  becomes OTHER, its series summed into one. A 0/1 gauge folded into OTHER therefore
  counts (how many of the folded gates fail). A real value spelled "other" shares it.
- Pairs: values alone do not bound series — 60 types × 60 models within a limit of 60
  are 3,600 (task_type, ai_model) pairs, ~360,000 series. So the metrics labelled by
  both (queue gauges, finished counter, both histograms, cost, waste, drift) keep at
  most `max_pairs` distinct pairs, after the values are folded: when more, the
  `max_pairs − 1` heaviest pairs (ties by the pair's names) keep theirs and every
  other pair becomes (OTHER, OTHER) — never (type, OTHER): that could need one more
  pair per type. That (OTHER, OTHER) adds OTHER to both labels, so when the pair plan
  folds, a label whose plan named exactly `limit` values keeps only its `limit − 1`
  heaviest and the pairs are planned again (scrape_plans). A metric's other labels
  (status, currency) are kept, so it has at most max_pairs series per status or
  currency. One pair plan for the scrape: a pair
  is named in every metric or in none, and a type or model is named in a pair only if
  its label plan names it (task_type-only metrics follow the label plan). A named type
  whose lighter pairs were folded counts those in (OTHER, OTHER), so `sum by (task_type)`
  over the named pairs of a type can be below its own total.
- Totals are kept: every series is added into exactly one exported series, so a
  metric's sum over its series equals its unfolded sum.

Ranking. Task types, models and pairs weigh their tasks finished in all time (the cost
rollups' counts the exporter reads anyway; never execution_tasks), currencies likewise;
not the live queue, whose counts move every scrape: ranked by them, a type would swap
between its name and OTHER as its queue rose and fell, and its counters (*_total, the
histograms) would vanish and come back, `other` jumping down and up — read by
Prometheus as resets. All-time counts only grow (an operator retry, which takes a task
out of the rollups, is already a counter reset), so queue changes never move a value,
and while the named values and pairs stay the same each named counter is the unfolded
counter itself and OTHER the sum of the rest: neither decreases. What can still happen,
inherent to a bound with no memory across scrapes: a value or pair whose all-time count
overtakes the lightest named one (a new heavy type or model) takes its place; the
displaced series disappears (stale in Prometheus) and its total moves into OTHER, while
the newcomer's series appears with its whole history, which leaves OTHER: OTHER's
counters can drop in that scrape (the newcomer has more tasks than the one it
displaced): one counter reset of OTHER to Prometheus, one spike of its rate(). Values
with no finished task yet weigh 0 and are ranked by name: a new one may take another's
place, but such values carry only gauges. Gates and targets weigh what needs attention (a failing hard gate
before a passing soft one, an aborted canary): their metrics are all gauges.

Buckets. The duration rollups hold log buckets (domain/histogram.py: bucket i holds
durations in (γ^(i−1), γ^i] ms, γ ≈ 1.0161; bucket 0 everything below 1 ms). Prometheus
wants cumulative counts at fixed upper bounds (`le`, seconds): LE_SECONDS, the
1–1.5–2–3–5–7 series from 10 ms to 100,000 s (43 bounds, then +Inf). A log bucket counts
at `le` = L when its upper edge is below L; the one that straddles L (lower edge below,
upper edge at or above) counts at the next bound up. So the count exported at L is the
exact number of durations ≤ L′ for some L′ in (L/γ, L]: durations in the last 1.6 % below
a bound land one `le` too high, never lower, and `+Inf` (= `_count`) is exact. `_sum` is
the rollups' exact sum of values.

What that means for `histogram_quantile` (it interpolates linearly inside the `le`
interval where the rank falls): its estimate and the true quantile lie in the same
interval (L_{k−1}/γ, L_k], so they differ by at most a factor STEP·γ ≈ 1.69 (STEP = 5/3,
the widest ratio of neighbouring bounds, 3 → 5): QUANTILE_ERROR ≈ 69 % in the worst
case — a distribution whose mass sits at one end of the interval; with the spread of
real run times it is a few percent. fsar-tui's own percentiles (screen 2, `profile`)
read the log buckets themselves and stay within 0.8 %.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from fsar_tui.domain.histogram import GAMMA, bucket
from fsar_tui.domain.sanitize import one_line

OTHER = "other"  # the series every folded value is summed into
MAX_LABEL_CHARS = 120  # a longer value is cut (with "…"): Prometheus keeps every value in its index
DEFAULT_MAX_LABEL_VALUES = 50  # config.toml [metrics] max_label_values, --max-label-values
MAX_LABEL_VALUES = 10_000
# config.toml [metrics] max_pairs, --max-pairs: ~95 series a pair (two histograms of 46,
# 3 statuses, gauges, money per currency), so at most ~10,000 series a scrape by default.
DEFAULT_MAX_PAIRS = 100
MAX_PAIRS = MAX_LABEL_VALUES
PAIR_LABELS = ("task_type", "ai_model")
OTHER_PAIR = (OTHER, OTHER)

MANTISSAS = ("1", "1.5", "2", "3", "5", "7")
# Written as decimal text, so each bound is the float nearest its decimal (0.015, not
# 0.015000000000000001): the `le` labels read as typed.
LE_SECONDS: tuple[float, ...] = (*(float(f"{m}e{e}") for e in range(-2, 5) for m in MANTISSAS), 1e5)
# Per bound, the first log bucket that does NOT count at it: bucket i counts at bound k
# when i < LIMITS[k], i.e. γ^i < L (bucket() is the SQL's own bucket function).
LIMITS: tuple[int, ...] = tuple(bucket(le * 1000) for le in LE_SECONDS)
STEP = max(b / a for a, b in itertools.pairwise(LE_SECONDS))
QUANTILE_ERROR = STEP * GAMMA - 1
BOUND_ERROR = GAMMA - 1  # how far below a bound a duration may be and still count one bound up

K = tuple[str, ...]
Pair = tuple[str, str]
V = TypeVar("V")
N = TypeVar("N", str, Pair)


def label_value(raw: object) -> str:
    """One label value, inert: None is "" (Prometheus reads an empty value as no label),
    controls and format characters removed, newlines shown as ␤, cut to MAX_LABEL_CHARS."""
    if raw is None:
        return ""
    text = one_line(str(raw))
    if len(text) > MAX_LABEL_CHARS:
        text = text[: MAX_LABEL_CHARS - 1] + "…"
    return text


def clean(series: Iterable[tuple[Sequence[object], V]], add: Callable[[V, V], V]) -> dict[K, V]:
    """(raw label values, value) pairs → {cleaned label values: value}, values of keys that
    clean to the same text added up."""
    out: dict[K, V] = {}
    cleaned: dict[object, str] = {}  # this call's: a scrape repeats each value thousands of times
    for raw, value in series:
        key = tuple(cleaned[v] if v in cleaned else cleaned.setdefault(v, label_value(v)) for v in raw)
        out[key] = add(out[key], value) if key in out else value
    return out


def _keep(weights: Mapping[N, float], limit: int, other: N) -> dict[N, N]:
    if len(weights) <= limit:
        return {v: v for v in weights}
    return _heaviest(weights, limit - 1, other)


def _heaviest(weights: Mapping[N, float], names: int, other: N) -> dict[N, N]:
    # `other` itself (a real value spelled so, or a pair renamed to it) is where the rest
    # go anyway: it takes none of the `names` places.
    ranked = sorted((v for v in weights if v != other), key=lambda v: (-weights[v], v))
    kept = set(ranked[:names])
    return {v: v if v in kept else other for v in weights}


def keep_names(weights: Mapping[str, float], limit: int) -> dict[str, str]:
    """value → the value exported for it: itself while there are at most `limit` values;
    else the `limit − 1` heaviest (ties: by name) keep theirs and the rest become OTHER,
    so at most `limit` distinct values are exported."""
    if not 1 <= limit <= MAX_LABEL_VALUES:
        raise ValueError(f"the label limit must be 1..{MAX_LABEL_VALUES}, got {limit}")
    return _keep(weights, limit, OTHER)


def keep_pairs(weights: Mapping[Pair, float], limit: int) -> dict[Pair, Pair]:
    """keep_names for (task_type, ai_model) pairs: the `limit − 1` heaviest (ties: by the
    names) keep theirs when there are more than `limit`, the rest become (OTHER, OTHER)."""
    if not 1 <= limit <= MAX_PAIRS:
        raise ValueError(f"the pair limit must be 1..{MAX_PAIRS}, got {limit}")
    return _keep(weights, limit, OTHER_PAIR)


def pair_plan(
    seen: Iterable[Pair], weights: Mapping[Pair, float], plan: Mapping[str, Mapping[str, str]], limit: int
) -> dict[Pair, Pair]:
    """keep_pairs over the pairs `seen`, each first renamed by the label plans (as fold
    renames them; the weights of pairs that then coincide added, a pair without a weight
    weighing 0): keys and values are pairs after the label plans."""
    renamed: dict[Pair, float] = {}
    for pair, weight in weights.items():
        key = _rename_pair(pair, plan)
        renamed[key] = renamed.get(key, 0.0) + weight
    return keep_pairs({p: renamed.get(p, 0.0) for p in {_rename_pair(p, plan) for p in seen}}, limit)


def _rename_pair(pair: Pair, plan: Mapping[str, Mapping[str, str]]) -> Pair:
    types, models = plan.get("task_type"), plan.get("ai_model")
    t, m = pair
    return (t if types is None else types.get(t, OTHER), m if models is None else models.get(m, OTHER))


def plans(
    seen: Mapping[str, Iterable[str]], weights: Mapping[str, Mapping[str, float]], limit: int
) -> dict[str, dict[str, str]]:
    """One keep_names plan per label name: every value `seen` under it, weighed by
    `weights[label]` (a value without a weight weighs 0)."""
    out: dict[str, dict[str, str]] = {}
    for label, values in seen.items():
        known = weights.get(label, {})
        out[label] = keep_names({v: known.get(v, 0.0) for v in set(values)}, limit)
    return out


def scrape_plans(
    seen: Mapping[str, Iterable[str]],
    weights: Mapping[str, Mapping[str, float]],
    pairs: Iterable[Pair],
    pair_weights: Mapping[Pair, float],
    limit: int,
    max_pairs: int,
) -> tuple[dict[str, dict[str, str]], dict[Pair, Pair]]:
    """The label plans and the pair plan of one scrape (plans, then pair_plan), with room
    for the pair fold's OTHER: a pair folded into (OTHER, OTHER) adds OTHER to task_type
    and ai_model, so a label whose plan names exactly `limit` values, none of them OTHER,
    would export `limit + 1`. Such a label is planned again keeping its `limit − 1`
    heaviest names (ties by name; the rest become OTHER), then the pairs are planned again
    over the new names. Neither label then exceeds `limit` whatever the new pair plan
    folds: both already hold OTHER, or have fewer than `limit` names."""
    pairs = set(pairs)
    plan = plans(seen, weights, limit)
    pair = pair_plan(pairs, pair_weights, plan, max_pairs)
    if OTHER_PAIR not in pair.values():
        return plan, pair
    crowded = [label for label in PAIR_LABELS if len(set(plan.get(label, {}).values()) | {OTHER}) > limit]
    if not crowded:
        return plan, pair
    for label in crowded:
        known = weights.get(label, {})
        plan[label] = _heaviest({v: known.get(v, 0.0) for v in plan[label]}, limit - 1, OTHER)
    return plan, pair_plan(pairs, pair_weights, plan, max_pairs)


def fold(
    series: Mapping[K, V],
    labels: Sequence[str],
    plan: Mapping[str, Mapping[str, str]],
    add: Callable[[V, V], V],
    pairs: Mapping[Pair, Pair] | None = None,
) -> dict[K, V]:
    """`series` (keys: values of `labels`, in order) with each value renamed by its label's
    plan (a label without a plan, e.g. status, is kept; a value the plan never saw becomes
    OTHER), then — when `labels` hold task_type and ai_model and a pair plan is given —
    each (task_type, ai_model) renamed by it (a pair it never saw becomes (OTHER, OTHER)),
    and the series that now share a key added up."""
    rename = [plan.get(label) for label in labels]
    at = [labels.index(label) for label in PAIR_LABELS] if pairs is not None and set(PAIR_LABELS) <= set(labels) else []
    out: dict[K, V] = {}
    for key, value in series.items():
        new = _renamed(key, rename, at, pairs)
        out[new] = add(out[new], value) if new in out else value
    return out


def _renamed(
    key: K, rename: Sequence[Mapping[str, str] | None], at: Sequence[int], pairs: Mapping[Pair, Pair] | None
) -> K:
    new = tuple(v if names is None else names.get(v, OTHER) for v, names in zip(key, rename, strict=True))
    if at and pairs is not None:
        t, m = pairs.get((new[at[0]], new[at[1]]), OTHER_PAIR)
        new = tuple(t if i == at[0] else m if i == at[1] else v for i, v in enumerate(new))
    return new


@dataclass(frozen=True)
class Histogram:
    """A Prometheus histogram's data: cumulative counts at LE_SECONDS then +Inf (the
    count), and the sum of the values in seconds."""

    buckets: tuple[int, ...]
    sum_s: float

    @property
    def count(self) -> int:
        return self.buckets[-1]

    def __add__(self, other: Histogram) -> Histogram:
        if len(self.buckets) != len(other.buckets):
            raise ValueError("histograms of different ladders")
        return Histogram(tuple(map(operator.add, self.buckets, other.buckets)), self.sum_s + other.sum_s)


def cumulative(log_buckets: Mapping[int, int]) -> tuple[int, ...]:
    """Log buckets {i: n} → cumulative counts at LE_SECONDS, then +Inf. Empty or negative
    buckets (a retry's −1 outweighing its bucket: never in a consistent rollup) count 0,
    as domain/histogram.quantile reads them, so the counts never decrease along `le`."""
    per = [0] * (len(LIMITS) + 1)
    for i, n in log_buckets.items():
        if n > 0:
            per[bisect.bisect_right(LIMITS, i)] += n
    return tuple(itertools.accumulate(per))


def histogram(log_buckets: Mapping[int, int], total_ms: float) -> Histogram:
    """The Prometheus histogram of log buckets whose values (ms) add up to `total_ms`."""
    return Histogram(cumulative(log_buckets), total_ms / 1000)
