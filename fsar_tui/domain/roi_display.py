"""ROI money as displayed: whole minor units, rounded once (half-even), so that where a
summary and its breakdown rows are shown together the rows add up to the summary.

The exact figures (domain/roi.py: task costs are decimals of minor units) are rounded
column by column over the rows of one currency with money.round_to_total: a column's
shown rows add up to its exact total rounded half-even, which is what the summary shows
(`shown` of the summary's figures). Derived columns are computed from the shown parts,
never rounded on their own — AI cost = model cost + compute cost, profit = net revenue −
AI cost — so a row, and the summary, also read right with a calculator.

Screens, the `roi` table and the report's Markdown show these; JSON and CSV keep the
exact values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fsar_tui.domain.money import round_half_even, round_to_total
from fsar_tui.domain.roi import DayRow, Figures, Money

ROUNDED = ("model_cost", "compute_cost", "waste", "failed_cost")  # exact decimals: rounded here


@dataclass(frozen=True)
class Shown:
    """One row's (or one summary's) money as displayed, in whole minor units."""

    currency: str
    net_revenue: int = 0
    model_cost: int = 0
    compute_cost: int = 0
    waste: int = 0
    failed_cost: int = 0

    @property
    def ai_cost(self) -> int:
        return self.model_cost + self.compute_cost

    @property
    def profit(self) -> int:
        return self.net_revenue - self.ai_cost


def _values(row: Figures | DayRow) -> dict[str, Money]:
    return {name: getattr(row, name, 0) for name in ROUNDED}


def _record_values(record: Mapping[str, Any]) -> dict[str, Money]:
    return {name: _exact(record.get(f"{name}_minor", 0)) for name in ROUNDED}


def _exact(value: Any) -> Money:
    return value if isinstance(value, int | Decimal) else Decimal(str(value or 0))


def _rounded(rows: Sequence[tuple[str, int, dict[str, Money]]]) -> list[Shown]:
    """(currency, net revenue, exact costs) rows → shown rows; per currency, per column,
    round_to_total."""
    by_currency: dict[str, list[int]] = {}
    for i, (currency, _, _) in enumerate(rows):
        by_currency.setdefault(currency, []).append(i)
    out: list[dict[str, Any]] = [{"currency": c, "net_revenue": int(net)} for c, net, _ in rows]
    for indexes in by_currency.values():
        for name in ROUNDED:
            for i, value in zip(indexes, round_to_total([rows[i][2][name] for i in indexes]), strict=True):
                out[i][name] = value
    return [Shown(**values) for values in out]


def shown(figures: Figures | DayRow) -> Shown:
    """One figure shown alone (a summary): each exact amount rounded half-even."""
    values = _values(figures)
    return Shown(figures.currency, int(figures.net_revenue), **{k: round_half_even(v) for k, v in values.items()})


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
    values = _record_values(record)
    return Shown(
        record["currency"],
        int(record.get("net_revenue_minor", 0)),
        **{k: round_half_even(v) for k, v in values.items()},
    )
