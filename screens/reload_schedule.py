"""When a screen re-queries: at once when marked (live events, a new window or filter),
else every `every` seconds, and never two of its queries at a time.

Screens call `tick()` from a 1 s timer, so however busy the fleet is, a schedule costs
at most one query a second; an idle screen costs one every `every` seconds.

Idle panels (issue 18, point 4). A schedule with `idle_every` set counts as idle once
no key was pressed on its screen for IDLE_AFTER_S (`touched()` records a press); then
a mark waits until `idle_every` seconds have passed since the last read, and so does
the unmarked re-read. Twenty-five operators' panels left open on a busy fleet then
cost the database a read each every `idle_every` seconds instead of one a second; the
first key press makes the panel live again at the next tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.worker import Worker

IDLE_AFTER_S = 30.0  # no key pressed for this long: the screen is idle


class ReloadSchedule:
    def __init__(self, every: float, idle_every: float | None = None) -> None:
        self.every = every
        self.idle_every = idle_every
        self.marked = True
        self.last = 0.0
        self.input_at = time.monotonic()
        self.worker: Worker | None = None

    def mark(self) -> None:
        self.marked = True

    def touched(self) -> None:
        """A key was pressed on the screen: not idle (for IDLE_AFTER_S)."""
        self.input_at = time.monotonic()

    def idle(self) -> bool:
        return self.idle_every is not None and time.monotonic() - self.input_at > IDLE_AFTER_S

    def tick(self, ready: bool, launch: Callable[[], Worker]) -> None:
        """Start `launch()` (a worker) if due, `ready` (a pool) and none is running."""
        since = time.monotonic() - self.last
        if self.idle_every is not None and self.idle():
            due = since > self.idle_every
        else:
            due = self.marked or since > self.every
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
