"""Small pure formatters shared by screens and exports."""

from __future__ import annotations

from datetime import datetime


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


def money(minor: int | None, currency: str | None) -> str:
    """Minor units as a decimal amount with its currency; never converted."""
    if minor is None:
        return "-"
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency or ''}".strip()


def compact(n: int) -> str:
    """12,345 -> 12.3k; 1,234,567 -> 1.2M (counts in narrow columns)."""
    if abs(n) < 1000:
        return str(n)
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.1f}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"
    return str(n)
