"""Durations and look-back windows as operators type them: `30s 15m 2h 7d 4w`.

Used by the filter language (`since:2h`), every `--window`/`--since`/`--older-than`
option and the screens' window commands (`:profiles 12h`). A duration longer than
MAX_SECONDS (about a century) is refused here, as input, so no caller meets a
timedelta or timestamp overflow later.
"""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS = 36_500 * 86400
_DURATION = re.compile(r"^(\d{1,12})([smhdw])$")


class DurationError(ValueError):
    """A duration or window that cannot be used: the message says what to type instead."""


def parse_duration(text: str) -> int:
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise DurationError(f"bad duration {text!r}: use a number and s, m, h, d or w (e.g. 2h)")
    seconds = int(m.group(1)) * UNITS[m.group(2)]
    if seconds > MAX_SECONDS:
        raise DurationError(f"duration {text!r} is too long: at most {MAX_SECONDS // 86400:,}d")
    return seconds


def parse_window(text: str) -> int:
    """A look-back window (`24h`, `7d`…): a duration that must be positive."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise DurationError(f"window {text!r} must be positive")
    return seconds


def format_duration(seconds: int) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"
