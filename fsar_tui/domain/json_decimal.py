"""JSON with exact decimals: task costs (Decimal, minor units, revision 0024) are written as
JSON numbers with every digit they have — never through a float — so `model_cost_minor`
keeps its name and number type while carrying sub-minor precision.

The standard encoder cannot emit a Decimal as a number; each one is written as a unique
placeholder string first and the quoted placeholder then replaced by the digits.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any


def decimal_text(value: Decimal) -> str:
    """Fixed-point digits (no exponent, no trailing zeros after the point): '62139.561234', '0', '-5'."""
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def dumps(obj: Any, **kwargs: Any) -> str:
    """json.dumps, with every Decimal written as an exact JSON number."""
    tag = secrets.token_hex(8)
    found: dict[str, str] = {}

    def swap(value: Any) -> Any:
        if isinstance(value, Decimal):
            key = f"\x00{tag}:{len(found)}\x00"
            found[key] = decimal_text(value)
            return key
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(obj), **kwargs)
    for key, digits in found.items():
        text = text.replace(json.dumps(key), digits, 1)
    return text
