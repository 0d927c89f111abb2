"""Coalescing task changes: many transitions of one task become one net transition.

A burst of changes to the same task inside one delivery window is folded into a
single change from the first `from_status` to the last `to_status` (with the last
attempt, model and timing). Applied to per-status counts, the folded list has exactly
the effect of the full sequence (tests/test_coalesce.py proves it with hypothesis);
a task that ends where it started disappears from the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from fsar_tui.domain.events import TaskChange


def coalesce(changes: Iterable[TaskChange]) -> list[TaskChange]:
    merged: dict[int, TaskChange] = {}
    for change in changes:
        first = merged.get(change.id)
        merged[change.id] = change if first is None else replace(change, from_status=first.from_status)
    return [c for c in merged.values() if c.from_status != c.to_status]
