"""Log-bucketed duration histograms: the maths behind the duration rollups.

A duration x > 0 (milliseconds) goes into bucket

    i(x) = ceil(log_γ x),   so that   γ^(i-1) < x ≤ γ^i,

and a bucket is read back as the value that is relatively closest to everything in it,

    v(i) = 2·γ^i / (γ + 1).

For any x in bucket i the relative error |v(i) − x| / x is largest at the two edges:
at x = γ^i it is 1 − 2/(γ+1) = (γ−1)/(γ+1), and at x → γ^(i−1) it tends to
2γ/(γ+1) − 1 = (γ−1)/(γ+1). Choosing γ = (1+α)/(1−α) makes that bound exactly α
(the DDSketch construction). Here α = 0.8 %: a percentile read from a histogram is
within 0.8 % of the sample value at the same rank (the nearest-rank, `percentile_disc`
definition). `percentile_cont` interpolates between two neighbouring samples; with the
tens of thousands of samples per group that profiles are about, the neighbours are far
closer than the remaining 0.2 % of the 1 % budget, which `make bench` shows against the
exact values.

Durations below 1 ms share bucket 0 and read back as 0. With γ ≈ 1.0161, one day
(86,400,000 ms) is bucket 1,143: a smallint holds every duration up to ~10^220 ms.

The bucket function exists twice — here and as the SQL function
`fsar_duration_bucket` (revision 0013) that the rollup trigger uses — and a test
checks that both agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

ALPHA = 0.008
GAMMA = 1.008 / 0.992  # (1 + α) / (1 − α), written as SQL writes it: same double
SQL_GAMMA = "(1.008::float8 / 0.992::float8)"
LOG_GAMMA = math.log(GAMMA)


def bucket(ms: float) -> int:
    if ms < 1:
        return 0
    return max(1, math.ceil(math.log(ms) / LOG_GAMMA))


def bucket_value(i: int) -> float:
    """The representative duration (ms) of bucket i; 0 for bucket 0."""
    if i <= 0:
        return 0.0
    return 2 * GAMMA**i / (GAMMA + 1)


def bucket_upper(i: int) -> float:
    """The largest duration bucket i holds (ms): an upper bound for "max"."""
    return 0.0 if i <= 0 else GAMMA**i


def quantile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0 ≤ q ≤ 1) of a histogram {bucket: count}: the representative of
    the bucket holding the sample of rank floor(q·(n−1)) (0-based), as percentile_disc
    would pick it. None when the histogram is empty."""
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    total = sum(n for n in histogram.values() if n > 0)
    if total == 0:
        return None
    rank = math.floor(q * (total - 1))
    seen = 0
    for i in sorted(histogram):
        n = histogram[i]
        if n <= 0:
            continue
        seen += n
        if seen > rank:
            return bucket_value(i)
    raise AssertionError("unreachable: rank < total")


def histogram_of(values: Iterable[float]) -> dict[int, int]:
    out: dict[int, int] = {}
    for value in values:
        i = bucket(value)
        out[i] = out.get(i, 0) + 1
    return out


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for histogram in histograms:
        for i, n in histogram.items():
            out[i] = out.get(i, 0) + n
    return {i: n for i, n in out.items() if n}


def highest(histogram: Mapping[int, int]) -> float | None:
    """Upper edge of the highest non-empty bucket (within α above the true max)."""
    filled = [i for i, n in histogram.items() if n > 0]
    return bucket_upper(max(filled)) if filled else None
