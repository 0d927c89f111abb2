"""Counts moved by live changes (domain/count_deltas.py): what an idle queue screen shows
without a query equals a recount of the tasks after the same transitions."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain.count_deltas import apply_changes
from fsar_tui.domain.events import TaskChange
from fsar_tui.live.coalesce import coalesce

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
TYPES = ["implement_idea", "self_improvement"]
MODELS = ["gpt-4o", "gpt-4o-mini", None]


def recount(tasks: dict[int, tuple[str, str, str | None]], by_model: bool) -> dict:
    return dict(Counter((s, t, m if by_model else None) for s, t, m in tasks.values()))


@given(
    st.lists(st.tuples(st.sampled_from(TYPES), st.sampled_from(MODELS), st.sampled_from(STATUSES)), max_size=8),
    st.lists(st.tuples(st.integers(0, 11), st.sampled_from(STATUSES)), max_size=40),
    st.integers(1, 6),
    st.booleans(),
)
def test_applied_batches_equal_a_recount(existing, moves, batch_size, by_model):
    tasks = {i: (status, task_type, model) for i, (task_type, model, status) in enumerate(existing)}
    counts = recount(tasks, by_model)
    for start in range(0, len(moves), batch_size):
        changes = []
        for task_id, to in moves[start : start + batch_size]:
            if task_id in tasks:
                status, task_type, model = tasks[task_id]
                changes.append(TaskChange(task_id, task_type, model, status, to, 1))
            else:  # a new task
                task_type, model = TYPES[task_id % 2], MODELS[task_id % 3]
                changes.append(TaskChange(task_id, task_type, model, None, to, 0))
            tasks[task_id] = (to, task_type, model)
        moved = apply_changes(counts, coalesce(changes), by_model=by_model)
        assert moved == recount(tasks, by_model)
        counts = moved


def test_what_cannot_be_applied_exactly_asks_for_a_read():
    counts = {("queued", "implement_idea", None): 1}
    # A task leaving a status the counts never had it in.
    gone = TaskChange(1, "implement_idea", None, "running", "succeeded", 1)
    assert apply_changes(counts, [gone], by_model=False) is None
    # Per model, a model the NOTIFY payload may have cut (left(ai_model, 64)).
    long_model = "m" * 64
    change = TaskChange(2, "implement_idea", long_model, None, "queued", 0)
    assert apply_changes(counts, [change], by_model=True) is None
    # Not per model, the model plays no part.
    assert apply_changes(counts, [change], by_model=False) == {("queued", "implement_idea", None): 2}
