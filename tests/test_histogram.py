"""Log-bucket histograms, the window cover and profile building: pure logic, property-tested."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.domain import histogram, profiles, rollup_windows
from fsar_tui.domain.histogram import ALPHA, bucket, bucket_value, histogram_of, quantile

durations = st.floats(min_value=1.0, max_value=1e10, allow_nan=False, allow_infinity=False)


@given(durations)
def test_a_bucket_reads_back_within_alpha(x):
    assert abs(bucket_value(bucket(x)) - x) / x <= ALPHA * (1 + 1e-9)
    assert histogram.bucket_upper(bucket(x)) >= x * (1 - 1e-12)


def test_sub_millisecond_durations_read_back_as_zero():
    assert bucket(0) == bucket(0.999) == 0 and bucket_value(0) == 0
    assert quantile({}, 0.5) is None


@st.composite
def samples(draw):
    """Random distributions: lognormal, bimodal, uniform, with ties and outliers."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 3000))
    kind = draw(st.sampled_from(["lognormal", "bimodal", "uniform", "ties"]))
    rng = random.Random(seed)
    if kind == "lognormal":
        mu, sigma = draw(st.floats(0, 14)), draw(st.floats(0.01, 2.5))
        return [rng.lognormvariate(mu, sigma) + 1 for _ in range(n)]
    if kind == "bimodal":
        return [rng.choice([rng.gauss(200, 10), rng.gauss(90_000, 5_000)]) for _ in range(n)]
    if kind == "uniform":
        return [rng.uniform(1, 1e7) for _ in range(n)]
    return [float(rng.choice([5, 5, 5, 1200, 1200, 3e6])) for _ in range(n)]


@settings(max_examples=300, deadline=None)
@given(samples(), st.sampled_from([0.0, 0.5, 0.9, 0.99, 0.999, 1.0]))
def test_percentiles_from_the_histogram_are_within_alpha_of_the_exact_ones(values, q):
    exact = sorted(values)[math.floor(q * (len(values) - 1))]  # percentile_disc
    got = quantile(histogram_of(values), q)
    assert abs(got - exact) / exact <= ALPHA * (1 + 1e-9)


@given(samples(), samples())
def test_merging_histograms_equals_the_histogram_of_the_union(a, b):
    assert histogram.merge([histogram_of(a), histogram_of(b)]) == histogram_of(a + b)


def test_the_sql_bucket_function_agrees_with_python(db_dsn):
    rng = random.Random(3)
    edges = [histogram.GAMMA**i for i in range(1, 1500, 7)]
    values = [
        0.0,
        0.5,
        1.0,
        1.0000001,
        *edges,
        *(e * (1 + 1e-12) for e in edges),
        *(rng.lognormvariate(8, 3) for _ in range(2000)),
    ]
    with psycopg.connect(db_dsn) as conn:
        got = conn.execute(
            "SELECT fsar_duration_bucket(x) FROM unnest(%s::float8[]) WITH ORDINALITY AS u(x, i) ORDER BY i", (values,)
        ).fetchall()
    assert [g for (g,) in got] == [bucket(v) for v in values]


moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))


