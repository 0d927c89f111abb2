"""Revenue attribution methods, and when a breakdown's ROI column cannot rank.

Revenue is earned by an idea; an attribution method says which (task_type, ai_model,
rollout revision) groups earn it. Every method splits an idea's net revenue in one
currency exactly (largest remainder, domain/roi.split: the parts add up to the minor
unit), and revenue it cannot place is "unattributed" — its own line, with the reason.

- completing: the idea's whole net revenue goes to the group of the task that completed
  it — its last successful idea_implementation / implement_idea task finished before the
  window's end, whenever that was (db/idea_completions.py reads it). Ideas with no such
  task are unattributed. Meaningful when an idea is implemented once and earns
  afterwards; where implementation tasks keep running while the idea earns (the seed:
  ~1,000 a month per idea), the last one finishes after all the revenue and the month's
  revenue goes to whichever model ran last — a lottery, not a ranking.
- equal (the default): split equally over the idea's tasks that succeeded in the window
  (any type): each group's share is in proportion to its successful tasks of the idea.
  Ideas with no successful task in the window are unattributed.
- cost: cost-proportional (domain/roi.attribute), kept for accounting: in proportion to
  the groups' AI cost on the idea. A group's ROI is then the cost-weighted mean of the
  ROIs of the ideas it worked on — it says which ideas a group worked on, never how
  cheaply: groups sharing the same ideas get the same ROI by construction.

"Uninformative" (`flat`): a type / model / rollout breakdown's ROI column, in one
currency, holds at least two groups with an ROI (the unattributed line and groups
without cost left out) and the largest and smallest differ by at most 0.1 percentage
point (the display step) or 1 % of the larger magnitude, whichever is more — differences
that small are rounding and idea mix, not a ranking. The screen, `roi` and `report` then
say so instead of showing a column of equal numbers.

Pure; no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from fsar_tui.domain import roi
from fsar_tui.domain.roi import Attribution, CostRow, Figures, GroupKey, LedgerRow

METHODS = ("completing", "equal", "cost")
DEFAULT = "equal"
NAMES = {"completing": "completing task", "equal": "equal split", "cost": "cost-proportional"}
DESCRIPTIONS = {
    "completing": "completing task (an idea's net revenue to the group of its last successful "
    "idea_implementation / implement_idea task)",
    "equal": "equal split (an idea's net revenue split equally over its tasks that succeeded in the window, "
    "largest remainder)",
    "cost": roi.METHOD,
}
IMPLEMENTING_TYPES = ("idea_implementation", "implement_idea")
RANKED_DIMENSIONS = ("type", "model", "rollout")  # the breakdowns an attribution method decides

NO_WEIGHT = {
    "completing": "no successful implementation task",
    "equal": "no successful task in the window",
}

TOLERANCE_POINTS = Fraction(1, 10)  # percentage points: the ROI column's display step
TOLERANCE_SHARE = Fraction(1, 100)  # of the larger ROI's magnitude


@dataclass(frozen=True)
class Completion:
    """The task that completed an idea, and the idea's first revenue at or after it."""

    idea: str
    task_type: str
    ai_model: str  # '' when the task has none
    rollout: int  # 0 when the task has none
    finished_at: datetime
    first_revenue_at: datetime | None = None

    @property
    def group(self) -> GroupKey:
        return (self.task_type, self.ai_model, self.rollout)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}: one of {', '.join(METHODS)}")
    return method


def next_method(method: str) -> str:
    return METHODS[(METHODS.index(method) + 1) % len(METHODS)]


def success_weights(costs: Iterable[CostRow]) -> dict[str, dict[GroupKey, int]]:
    """idea -> group -> tasks that succeeded in the window (every currency, none included)."""
    out: dict[str, dict[GroupKey, int]] = defaultdict(lambda: defaultdict(int))
    for row in costs:
        if row.idea and row.succeeded > 0:
            out[row.idea][(row.task_type, row.ai_model, row.rollout)] += row.succeeded
    return out


def completion_weights(completions: Mapping[str, Completion]) -> dict[str, dict[GroupKey, int]]:
    return {idea: {c.group: 1} for idea, c in completions.items()}


def attribute(
    method: str,
    costs: Sequence[CostRow],
    ledger: Iterable[LedgerRow],
    completions: Mapping[str, Completion] | None = None,
) -> Attribution:
    """Each idea's net revenue per currency over groups by `method`; what cannot be placed
    is unattributed with the reason. The parts and the unattributed add up to the ledger's
    net revenue exactly, per currency."""
    if check_method(method) == "cost":
        return roi.attribute(costs, ledger)
    weights = success_weights(costs) if method == "equal" else completion_weights(completions or {})
    result = Attribution()
    for (idea, currency), amount in sorted(roi.idea_net_revenue(ledger).items()):
        if amount == 0:
            continue
        groups = {g: w for g, w in weights.get(idea, {}).items() if w > 0} if idea else {}
        if not groups:
            why = NO_WEIGHT[method] if idea else "no idea"
            result.unattributed[currency] = result.unattributed.get(currency, 0) + amount
            result.reasons.setdefault(currency, []).append(f"{idea or roi.NO_IDEA}: {why}")
            continue
        keys = sorted(groups)
        for key, part in zip(keys, roi.split(amount, [groups[k] for k in keys]), strict=True):
            if part:
                result.by_group[(key, currency)] = result.by_group.get((key, currency), 0) + part
    return result


# -- when the ROI column cannot rank ------------------------------------------------------


def roi_exact(f: Figures) -> Fraction | None:
    """ROI % as an exact fraction (none without cost)."""
    if f.ai_cost == 0:
        return None
    return 100 * Fraction(f.profit) / Fraction(f.ai_cost)


@dataclass(frozen=True)
class Flat:
    """One currency's ROI column that cannot rank: its groups and their ROI range (%)."""

    currency: str
    groups: int
    low: Fraction
    high: Fraction


def within_tolerance(low: Fraction, high: Fraction) -> bool:
    return high - low <= max(TOLERANCE_POINTS, TOLERANCE_SHARE * max(abs(low), abs(high)))


def flat(rows: Sequence[tuple[tuple[str, str], Figures]]) -> dict[str, Flat]:
    """Per currency, the breakdown's ROI column when it cannot rank (see the module's rule)."""
    values: dict[str, list[Fraction]] = defaultdict(list)
    for (key, currency), f in rows:
        value = roi_exact(f)
        if key != roi.UNATTRIBUTED and value is not None:
            values[currency].append(value)
    out = {}
    for currency, rois in sorted(values.items()):
        low, high = min(rois), max(rois)
        if len(rois) >= 2 and within_tolerance(low, high):
            out[currency] = Flat(currency, len(rois), low, high)
    return out


def notice(method: str, dim: str, f: Flat) -> str:
    """The sentence shown instead of the column, its point first ("ROI cannot rank …:");
    callers add how to change the method."""
    span = f"{float(f.low):,.1f} %" if f.high - f.low < TOLERANCE_POINTS / 2 else _range(f)
    where = f"({f.currency}: {f.groups} groups at {span})"
    if method == "cost":
        return f"ROI cannot rank {dim}s: cost-proportional attribution gives each its ideas' ROI {where}"
    return f"ROI cannot rank {dim}s: all within 1 % under {NAMES[method]} attribution {where}"


def _range(f: Flat) -> str:
    return f"{float(f.low):,.1f}–{float(f.high):,.1f} %"
