"""The wall clock the screens read, in one place so snapshot tests can pin it."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)
