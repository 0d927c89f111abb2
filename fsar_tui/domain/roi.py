"""ROI arithmetic: revenue, cost, waste, profit and ROI per currency, and revenue attribution.

Pure: it takes the sums the rollups give (db/roi.py) and returns figures; the ROI
screen, `fsar-tui roi` and `fsar-tui report` all call it, so a number never differs
between them. Ledger amounts are integer minor units; task costs are exact decimals in
minor units (revision 0024), never rounded here — rounding happens once, at display
(domain/roi_display.py). Currencies are never added together or converted — every
figure is per currency.

Definitions (signed ledger amounts: revenue and dispute_won ≥ 0, the rest ≤ 0):
- net revenue = revenue + refunds + disputes + dispute_won + dispute fees + payment fees
- AI cost = model cost + compute cost, where each is the tasks' cost (every attempt,
  priced at its start) plus ledger entries of that kind (costs that belong to no task)
- profit = net revenue − AI cost; ROI % = profit / AI cost × 100 (none when AI cost is 0)
- waste = the cost of attempts that did not produce their task's final success (failed,
  lost their lease, cancelled): all attempts of a task that failed or was cancelled, the
  attempts before the one that succeeded
- cost per successful task = the tasks' AI cost, waste included (that is what a success
  really costs) / tasks that succeeded, to 10⁻⁶ minor units (money.per_unit)
- cost of failed tasks = AI cost of tasks whose final status is failed or cancelled
- attempts without a price: attempts with tokens and no model price in force at their
  start; their model cost is unknown — not counted as 0, counted (`unpriced`) and named
  by model (`unpriced_by_model`), currency or not (an unpriced task may have none)

Attribution ("cost-proportional"): revenue is earned by an idea. An idea's net revenue
in a currency is split over its tasks' (task_type, ai_model, rollout revision) groups
in proportion to their AI cost in the window, by the largest-remainder method, so the
parts add up to the cent. Weights are the costs in the revenue's currency; when the
idea's tasks cost only in one other currency, those (proportions have no unit); else,
and when the idea had no task cost in the window, or the revenue names no idea, the
revenue is "unattributed" — its own line, never dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from fsar_tui.domain.money import per_unit

METHOD = "cost-proportional (an idea's net revenue split over its tasks by AI cost, largest remainder)"
UNATTRIBUTED = "(unattributed)"
NO_IDEA = "(no idea)"

REVENUE_KINDS = ("revenue", "refund", "dispute", "dispute_won", "dispute_fee", "payment_fee")
# The revenue kinds whose amounts are ≥ 0 (ledger_entries' sign check); the others are ≤ 0.
REVENUE_CREDIT_KINDS = ("revenue", "dispute_won")
COST_KINDS = ("model_cost", "compute_cost")

# Task costs are exact decimals in minor units (revision 0024); ledger amounts whole ones.
Money = Decimal | int


@dataclass(frozen=True)
class CostRow:
    """Task sums of one (task_type, ai_model, rollout revision, idea, currency) in the window."""

    task_type: str
    ai_model: str
    rollout: int
    idea: str  # '' when the task has none
    currency: str
    succeeded: int
    failed: int
    cancelled: int
    model_cost: Money
    compute_cost: Money
    failed_cost: Money
    waste: Money = 0  # cost of attempts that did not produce the task's success (revision 0024)
    unpriced: int = 0  # attempts with tokens and no price in force: their model cost is unknown


@dataclass(frozen=True)
class LedgerRow:
    """Ledger sums of one (idea, kind, currency) in the window."""

    idea: str
    kind: str
    currency: str
    entries: int
    amount: int


@dataclass
class Figures:
    """One currency's (or one breakdown row's) money and task counts; costs exact."""

    currency: str
    revenue: int = 0
    refunds: int = 0
    disputes: int = 0
    dispute_won: int = 0
    dispute_fees: int = 0
    payment_fees: int = 0
    attributed: int = 0  # breakdown rows: revenue attributed to them (net)
    model_cost: Money = 0
    compute_cost: Money = 0
    failed_cost: Money = 0
    waste: Money = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    task_model_cost: Money = 0
    task_compute_cost: Money = 0
    charges: int = 0
    unpriced: int = 0  # attempts without a price (their model cost is not in model_cost)

    @property
    def net_revenue(self) -> int:
        return (
            self.revenue
            + self.refunds
            + self.disputes
            + self.dispute_won
            + self.dispute_fees
            + self.payment_fees
            + self.attributed
        )

    @property
    def ai_cost(self) -> Money:
        return self.model_cost + self.compute_cost

    @property
    def profit(self) -> Money:
        return self.net_revenue - self.ai_cost

    @property
    def roi_pct(self) -> float | None:
        return None if self.ai_cost == 0 else float(100 * Fraction(self.profit) / Fraction(self.ai_cost))

    @property
    def cost_per_success(self) -> Decimal | None:
        """The tasks' AI cost, waste included, per task that succeeded (10⁻⁶ minor units)."""
        task_cost = self.task_model_cost + self.task_compute_cost
        return None if self.succeeded == 0 else per_unit(task_cost, self.succeeded)

    def add_tasks(self, row: CostRow) -> None:
        self.succeeded += row.succeeded
        self.failed += row.failed
        self.cancelled += row.cancelled
        self.model_cost += row.model_cost
        self.compute_cost += row.compute_cost
        self.task_model_cost += row.model_cost
        self.task_compute_cost += row.compute_cost
        self.failed_cost += row.failed_cost
        self.waste += row.waste
        self.unpriced += row.unpriced

    def add_ledger(self, row: LedgerRow) -> None:
        kind, amount = row.kind, row.amount
        if kind == "revenue":
            self.revenue += amount
            self.charges += row.entries
        elif kind == "refund":
            self.refunds += amount
        elif kind == "dispute":
            self.disputes += amount
        elif kind == "dispute_won":
            self.dispute_won += amount
        elif kind == "dispute_fee":
            self.dispute_fees += amount
        elif kind == "payment_fee":
            self.payment_fees += amount
        elif kind == "model_cost":
            self.model_cost -= amount  # ledger costs are negative amounts
        elif kind == "compute_cost":
            self.compute_cost -= amount


