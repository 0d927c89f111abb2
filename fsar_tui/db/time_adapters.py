"""Times Python cannot hold, read without failing: `install()` makes every connection opened
afterwards load a date, timestamp or timestamptz outside Python's years 1–9999 —
PostgreSQL's 'infinity' / '-infinity', year 10000 to 294276, any BC date — as the nearest
value Python can hold (datetime.max / datetime.min, date.max / date.min; in UTC for
timestamptz) instead of raising DataError.

Why: those columns are written by the executing side (created_at, queued_at, finished_at,
task_events.at) and PostgreSQL accepts all of these; psycopg refuses them on the way in
("timestamp too large (after year 10K)"), so one such row made `tasks list`, `tasks
show` and every screen that read it fail, and retention's runs (issue 18 review). The
clamped value still sorts and compares where the real one does (after, or before,
every ordinary time) and shows as 9999-12-31 / 0001-01-01 — the edge of what can be
shown, not a made-up date in range. Writes are unchanged: fsar-tui never writes such
values.
"""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.types import datetime as pgdt

_TZ_MAX, _TZ_MIN = datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)


def _text_is_past(data: Any) -> bool:
    """For text: '-infinity' or a BC value lies before year 1; anything else past 9999."""
    text = bytes(data).decode("ascii", "replace")
    return text.startswith("-") or text.endswith("BC")


def _binary_is_past(data: Any, size: int) -> bool:
    """For binary: microseconds (int8) or days (int4) since 2000-01-01; negative is past."""
    value = struct.unpack("!q" if size == 8 else "!i", bytes(data))[0]
    return bool(value < 0)


def _clamped(base: Any, low: Any, high: Any, *, binary_size: int | None) -> type:
    def load(self: Any, data: Any) -> Any:
        try:
            return base.load(self, data)
        except psycopg.DataError:
            past = _binary_is_past(data, binary_size) if binary_size else _text_is_past(data)
            return low if past else high

    return type(f"Clamped{base.__name__}", (base,), {"load": load})


LOADERS = {
    "timestamptz": (
        _clamped(pgdt.TimestamptzLoader, _TZ_MIN, _TZ_MAX, binary_size=None),
        _clamped(pgdt.TimestamptzBinaryLoader, _TZ_MIN, _TZ_MAX, binary_size=8),
    ),
    "timestamp": (
        _clamped(pgdt.TimestampLoader, datetime.min, datetime.max, binary_size=None),
        _clamped(pgdt.TimestampBinaryLoader, datetime.min, datetime.max, binary_size=8),
    ),
    "date": (
        _clamped(pgdt.DateLoader, date.min, date.max, binary_size=None),
        _clamped(pgdt.DateBinaryLoader, date.min, date.max, binary_size=4),
    ),
}


def install(adapters: Any = None) -> None:
    """Register the clamping loaders on `adapters` (default: psycopg's global map, which
    every connection opened afterwards copies)."""
    target = psycopg.adapters if adapters is None else adapters
    for name, (text_loader, binary_loader) in LOADERS.items():
        target.register_loader(name, text_loader)
        target.register_loader(name, binary_loader)
