"""Money arithmetic: integer minor units, exact decimal rates, no floats.

Prices are minor units per million tokens (exact decimals: $0.075/Mtok is 7.5 cents).
A cost is rounded once, half-even, to whole minor units when a task finishes; it is
never recomputed from later prices.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MTOK = Decimal(1_000_000)


def token_cost_minor(input_tokens: int, output_tokens: int, input_per_mtok: Decimal, output_per_mtok: Decimal) -> int:
    """Cost of one model call in minor units, rounded half-even."""
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts cannot be negative")
    exact = (Decimal(input_tokens) * Decimal(input_per_mtok) + Decimal(output_tokens) * Decimal(output_per_mtok)) / MTOK
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def stripe_fee_minor(amount_minor: int) -> int:
    """Stripe's standard card fee, 2.9 % + 30 minor units, as a positive number."""
    return int((Decimal(amount_minor) * Decimal("0.029")).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) + 30
