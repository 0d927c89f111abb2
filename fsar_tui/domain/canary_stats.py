"""The statistics primitives of the canary judge (fsar_tui/domain/canary_judge.py).

Pure, standard library only (math; no numpy/scipy): every function here is a closed
form or an O(buckets) pass, because the judge runs at every look of every canary and the
error-rate simulation (canary_simulation.py) calls it tens of thousands of times.

- ``binomial_sf`` — the exact binomial upper tail, summed term by term from the end
  nearer the requested tail (O(a few standard deviations) terms, log-gamma for the first):
  the failure-rate test must stay exact at the handful of failures a young canary has,
  where a z test's normal tail is far too light and would abort healthy canaries.
- ``rate_ratio_p`` — the conditional test of a rate ratio: given k = a + c failures in
  n₁ + n₂ attempts, a ~ Binomial(k, ρ·n₁ / (ρ·n₁ + n₂)) when the canary's rate is ρ × the
  stable's (attempt failures treated as Poisson counts over the attempts). Exact at any
  count under that model, and conservative for binomial data at the rates that matter
  (given the total, binomial counts are less dispersed than the Poisson model says; the
  risk vs odds ratio difference at a few % is far smaller): it errs towards not aborting.
  The pass bound uses Katz instead because it is the interval the operator reads.
- ``katz_log_ratio`` — the log rate ratio and its Katz (1978) standard error,
  √(1/a − 1/n₁ + 1/c − 1/n₂), with ½ added to each cell of the 2×2 table when a failure
  count is 0 (Haldane): the textbook interval for a ratio of proportions, cheap and
  close to nominal once each arm has a few failures (min_samples sees to that).
- ``Ranks`` — the Mann–Whitney U of two log-bucket histograms (histogram.py) with the
  canary shifted down by d buckets, bins as tied groups with the usual tie-corrected
  variance: both arms dense over their buckets, U(d) and the ties are three dot products
  of the canary's counts with the stable arm's half-ranks, counts and squared counts
  aligned at the shift: O(buckets), never O(n²). Rank tests because run times and token counts are
  skewed and heavy-tailed and only their histograms exist; shifts in whole buckets
  because a bucket is the resolution of the data (γ ≈ 1.016: 1.6 % of relative size).
  ``first_shift`` inverts the test over shifts (galloping + bisection on the monotone
  statistic), which gives the Hodges–Lehmann shift and the confidence bounds.
- ``ratio_of_means`` — log(Σcost / successes) and its delta-method variance from the
  sums alone (n, Σc, Σc², Σ success-cost, successes): a ratio estimator, because cost per
  success is a ratio of two per-task means that covary (a failed task costs and does not
  succeed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from itertools import accumulate
from operator import add, mul

_SQRT2 = math.sqrt(2.0)
_TAIL_EPS = 1e-17


def upper_p(z: float) -> float:
    """P(Z ≥ z) for a standard normal, accurate far into the tail (erfc, not 1 − Φ)."""
    return 0.5 * math.erfc(z / _SQRT2)


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), exact to double precision."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    q = 1.0 - p
    if k > n * p:  # the upper tail itself: its terms fall from k on
        term = _pmf(k, n, p, q)
        total, j, ratio = term, k, p / q
        while j < n and term > total * _TAIL_EPS:
            term *= (n - j) / (j + 1) * ratio
            j += 1
            total += term
        return min(1.0, total)
    term = _pmf(k - 1, n, p, q)  # 1 − P(X ≤ k − 1): those terms fall from k − 1 down
    total, j, ratio = term, k - 1, q / p
    while j > 0 and term > total * _TAIL_EPS:
        term *= j / (n - j + 1) * ratio
        j -= 1
        total += term
    return max(0.0, 1.0 - total)


def _pmf(j: int, n: int, p: float, q: float) -> float:
    return math.exp(
        math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * math.log(p) + (n - j) * math.log(q)
    )


def rate_ratio_p(a: int, n1: int, c: int, n2: int, ratio: float) -> float:
    """One-sided p of "canary's failure rate > ratio × stable's" (a of n1 canary attempts
    failed, c of n2 stable): the conditional binomial test described above."""
    k = a + c
    if k == 0 or n1 <= 0 or n2 <= 0:
        return 1.0
    share = ratio * n1 / (ratio * n1 + n2)
    return binomial_sf(a, k, share)


def katz_log_ratio(a: int, n1: int, c: int, n2: int) -> tuple[float, float]:
    """(log(rate₁ / rate₂), its Katz standard error); ½ per cell when a or c is 0."""
    fa, fn1, fc, fn2 = float(a), float(n1), float(c), float(n2)
    if a == 0 or c == 0:
        fa, fc, fn1, fn2 = fa + 0.5, fc + 0.5, fn1 + 1.0, fn2 + 1.0
    log_ratio = math.log(fa / fn1) - math.log(fc / fn2)
    se = math.sqrt(max(0.0, 1 / fa - 1 / fn1 + 1 / fc - 1 / fn2))
    return log_ratio, se


def ratio_of_means(
    n: int, total: Decimal, total_sq: Decimal, success_total: Decimal, successes: int
) -> tuple[float, float] | None:
    """(log(total / successes), delta-method variance of it) from one arm's per-task sums,
    or None when it is undefined (no successes, no cost, fewer than 2 tasks)."""
    if successes <= 0 or total <= 0 or n < 2:
        return None
    dn = Decimal(n)
    var_c = (total_sq - total * total / dn) / (dn - 1)
    var_s = (Decimal(successes) - Decimal(successes) * successes / dn) / (dn - 1)
    cov = (success_total - total * successes / dn) / (dn - 1)
    mean_c, mean_s = total / dn, Decimal(successes) / dn
    rel = var_c / (mean_c * mean_c) + var_s / (mean_s * mean_s) - 2 * cov / (mean_c * mean_s)
    return math.log(float(total) / successes), max(0.0, float(rel) / n)


class Ranks:
    """Two histograms {bucket: count} prepared for Mann–Whitney tests at any shift d:
    U(d) = #{(x, y): x − d > y} + ½ #{x − d = y} over canary buckets x and stable y.

    Both arms are held dense over their bucket ranges, so one U(d) is three dot products
    of the canary's counts with the stable arm's half-ranks, counts and squared counts
    aligned at the shift (C-level sum(map(mul, …)), exact integers)."""

    __slots__ = ("c_lo", "c", "c2", "lo", "s", "s2", "h2", "n_c", "n_s", "cubes", "first", "last")

    def __init__(self, canary: Mapping[int, int], stable: Mapping[int, int]) -> None:
        # Zero counts may stay (they add nothing); negative ones are the caller's to refuse.
        self.n_c, self.n_s = sum(canary.values()), sum(stable.values())
        if self.n_c <= 0 or self.n_s <= 0:
            raise ValueError("both histograms need samples")
        self.c_lo, self.c = _dense(canary)
        self.lo, self.s = _dense(stable)
        self.c2 = list(map(mul, self.c, self.c))
        self.s2 = list(map(mul, self.s, self.s))
        # 2 × (stable samples below the bucket + ½ those in it): twice the half-rank, an integer.
        self.h2 = list(map(add, accumulate(self.s, initial=0), accumulate(self.s)))
        self.cubes = sum(map(mul, self.c, self.c2)) + sum(map(mul, self.s, self.s2))
        # Shifts beyond these put every canary sample below (U = 0) / above (U = n_c·n_s).
        self.first = self.c_lo - (self.lo + len(self.s) - 1) - 1
        self.last = self.c_lo + len(self.c) - 1 - self.lo + 1

    def _aligned(self, values: list[int], d: int, right: int) -> list[int]:
        """values (stable, dense) at the positions the canary's buckets take at shift d;
        0 below the stable range and `right` above it."""
        start = self.c_lo - d - self.lo
        n, size = len(self.c), len(values)
        left_pad = min(n, max(0, -start))
        right_pad = min(n - left_pad, max(0, start + n - size))
        middle = values[max(0, start) : max(0, min(size, start + n))]
        return [0] * left_pad + middle + [right] * right_pad

    def u(self, d: int) -> tuple[float, float]:
        """(U(d), its null variance with the tie correction for the groups at shift d)."""
        u2 = sum(map(mul, self.c, self._aligned(self.h2, d, 2 * self.n_s)))
        cross = sum(map(mul, self.c, self._aligned(self.s2, d, 0))) + sum(
            map(mul, self.c2, self._aligned(self.s, d, 0))
        )
        total = self.n_c + self.n_s
        ties = self.cubes + 3 * cross - total  # Σ(t³ − t) over the tied groups
        var = self.n_c * self.n_s / 12.0 * ((total + 1) - ties / (total * (total - 1)))
        return u2 / 2, max(0.0, var)

    def z(self, d: int, correction: float) -> float:
        """(U(d) − E U + correction) / SD: correction −½ for "canary greater" tests, +½
        for "canary smaller" ones (the continuity correction); 0 with no spread at all."""
        u, var = self.u(d)
        if var <= 0.0:
            return 0.0
        return (u - self.n_c * self.n_s / 2.0 + correction) / math.sqrt(var)

    def p_greater(self, d: int) -> float:
        """One-sided p of "canary shifted down by d buckets is still larger than stable"."""
        return upper_p(self.z(d, -0.5))

    def start(self) -> int:
        """The difference of the two medians in buckets: where the searches begin."""
        return _median_bucket(self.c_lo, self.c) - _median_bucket(self.lo, self.s)

    def hodges_lehmann(self) -> int:
        """The shift d (buckets) at which U(d) is closest to its null mean: the
        Hodges–Lehmann estimate (the median pairwise difference), whole buckets."""
        mean = self.n_c * self.n_s / 2.0
        d = first_shift(lambda d: self.u(d)[0] <= mean, self.start(), self.first, self.last)
        if d > self.first and abs(self.u(d - 1)[0] - mean) < abs(self.u(d)[0] - mean):
            return d - 1
        return d


def _dense(histogram: Mapping[int, int]) -> tuple[int, list[int]]:
    """(lowest bucket, counts from it to the highest) of a non-empty histogram."""
    lo = min(histogram)
    get = histogram.get
    return lo, [get(i, 0) for i in range(lo, max(histogram) + 1)]


def _median_bucket(lo: int, counts: list[int]) -> int:
    half = (sum(counts) - 1) // 2
    for j, seen in enumerate(accumulate(counts)):
        if seen > half:
            return lo + j
    return lo + len(counts) - 1


def first_shift(pred: Callable[[int], bool], start: int, lowest: int, highest: int) -> int:
    """The smallest d in [lowest, highest] with pred(d), for pred monotone (False … True)
    in d; highest + 1 when there is none. Gallops from start, then bisects."""
    start = min(max(start, lowest), highest)
    if pred(start):
        hi, step = start, 1
        while True:
            lo = hi - step
            if lo < lowest:
                lo = lowest - 1
                break
            if not pred(lo):
                break
            hi, step = lo, step * 2
    else:
        lo, step = start, 1
        while True:
            hi = lo + step
            if hi > highest:
                if not pred(highest):
                    return highest + 1
                hi = highest
                break
            if pred(hi):
                break
            lo, step = hi, step * 2
    while hi - lo > 1:  # pred(lo) is False (or lo < lowest), pred(hi) is True
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid
    return hi
