"""Money arithmetic: minor units, exact decimal rates, no floats.

Prices are minor units per million tokens, exact to 6 decimal places (numeric(18,6)
in model_prices: $0.075/Mtok is 7.5 cents). Since revision 0024 an attempt's cost is
kept exact, unrounded, in minor units: `token_cost` (tokens × price × 10⁻⁶, at most 12
decimals) and `run_cost` (seconds × rate / 3600, to 10⁻⁶ minor units, half away from
zero) are what the database's fsar_token_cost / fsar_run_cost compute, so the seeder
writes what the trigger would have. Rounding to whole minor units happens once, at
display (domain/formatting.money, half-even); where a total and its parts are shown
together, `round_to_total` rounds the parts so that they add up to the rounded total.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

MICRO = 1_000_000
# tokens * (micro-minor per Mtok) = minor * 10^-12
SCALE = MICRO * 1_000_000


def to_micro(price: Decimal | int | str) -> int:
    """A price in minor units per Mtok as integer micro-units; more than 6 decimals is an error."""
    micro = Decimal(price) * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"price {price} has more than 6 decimal places")
    return int(micro)


def round_half_even_div(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def token_cost_micro(input_tokens: int, output_tokens: int, input_micro: int, output_micro: int) -> int:
    """Cost in minor units from integer micro-unit prices, rounded half-even."""
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts cannot be negative")
    return round_half_even_div(input_tokens * input_micro + output_tokens * output_micro, SCALE)


def token_cost_minor(input_tokens: int, output_tokens: int, input_per_mtok: Decimal, output_per_mtok: Decimal) -> int:
    """Cost of one model call in minor units, rounded half-even."""
    return token_cost_micro(input_tokens, output_tokens, to_micro(input_per_mtok), to_micro(output_per_mtok))


MICRO_MINOR = Decimal("0.000001")


def token_cost(input_tokens: int, output_tokens: int, input_micro: int, output_micro: int) -> Decimal:
    """An attempt's token cost in minor units, exact: prices as integer micro-units per Mtok."""
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts cannot be negative")
    return Decimal(input_tokens * input_micro + output_tokens * output_micro).scaleb(-12)


def run_cost(seconds: Decimal, minor_per_hour: Decimal) -> Decimal:
    """An attempt's compute cost in minor units to 10⁻⁶ (half away from zero, as PostgreSQL's round)."""
    return (max(Decimal(0), seconds) * minor_per_hour / 3600).quantize(MICRO_MINOR, rounding=ROUND_HALF_UP)


def round_half_even(amount: Decimal | int) -> int:
    """An exact amount rounded once, half-even, to a whole number."""
    if isinstance(amount, int):
        return amount
    return int(Decimal(amount).to_integral_value(rounding=ROUND_HALF_EVEN))


PER_UNIT_PLACES = 6  # a quotient of exact amounts (cost per success) is kept to 10⁻⁶ minor units


def per_unit(amount: Decimal | int, count: int) -> Decimal:
    """`amount` / `count` to PER_UNIT_PLACES decimals, half-even (a quotient seldom terminates)."""
    scaled = round(Fraction(amount) * 10**PER_UNIT_PLACES / count)
    return Decimal(scaled).scaleb(-PER_UNIT_PLACES)


def round_to_total(values: Sequence[Decimal | int]) -> list[int]:
    """Exact amounts rounded to whole units so that they add up to their total rounded
    half-even: each is rounded half-even, and when those do not add up, the largest
    remainder method decides instead — every part is its value rounded down, then the
    units still missing go one each to the parts with the largest fractional remainders
    (ties to the earlier part). Each part stays within one unit of its exact value, and a
    whole value is never changed."""
    exact = [Decimal(v) for v in values]
    total = round_half_even(sum(exact, Decimal(0)))
    rounded = [round_half_even(v) for v in exact]
    if sum(rounded) == total:
        return rounded
    floors = [int(v.to_integral_value(rounding=ROUND_FLOOR)) for v in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors


def stripe_fee_minor(amount_minor: int) -> int:
    """Stripe's standard card fee, 2.9 % + 30 minor units, as a positive number."""
    return round_half_even_div(amount_minor * 29, 1000) + 30
