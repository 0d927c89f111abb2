"""Small pure formatters shared by screens and exports."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h"


def between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


# ISO 4217 currencies whose minor unit is not a hundredth (Stripe's zero-decimal list,
# and the three-decimal dinars); every other currency has two decimals.
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


def minor_digits(currency: str | None) -> int:
    code = (currency or "").upper()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def whole_minor(amount: int | Decimal) -> int:
    """An exact amount in minor units rounded once, half-even, to whole minor units (display)."""
    if isinstance(amount, int):
        return amount
    return int(amount.to_integral_value(rounding=ROUND_HALF_EVEN))


def money(amount: int | Decimal | None, currency: str | None) -> str:
    """Minor units as a decimal amount with its currency; never converted. An exact
    (sub-minor) amount is rounded half-even to whole minor units here, at display."""
    if amount is None:
        return "-"
    minor = whole_minor(amount)
    sign = "-" if minor < 0 else ""
    digits = minor_digits(currency)
    if digits == 0:
        return f"{sign}{abs(minor):,} {currency or ''}".strip()
    whole, frac = divmod(abs(minor), 10**digits)
    return f"{sign}{whole:,}.{frac:0{digits}d} {currency or ''}".strip()


FINE_DIGITS = 2  # per-unit figures: this many decimals beyond the currency's minor unit


def fine_money(amount: int | Decimal | None, currency: str | None) -> str:
    """A per-unit amount (cost per successful task) in minor units, shown with FINE_DIGITS
    more decimals than the currency has, rounded half-even: a cheap model's success at
    0.15 minor units reads 0.0015 USD, not 0.00 USD. Totals use `money` (whole minor units)."""
    if amount is None:
        return "-"
    digits = minor_digits(currency) + FINE_DIGITS
    major = (Decimal(amount) / 10 ** minor_digits(currency)).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_EVEN)
    if major == 0:
        major = abs(major)  # no "-0.0000"
    return f"{major:,.{digits}f} {currency or ''}".strip()


def decimal_amount(minor: int, currency: str | None) -> str:
    """Minor units as a plain decimal string for JSON/CSV ("1234.50"): exact, no float."""
    digits = minor_digits(currency)
    sign = "-" if minor < 0 else ""
    if digits == 0:
        return f"{sign}{abs(minor)}"
    whole, frac = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}"


def compact(n: int) -> str:
    """12,345 -> 12.3k; 1,234,567 -> 1.2M (counts in narrow columns)."""
    if abs(n) < 1000:
        return str(n)
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.1f}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"
    return str(n)


def abbreviate(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut from the middle with an ellipsis, so
    both ends stay: "worker-eu-west-7" → "worker…west-7" (ids and names differ at
    either end: a cut from one side makes them meaningless)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def clock_time(at: datetime, *, seconds: bool = True, zone: bool = False) -> str:
    """`YYYY-MM-DD HH:MM[:SS][±HHMM]` with the year always four digits: strftime's %Y
    leaves years before 1000 unpadded here ("1-01-01"), and the clamped edge of what can
    be shown (db/time_adapters: '-infinity' reads as year 1) must look like a date."""
    rest = at.strftime("%m-%d %H:%M" + (":%S" if seconds else "") + ("%z" if zone else ""))
    return f"{at.year:04d}-{rest}"
