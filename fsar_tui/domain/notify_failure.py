"""A failed notification delivery in one line (screen 4, `fsar-tui alerts list`): the
channel (masked), the event, the attempt and its outcome, and the next retry — or, for a
delivery never tried, since when it is due and who last took it. Pure; the domain does not
import db/, so the row is described by a Protocol.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from fsar_tui.domain.sanitize import one_line


class FailureLike(Protocol):
    """What db/notifications.FailedDelivery holds (the domain does not import db/)."""

    @property
    def event_key(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_at(self) -> datetime | None: ...
    @property
    def last_http_status(self) -> int | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def next_attempt_at(self) -> datetime | None: ...
    @property
    def due_since(self) -> datetime | None: ...
    @property
    def taken_by(self) -> str | None: ...


def notify_failure_line(f: FailureLike, error_max: int = 160) -> str:
    """`webhook https://h/*** (#…) · gate:x firing · attempt 3 failed at … · HTTP 500 · next retry …`,
    or, for a delivery never tried, `… · not sent: due since … — no pass with this channel
    in its [notify] has run`."""
    head = f"{one_line(f.channel)} · {one_line(f.event_key)} {f.state}"
    if f.attempts == 0 or f.last_at is None:
        since = f" since {f.due_since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if f.due_since else ""
        taken = f" (last taken by {one_line(f.taken_by)}, never recorded)" if f.taken_by else ""
        return f"{head} · not sent: due{since} — no pass with this channel in its [notify] has run{taken}"
    why = one_line(f.last_error or "")
    why = why if len(why) <= error_max else why[: error_max - 1] + "…"
    status = f"HTTP {f.last_http_status}: " if f.last_http_status and f"HTTP {f.last_http_status}" not in why else ""
    after = (
        f"next retry {f.next_attempt_at.astimezone(UTC):%H:%M:%S} UTC"
        if f.status == "pending" and f.next_attempt_at is not None
        else "given up"
    )
    return (
        f"{head} · attempt {f.attempts} failed at "
        f"{f.last_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC · {status}{why or 'no reason recorded'} · {after}"
    )