def summary(costs: Iterable[CostRow], ledger: Iterable[LedgerRow]) -> dict[str, Figures]:
    """Per currency, the window's figures."""
    out: dict[str, Figures] = {}
    for row in costs:
        if row.currency:
            out.setdefault(row.currency, Figures(row.currency)).add_tasks(row)
    for lrow in ledger:
        out.setdefault(lrow.currency, Figures(lrow.currency)).add_ledger(lrow)
    return dict(sorted(out.items()))


def unpriced_by_model(costs: Iterable[CostRow]) -> dict[str, int]:
    """Attempts without a price in the window, per model (any currency, or none), most first."""
    out: dict[str, int] = defaultdict(int)
    for row in costs:
        if row.unpriced:
            out[row.ai_model or "(none)"] += row.unpriced
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def tasks_without_currency(costs: Iterable[CostRow]) -> int:
    """Tasks in the window with no currency — their first attempt had no price, so no
    currency was set: they are in no summary or breakdown row (money is per currency), and
    the notice on attempts without a price says how many."""
    return sum(row.succeeded + row.failed + row.cancelled for row in costs if not row.currency)


def split(amount: int, weights: Sequence[Money]) -> list[int]:
    """`amount` split in proportion to non-negative `weights` (sum > 0), exactly: the
    parts add up to `amount` (largest remainder; ties to the earlier weight). Weights may
    be exact decimals (task costs): the arithmetic is in fractions, never floats."""
    exact = [Fraction(w) for w in weights]
    total = sum(exact)
    if total <= 0 or any(w < 0 for w in exact):
        raise ValueError("weights must be non-negative with a positive sum")
    sign = -1 if amount < 0 else 1
    magnitude = abs(amount)
    parts, remainders = [], []
    for i, w in enumerate(exact):
        q, r = divmod(magnitude * w, total)
        parts.append(int(q))
        remainders.append((-r, i))
    for _, i in sorted(remainders)[: magnitude - sum(parts)]:
        parts[i] += 1
    return [sign * p for p in parts]


GroupKey = tuple[str, str, int]  # (task_type, ai_model, rollout revision)


@dataclass
class Attribution:
    """Revenue per (type, model, rollout) group and currency, and what could not be attributed."""

    by_group: dict[tuple[GroupKey, str], int] = field(default_factory=dict)
    unattributed: dict[str, int] = field(default_factory=dict)  # currency -> net revenue
    reasons: dict[str, list[str]] = field(default_factory=dict)  # currency -> ideas and why


