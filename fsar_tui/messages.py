"""Every message the app passes between its parts (Toolong's convention)."""

from __future__ import annotations

from textual.message import Message

from fsar_tui.domain.events import Batch


class LiveBatch(Message):
    """A coalesced batch from the live pipeline (forwarded by the app to the active screen)."""

    def __init__(self, batch: Batch) -> None:
        super().__init__()
        self.batch = batch


class ApplyFilter(Message):
    """Command mode asked the queue screen to apply a filter (`:queue status=failed`)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class DatabaseReady(Message):
    """The pool is open: screens load at once instead of waiting for their next tick."""


class AuditChecked(Message):
    """The app's scheduled audit pass finished: `result` is its services.audit_pass
    CheckResult (rollback readiness, gate verdicts and alerts are fresh), or None when
    the pass failed (the app's `audit_failure` says why; the last result is stale)."""

    def __init__(self, result) -> None:
        super().__init__()
        self.result = result


# Screens → app: a screen asks, the app (which owns the pass and the header) does.


class AuditCheckRequested(Message):
    """Run the scheduled audit pass now (after a rollback, or `e` on screen 4)."""


class HeaderStale(Message):
    """Something a header shows may have changed (an alert acked, a block lifted):
    re-read the alert counts and blocks now, not at the next 15 s read."""


class CommandEntered(Message):
    """A `:` command typed somewhere other than the app's own command line."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