@settings(max_examples=400)
@given(moments, st.integers(0, 24 * 90), st.integers(-1, 24 * 10))
def test_the_cover_tiles_the_window_with_aligned_disjoint_pieces(end, hours_back, now_after_h):
    start = end - timedelta(hours=hours_back, minutes=17)
    now = end + timedelta(hours=now_after_h) if now_after_h >= 0 else end  # -1: the window ends now
    pieces = rollup_windows.cover(start, end, now)
    if not pieces:
        assert end <= start
        return
    t = pieces[0][1]
    expected_start = rollup_windows.floor_hour(start)
    if expected_start < rollup_windows.floor_day(now - rollup_windows.HOUR_HORIZON):
        expected_start = rollup_windows.floor_day(expected_start)
        assert all(
            g != rollup_windows.HOUR or s >= rollup_windows.floor_day(now - rollup_windows.HOUR_HORIZON)
            for g, s in pieces
        )  # hour rows are only read where they are kept
    assert t == expected_start
    for grain, piece_start in pieces:
        assert piece_start == t  # contiguous, no overlap
        if grain != rollup_windows.HOUR:
            assert rollup_windows.block_start(piece_start, grain) == piece_start  # aligned as stored
        t = piece_start + rollup_windows.span(grain)
    old_end = rollup_windows.floor_day(end) < rollup_windows.floor_day(now - rollup_windows.HOUR_HORIZON)
    whole_day = old_end or end >= now  # a window ending now reads today's day row
    assert t >= end and t - end < (timedelta(days=1) if whole_day else timedelta(hours=1))  # the open hour / day


def test_thirty_whole_days_take_few_blocks():
    now = datetime(2026, 11, 25, 17, 30, tzinfo=UTC)
    pieces = rollup_windows.cover(now - timedelta(days=30), now, now)
    blocks = [p for p in pieces if p[0] != rollup_windows.HOUR]
    assert sum((rollup_windows.span(g) for g, _ in blocks), timedelta()) >= timedelta(days=28)
    assert len(blocks) <= 10 and len(pieces) == len(blocks)  # no hour rows for a window ending now


def test_profiles_from_rows():
    b = bucket
    rows = [
        (("t", "m"), "succeeded", profiles.COST, 0, "USD", 3, 300.0),
        (("t", "m"), "failed", profiles.COST, 0, "USD", 1, 100.0),
        (("t", "m"), "cancelled", profiles.COST, 0, "", 1, 0.0),
        (("t", "m"), "succeeded", profiles.RUN, b(1000), "", 2, 2000.0),
        (("t", "m"), "succeeded", profiles.RUN, b(5000), "", 1, 5000.0),
        (("t", "m"), "failed", profiles.RUN, b(9000), "", 1, 9000.0),
        (("t", "m"), "succeeded", profiles.WAIT, b(50), "", 3, 150.0),
        (("t", "m"), "failed", profiles.WAIT, b(70), "", 1, 70.0),
    ]
    (p,) = profiles.build(rows)
    assert (p.n, p.succeeded, p.failed, p.cancelled, p.samples) == (5, 3, 1, 1, 4)
    assert p.failure_rate == 0.25 and p.mean_ms == 4000.0
    assert abs(p.p(0.5) - 1000) / 1000 <= ALPHA and abs(p.p(1.0) - 9000) / 9000 <= ALPHA
    assert abs(p.wait_p90_ms - 50) / 50 <= ALPHA and p.max_ms >= 9000  # rank floor(0.9 · 3) = 2: a 50
    assert p.cost_per_success == (400 / 3, "USD")


@settings(max_examples=300)
@given(moments, st.integers(0, 24 * 90), st.integers(-40, 2))
def test_pieces_as_stored_tile_the_same_span_and_sketch_only_finished_blocks(end, hours_back, lag_days):
    """Revision 0015: blocks not materialised yet are read as their days; a piece is
    read from a sketch only when it ended by sketched_until."""
    start = end - timedelta(hours=hours_back)
    cover = rollup_windows.cover(start, end, end)
    until = (end + timedelta(days=lag_days)).date()
    boundary = datetime(until.year, until.month, until.day, tzinfo=UTC)
    stored = rollup_windows.as_stored(cover, until)
    if not cover:
        assert stored == []
        return
    t = cover[0][1]
    for grain, piece_start, sketched in stored:
        assert piece_start == t  # same span, contiguous
        t = piece_start + rollup_windows.span(grain)
        assert sketched == (grain >= 0 and t <= boundary)
        if grain >= 1:
            assert t <= boundary  # a 2–32-day block is read only once materialised
    assert t == cover[-1][1] + rollup_windows.span(cover[-1][0])
