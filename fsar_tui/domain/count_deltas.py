"""Counts per status × type (× model) moved by live task changes, without a query.

An idle queue screen (nobody pressing keys) keeps its counts live from the changes the
live source delivers — each one moves a task from one status to another — instead of
re-reading the counters on every batch: with the fleet at 1,000 tasks/s that was ten
queries a second per open panel (issue 18, point 4). The database stays the truth: a
batch that cannot be applied exactly (a resync, a model name the NOTIFY payload may
have cut at 64 characters, a count that would go below zero) returns None, and the
screen reads the counters instead; its periodic re-read replaces the counts anyway.

Changes arrive coalesced (live/coalesce.py): one net change per task and batch, whose
effect on per-status counts is that of the whole sequence. Keys are (status, type,
model), the model None when not counted per model, as db/tasks.status_type_counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fsar_tui.domain.events import TaskChange

Key = tuple[str, str, str | None]  # (status, task type, model or None)
MODEL_CUT = 64  # the NOTIFY payload's left(ai_model, 64): a model this long may be cut


def apply_changes(counts: Mapping[Key, int], changes: Iterable[TaskChange], *, by_model: bool) -> dict[Key, int] | None:
    """The counts after `changes`, or None when they cannot be known without a read.
    Groups that reach zero are left out (as the counters' query leaves them out)."""
    moved = dict(counts)
    for change in changes:
        model = change.ai_model if by_model else None
        if model is not None and len(model) >= MODEL_CUT:
            return None
        if change.from_status is not None:
            key = (change.from_status, change.task_type, model)
            left = moved.get(key, 0) - 1
            if left < 0:
                return None  # a change the counts never saw come in: read them
            if left:
                moved[key] = left
            else:
                del moved[key]
        key = (change.to_status, change.task_type, model)
        moved[key] = moved.get(key, 0) + 1
    return moved
