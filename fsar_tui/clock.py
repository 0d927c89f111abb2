"""The wall clock the screens read, in one place so snapshot tests can pin it."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
