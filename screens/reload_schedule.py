"""When a screen re-queries: at once when marked (live events, a new window or filter),
else every `every` seconds, and never two of its queries at a time.

Screens call `tick()` from a 1 s timer, so however busy the fleet is, a schedule costs
at most one query a second; an idle screen costs one every `every` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.worker import Worker


class ReloadSchedule:
    def __init__(self, every: float) -> None:
        self.every = every
        self.marked = True
        self.last = 0.0
        self.worker: Worker | None = None

    def mark(self) -> None:
        self.marked = True

    def tick(self, ready: bool, launch: Callable[[], Worker]) -> None:
        """Start `launch()` (a worker) if due, `ready` (a pool) and none is running."""
        due = self.marked or time.monotonic() - self.last > self.every
        busy = self.worker is not None and self.worker.is_running
        if due and ready and not busy:
            self.marked = False
            self.worker = launch()

    def done(self) -> None:
        """The query succeeded: the next unmarked one is `every` seconds from now."""
        self.last = time.monotonic()

    def failed(self) -> None:
        """The query failed: try again in `every` seconds (not on the next tick), unless
        something marks the screen first."""
        self.last = time.monotonic()
