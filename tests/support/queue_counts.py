"""Task counts per (status, task_type), kept current from live batches.

Loaded from the database (`load`), then moved by coalesced transitions (`apply`).
A resync batch means events may have been lost: the owner reloads from the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from fsar_tui.domain.events import TaskChange


class QueueCounts:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def load(self, rows: Iterable[tuple[str, str, int]]) -> None:
        self.counts = Counter({(status, task_type): n for status, task_type, n in rows if n})

    def apply(self, changes: Iterable[TaskChange]) -> None:
        for c in changes:
            if c.from_status is not None:
                key = (c.from_status, c.task_type)
                self.counts[key] -= 1
                if self.counts[key] == 0:
                    del self.counts[key]
            self.counts[(c.to_status, c.task_type)] += 1

    def as_dict(self) -> dict[tuple[str, str], int]:
        return {k: v for k, v in self.counts.items() if v}
