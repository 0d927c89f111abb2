"""Per-idea figures by task type, model or rollout: what a group's implemented ideas earn,
what an idea costs it, and how long its ideas take to earn.

For one breakdown dimension, per group and currency, over the window's ideas (those with
tasks or ledger entries in the window):
- implemented: ideas whose completing task (domain/attribution.Completion: the last
  successful idea_implementation / implement_idea task) is the group's;
- revenue per implemented idea: those ideas' net revenue in the window / implemented —
  the completing method's attributed revenue per idea;
- cost per idea: the group's AI cost on tasks with an idea in the window / the ideas it
  had tasks for (worked on);
- time to first revenue: the median, over its implemented ideas that have earned since,
  of (the idea's first revenue entry at or after the completing task's finish − that
  finish); ideas with no revenue since are counted as earned before (revenue in the
  window, all of it before the completing task finished: the idea earned before it was
  "completed", as when its implementation tasks run on after it launched) or waiting
  (no revenue in the window at all).
Money is per currency, never converted; averages are rounded half-even to the minor unit
(cost per idea from the exact decimal cost). Pure; no I/O.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from fsar_tui.domain.attribution import Completion
from fsar_tui.domain.roi import CostRow, GroupKey, LedgerRow, Money, idea_net_revenue

DIMENSIONS = ("type", "model", "rollout")


def group_label(key: GroupKey, dim: str) -> str:
    """A (type, model, rollout) group's value in one dimension, as roi.breakdown names it."""
    task_type, ai_model, rollout = key
    if dim == "type":
        return task_type
    if dim == "model":
        return ai_model or "(none)"
    if dim == "rollout":
        return str(rollout) if rollout else "(none)"
    raise ValueError(f"per-idea figures are by type, model or rollout, not {dim!r}")


@dataclass
class IdeaFigures:
    """One group's per-idea figures in one currency (idea counts and times are the group's)."""

    currency: str  # '' when the group has neither revenue nor cost
    implemented: int = 0
    worked_on: int = 0
    revenue: int = 0  # net revenue in the window of the ideas it implemented
    idea_cost: Money = 0  # its AI cost on tasks with an idea
    first_revenue_s: list[float] = field(default_factory=list)
    waiting: int = 0  # implemented ideas with no revenue in the window at all
    earned_before: int = 0  # implemented ideas whose window revenue all came before their completion

    @property
    def revenue_per_idea(self) -> int | None:
        return None if self.implemented == 0 else round(Fraction(self.revenue, self.implemented))

    @property
    def cost_per_idea(self) -> int | None:
        return None if self.worked_on == 0 else round(Fraction(self.idea_cost) / self.worked_on)

    @property
    def first_revenue_median_s(self) -> float | None:
        return statistics.median(self.first_revenue_s) if self.first_revenue_s else None


def per_idea(
    dim: str,
    costs: Sequence[CostRow],
    ledger: Iterable[LedgerRow],
    completions: Mapping[str, Completion],
) -> list[tuple[tuple[str, str], IdeaFigures]]:
    """Rows ((group, currency), figures) for one dimension, most implemented ideas first."""
    implemented: dict[str, set[str]] = defaultdict(set)
    worked_on: dict[str, set[str]] = defaultdict(set)
    delays: dict[str, list[float]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)
    earned_before: dict[str, int] = defaultdict(int)
    ledger = list(ledger)
    earning = {row.idea for row in ledger if row.kind == "revenue" and row.entries > 0}
    revenue: dict[tuple[str, str], int] = defaultdict(int)
    cost: dict[tuple[str, str], Money] = defaultdict(int)
    for idea, c in completions.items():
        key = group_label(c.group, dim)
        implemented[key].add(idea)
        if c.first_revenue_at is None:
            if idea in earning:
                earned_before[key] += 1
            else:
                waiting[key] += 1
        else:
            delays[key].append(max(0.0, (c.first_revenue_at - c.finished_at).total_seconds()))
    for row in costs:
        if not row.idea:
            continue
        key = group_label((row.task_type, row.ai_model, row.rollout), dim)
        if row.succeeded + row.failed + row.cancelled > 0:
            worked_on[key].add(row.idea)
        if row.currency:
            cost[(key, row.currency)] += row.model_cost + row.compute_cost
    for (idea, currency), amount in idea_net_revenue(ledger).items():
        done = completions.get(idea) if idea else None
        if done is not None:
            revenue[(group_label(done.group, dim), currency)] += amount
    currencies: dict[str, set[str]] = defaultdict(set)
    for key, currency in (*revenue, *cost):
        currencies[key].add(currency)
    rows = []
    for key in set(implemented) | set(worked_on):
        for currency in sorted(currencies[key]) or [""]:
            rows.append(
                (
                    (key, currency),
                    IdeaFigures(
                        currency,
                        len(implemented[key]),
                        len(worked_on[key]),
                        revenue.get((key, currency), 0),
                        cost.get((key, currency), 0),
                        sorted(delays[key]),
                        waiting[key],
                        earned_before[key],
                    ),
                )
            )
    return sorted(rows, key=lambda kv: (kv[0][1], -kv[1].implemented, kv[0][0]))