def idea_net_revenue(ledger: Iterable[LedgerRow]) -> dict[tuple[str, str], int]:
    """(idea, currency) -> net revenue (REVENUE_KINDS summed)."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for row in ledger:
        if row.kind in REVENUE_KINDS:
            out[(row.idea, row.currency)] += row.amount
    return out


def attribute(costs: Sequence[CostRow], ledger: Iterable[LedgerRow]) -> Attribution:
    weights: dict[str, dict[str, dict[GroupKey, Money]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for row in costs:
        if row.idea and row.currency:
            weights[row.idea][row.currency][(row.task_type, row.ai_model, row.rollout)] += (
                row.model_cost + row.compute_cost
            )
    result = Attribution()
    for (idea, currency), amount in sorted(idea_net_revenue(ledger).items()):
        if amount == 0:
            continue
        by_currency = {c: {g: w for g, w in groups.items() if w > 0} for c, groups in weights.get(idea, {}).items()}
        by_currency = {c: g for c, g in by_currency.items() if g}
        groups = by_currency.get(currency)
        if groups is None and len(by_currency) == 1:
            groups = next(iter(by_currency.values()))
        if not idea or not groups:
            why = (
                "no idea"
                if not idea
                else ("costs in several other currencies" if by_currency else "no task cost in the window")
            )
            result.unattributed[currency] = result.unattributed.get(currency, 0) + amount
            result.reasons.setdefault(currency, []).append(f"{idea or NO_IDEA}: {why}")
            continue
        keys = sorted(groups)
        for key, part in zip(keys, split(amount, [groups[k] for k in keys]), strict=True):
            result.by_group[(key, currency)] = result.by_group.get((key, currency), 0) + part
    return result


DIMENSIONS = ("type", "model", "rollout", "idea")


def _dim_value(row: CostRow, dim: str) -> str:
    if dim == "type":
        return row.task_type
    if dim == "model":
        return row.ai_model or "(none)"
    if dim == "rollout":
        return str(row.rollout) if row.rollout else "(none)"
    return row.idea or NO_IDEA


def breakdown(
    costs: Sequence[CostRow], ledger: Sequence[LedgerRow], dim: str, attribution: Attribution | None = None
) -> list[tuple[tuple[str, str], Figures]]:
    """Rows ((key, currency), figures) for one dimension, per currency; they add up to summary().
    `attribution`: revenue per group by a method of domain/attribution.py (default: attribute())."""
    rows: dict[tuple[str, str], Figures] = {}

    def at(key: str, currency: str) -> Figures:
        return rows.setdefault((key, currency), Figures(currency))

    for row in costs:
        if row.currency:
            at(_dim_value(row, dim), row.currency).add_tasks(row)
    if dim == "idea":
        for lrow in ledger:
            at(lrow.idea or NO_IDEA, lrow.currency).add_ledger(lrow)
    else:
        attribution = attribute(costs, ledger) if attribution is None else attribution
        for ((task_type, ai_model, rollout), currency), amount in attribution.by_group.items():
            group = CostRow(task_type, ai_model, rollout, "", currency, 0, 0, 0, 0, 0, 0)
            at(_dim_value(group, dim), currency).attributed += amount
        for currency, amount in attribution.unattributed.items():
            at(UNATTRIBUTED, currency).attributed += amount
        for lrow in ledger:  # costs that belong to no task
            if lrow.kind in COST_KINDS:
                at(UNATTRIBUTED, lrow.currency).add_ledger(lrow)
    return sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0] == UNATTRIBUTED, -kv[1].profit, kv[0][0]))


DayCost = tuple[date, str, Money, Money]  # (day, currency, model_cost, compute_cost)
DayLedger = tuple[date, str, str, int]  # (day, kind, currency, amount)


@dataclass(frozen=True)
class DayRow:
    day: date  # a UTC day, or the Monday of an ISO week
    currency: str
    net_revenue: int
    model_cost: Money  # tasks' and ledger's, as in Figures
    compute_cost: Money

    @property
    def ai_cost(self) -> Money:
        return self.model_cost + self.compute_cost

    @property
    def profit(self) -> Money:
        return self.net_revenue - self.ai_cost


def by_period(day_costs: Iterable[DayCost], day_ledger: Iterable[DayLedger], weekly: bool) -> list[DayRow]:
    """Net revenue, AI cost and profit per UTC day (or ISO week, keyed by its Monday).

    day_costs: (day, currency, model_cost, compute_cost); day_ledger: (day, kind, currency, amount).
    """
    revenue: dict[tuple[date, str], int] = defaultdict(int)
    model: dict[tuple[date, str], Money] = defaultdict(int)
    compute: dict[tuple[date, str], Money] = defaultdict(int)

    def slot(day: date) -> date:
        return day - timedelta(days=day.weekday()) if weekly else day

    for day, currency, model_cost, compute_cost in day_costs:
        if currency:
            model[(slot(day), currency)] += model_cost
            compute[(slot(day), currency)] += compute_cost
    for day, kind, currency, amount in day_ledger:
        if kind in REVENUE_KINDS:
            revenue[(slot(day), currency)] += amount
        elif kind == "model_cost":
            model[(slot(day), currency)] -= amount
        elif kind == "compute_cost":
            compute[(slot(day), currency)] -= amount
    keys = sorted(set(revenue) | set(model) | set(compute), key=lambda k: (k[1], k[0]))
    return [
        DayRow(
            day,
            currency,
            revenue.get((day, currency), 0),
            model.get((day, currency), 0),
            compute.get((day, currency), 0),
        )
        for day, currency in keys
    ]
