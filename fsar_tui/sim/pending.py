"""The simulator's money that has not happened yet: items due at a later moment.

A payment's outcome follows its checkout by seconds, a refund its charge by hours to
days, a dispute by days to weeks (sim/payments.py, in simulated seconds; the worker
scales them by --time-scale). Workers add them here; the runner's money writer takes
what is due, in due order, and writes it then — as a webhook stream delivers events
when they happen. Order is kept: an item never comes out before one due earlier (a
refund after its charge). Memory holds only what is outstanding: at the demo's
rates, a few hundred items. Items still pending when the simulator stops are dropped
(they never happened in this run). Pure: the clock is injected.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any


class PendingMoney:
    def __init__(self, clock: Callable[[], float] = time.monotonic, on_add: Callable[[], None] | None = None) -> None:
        self._clock = clock
        self._on_add = on_add
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, delay_s: float, item: Any) -> None:
        """`item` falls due `delay_s` (real) seconds from now."""
        heapq.heappush(self._heap, (self._clock() + max(0.0, delay_s), next(self._seq), item))
        if self._on_add is not None:
            self._on_add()

    def pop_due(self) -> list[tuple[float, Any]]:
        """Every (due, item) due by now, earliest first (ties: in the order added)."""
        now = self._clock()
        out = []
        while self._heap and self._heap[0][0] <= now:
            due, _, item = heapq.heappop(self._heap)
            out.append((due, item))
        return out

    def put_back(self, items: list[tuple[float, Any]]) -> None:
        """Items popped but not written (the database was away): due as they were."""
        for due, item in items:
            heapq.heappush(self._heap, (due, next(self._seq), item))

    def next_due_in(self) -> float | None:
        """Seconds until the earliest item falls due (0 if one is due), None when empty."""
        return max(0.0, self._heap[0][0] - self._clock()) if self._heap else None
