"""ROI money as displayed: whole minor units, rounded once (half-even), so that where a
summary and its breakdown rows are shown together the rows add up to the summary.

The exact figures (domain/roi.py: task costs are decimals of minor units) are rounded
column by column over the rows of one currency with money.round_to_total: a column's
shown rows add up to its exact total rounded half-even, which is what the summary shows
(`shown` of the summary's figures). AI cost and profit are such columns, each rounded
once from its exact value (never the sum of rounded parts: model 0.4 + compute 0.4 is an
AI cost of 1, not 0 + 0). Model and compute cost are then split within each row so that
they add up to the row's shown AI cost, each within one unit of its exact value, and so
that each column adds up to the summary's split too (`split_column`, `split_rows`). The
rows' AI costs as rounded by column do not always leave room for that split (model 0.3 +
compute 0 and model 1.1 + compute 0.2: AI cost 1 and 1 leave model 1 and 1, the summary's
model cost is 1.4 → 1); then AI-cost units move between rows, each still within one unit
of its exact AI cost and the column still adding up to the summary, until it does (such a
rounding always exists: `split_rows`). Profit is rounded on its own, so net revenue −
AI cost can differ from the shown profit by a unit where both are rounded.

Screens, the `roi` table and the report's Markdown show these; JSON and CSV keep the
exact values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from fsar_tui.domain.money import round_half_even, round_to_total
from fsar_tui.domain.roi import DayRow, Figures, Money

ROUNDED = ("ai_cost", "profit", "waste", "failed_cost")  # exact decimals: rounded per column


@dataclass(frozen=True)
class Shown:
    """One row's (or one summary's) money as displayed, in whole minor units."""

    currency: str
    net_revenue: int = 0
    ai_cost: int = 0
    profit: int = 0
    waste: int = 0
    failed_cost: int = 0
    model_cost: int = 0  # model_cost + compute_cost == ai_cost
    compute_cost: int = 0


SPLIT = ("model_cost", "compute_cost")  # split within a row to add up to its shown AI cost


def _values(row: Figures | DayRow) -> dict[str, Money]:
    return {name: getattr(row, name, 0) for name in ROUNDED + SPLIT}


def _record_values(record: Mapping[str, Any]) -> dict[str, Money]:
    return {name: _exact(record.get(f"{name}_minor", 0)) for name in ROUNDED + SPLIT}


def _exact(value: Any) -> Money:
    return value if isinstance(value, int | Decimal) else Decimal(str(value or 0))


def _floor(value: Money) -> int:
    return int(Decimal(value).to_integral_value(rounding=ROUND_FLOOR))


def _ceil(value: Money) -> int:
    return int(Decimal(value).to_integral_value(rounding=ROUND_CEILING))


def split_column(models: Sequence[Money], computes: Sequence[Money], ai_shown: Sequence[int], total: int) -> list[int]:
    """The shown model cost of each row: within one unit of its exact value, leaving a
    compute cost (the row's shown AI cost − it) within one unit of its own, and adding up
    to `total` (the summary's shown model cost) where those bounds allow it — else to the
    nearest sum they allow. Each row starts at its model cost rounded half-even, moved
    into its bounds; the units still missing (or over) go to the rows with the largest
    (smallest) remainders, ties to the earlier row."""
    lows = [max(_floor(m), a - _ceil(c)) for m, c, a in zip(models, computes, ai_shown, strict=True)]
    highs = [min(_ceil(m), a - _floor(c)) for m, c, a in zip(models, computes, ai_shown, strict=True)]
    out = [min(max(round_half_even(m), lo), hi) for m, lo, hi in zip(models, lows, highs, strict=True)]
    target = min(max(total, sum(lows)), sum(highs))
    missing = target - sum(out)
    if missing > 0:
        order = sorted((i for i in range(len(out)) if out[i] < highs[i]), key=lambda i: (-(models[i] - out[i]), i))
        for i in order[:missing]:
            out[i] += 1
    elif missing < 0:
        order = sorted((i for i in range(len(out)) if out[i] > lows[i]), key=lambda i: (models[i] - out[i], i))
        for i in order[:-missing]:
            out[i] -= 1
    return out


def split_rows(
    models: Sequence[Money], computes: Sequence[Money], ai_shown: Sequence[int], total: int
) -> tuple[list[int], list[int]]:
    """(AI cost, model cost) of each row as shown: `split_column`'s model costs, adding up
    to `total` (the summary's shown model cost). Where the rows' AI costs (`ai_shown`,
    adding up to the summary's) leave no such split, a unit of AI cost moves from one row
    to another — each within one unit of its exact AI cost, model + compute — and the
    split is made again, until the model costs add up to `total`.

    Such a rounding always exists when `total` is the summary's model cost rounded within
    a unit and its compute cost (AI cost − it) too (`_alone`): the rows' possible (model,
    compute) roundings form integral generalized polymatroids, their sums add up to the
    integer points of the summed bounds, and those contain the summary's. While the split
    falls short, every row is at its bound, so the move that raises the sum by one is a
    row i whose model cost can rise with its AI cost and another row j whose compute cost
    can fall with its AI cost; the converse when it is over. Of those pairs, the one whose
    AI costs end nearest their exact values (i furthest below, j furthest above), ties to
    the earlier rows."""
    exact_ai = [m + c for m, c in zip(models, computes, strict=True)]
    ai = list(ai_shown)
    while True:
        out = split_column(models, computes, ai, total)
        gap = total - sum(out)
        if gap == 0:
            return ai, out
        step = 1 if gap > 0 else -1
        # i: model and AI cost move by `step` (compute kept); j: compute and AI cost by −step.
        movers = [k for k in range(len(ai)) if _within(models[k], out[k] + step) and _within(exact_ai[k], ai[k] + step)]
        givers = [
            k
            for k in range(len(ai))
            if _within(computes[k], ai[k] - out[k] - step) and _within(exact_ai[k], ai[k] - step)
        ]
        pairs = [
            (step * (ai[i] - exact_ai[i]) - step * (ai[j] - exact_ai[j]), i, j)
            for i in movers
            for j in givers
            if i != j
        ]
        if not pairs:  # not reached (see above); the nearest sum split_column allows
            return ai, out
        _, i, j = min(pairs)
        ai[i] += step
        ai[j] -= step


def _within(exact: Money, shown: int) -> bool:
    """`shown` is within one unit of `exact`: its value rounded down or up."""
    return _floor(exact) <= shown <= _ceil(exact)


def _alone(currency: str, net: int, values: dict[str, Money]) -> Shown:
    rounded = {k: round_half_even(values[k]) for k in ROUNDED}
    model = _start(values, rounded["ai_cost"])
    return Shown(currency, net, **rounded, model_cost=model, compute_cost=rounded["ai_cost"] - model)


def _start(values: dict[str, Money], ai_shown: int) -> int:
    """One row's model cost: rounded half-even, moved into the bounds that keep it and the
    compute cost (ai_shown − it) within a unit of their exact values."""
    m, c = values["model_cost"], values["compute_cost"]
    lo, hi = max(_floor(m), ai_shown - _ceil(c)), min(_ceil(m), ai_shown - _floor(c))
    return min(max(round_half_even(m), lo), hi)


def _rounded(rows: Sequence[tuple[str, int, dict[str, Money]]]) -> list[Shown]:
    """(currency, net revenue, exact figures) rows → shown rows; per currency, per column,
    round_to_total; model and compute split within each row to add up to the summary's
    split, AI cost moved between rows where that split needs it (split_rows)."""
    by_currency: dict[str, list[int]] = {}
    for i, (currency, _, _) in enumerate(rows):
        by_currency.setdefault(currency, []).append(i)
    out: list[dict[str, Any]] = [{"currency": c, "net_revenue": int(net)} for c, net, _ in rows]
    for currency, indexes in by_currency.items():
        for name in ROUNDED:
            for i, value in zip(indexes, round_to_total([rows[i][2][name] for i in indexes]), strict=True):
                out[i][name] = value
        totals = {k: sum((rows[i][2][k] for i in indexes), Decimal(0)) for k in ROUNDED + SPLIT}
        summary = _alone(currency, 0, totals)
        ais, models = split_rows(
            [rows[i][2]["model_cost"] for i in indexes],
            [rows[i][2]["compute_cost"] for i in indexes],
            [out[i]["ai_cost"] for i in indexes],
            summary.model_cost,
        )
        for i, ai, model in zip(indexes, ais, models, strict=True):
            out[i]["ai_cost"], out[i]["model_cost"], out[i]["compute_cost"] = ai, model, ai - model
    return [Shown(**values) for values in out]


def shown(figures: Figures | DayRow) -> Shown:
    """One figure shown alone (a summary): AI cost, profit, waste and failed cost each its
    exact amount rounded half-even; model and compute split to add up to the AI cost."""
    return _alone(figures.currency, int(figures.net_revenue), _values(figures))


def shown_rows(rows: Sequence[Figures | DayRow]) -> list[Shown]:
    """Breakdown rows (any currencies, in their order) shown so that, per currency, each
    column adds up to the summary's `shown` value."""
    return _rounded([(r.currency, int(r.net_revenue), _values(r)) for r in rows])


def shown_records(records: Sequence[Mapping[str, Any]]) -> list[Shown]:
    """The same for JSON-shaped records (`currency`, `net_revenue_minor`, `*_minor`), as the
    `roi` command and the report hold them."""
    return _rounded([(r["currency"], int(r.get("net_revenue_minor", 0)), _record_values(r)) for r in records])


def shown_record(record: Mapping[str, Any]) -> Shown:
    """A summary record shown alone."""
    return _alone(record["currency"], int(record.get("net_revenue_minor", 0)), _record_values(record))
