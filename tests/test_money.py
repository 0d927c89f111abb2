"""Money arithmetic: exact, integer, half-even (unit + property tests)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain.money import round_half_even_div, stripe_fee_minor, to_micro, token_cost_minor

prices = st.decimals(min_value=0, max_value=100_000, places=6, allow_nan=False, allow_infinity=False)
tokens = st.integers(min_value=0, max_value=10_000_000)


def test_examples():
    # 1M input tokens at 250 cents/Mtok + 500k output at 1000 cents/Mtok = 250 + 500 cents.
    assert token_cost_minor(1_000_000, 500_000, Decimal("250"), Decimal("1000")) == 750
    # Half-even: 0.5 -> 0, 1.5 -> 2.
    assert token_cost_minor(1, 0, Decimal("500000"), Decimal(0)) == 0
    assert token_cost_minor(3, 0, Decimal("500000"), Decimal(0)) == 2
    assert stripe_fee_minor(1000) == 59 and stripe_fee_minor(1900) == 85


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        token_cost_minor(-1, 0, Decimal(1), Decimal(1))
    with pytest.raises(ValueError):
        to_micro(Decimal("0.0000001"))


@given(tokens, tokens, prices, prices)
def test_matches_exact_decimal_arithmetic(i, o, pi, po):
    exact = (Decimal(i) * pi + Decimal(o) * po) / Decimal(1_000_000)
    assert token_cost_minor(i, o, pi, po) == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@given(tokens, tokens, tokens, prices, prices)
def test_monotonic_in_tokens(i, o, extra, pi, po):
    assert token_cost_minor(i + extra, o, pi, po) >= token_cost_minor(i, o, pi, po) >= 0


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=1, max_value=10**9))
def test_round_half_even_div(n, d):
    expected = int((Decimal(n) / Decimal(d)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    assert round_half_even_div(n, d) == expected
