"""Money beside a duration profile: per (type, model[, rollout]) group, cost per
successful task (waste included) and waste, in the group's currency.

The ROI screen's figures regrouped: the cost rollups' rows (domain/roi.CostRow, read by
db/profiles.money_rows over whole UTC days, the ROI screen's window of the same length)
summed per profile key with domain/roi.Figures — exact decimals, the same definitions —
so the Profiles screen, `fsar-tui profile` and the ROI screen never differ on a group's
cost. Money is kept per UTC day, so a profile window of hours shows today's money:
screens and exports name the days (`money_days`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from fsar_tui.domain.roi import CostRow, Figures

DAY_S = 86400


def money_days(window_s: int) -> int:
    """The whole UTC days (today included) that stand for a profile window of `window_s`."""
    return max(1, -(-window_s // DAY_S))


def _dim(row: CostRow, dim: str) -> str:
    if dim == "type":
        return row.task_type
    if dim == "model":
        return row.ai_model
    return str(row.rollout)


@dataclass
class GroupMoney:
    """One profile group's money: figures per currency and attempts without a price."""

    figures: dict[str, Figures] = field(default_factory=dict)
    unpriced: int = 0

    @property
    def main(self) -> Figures | None:
        """The currency that carries the group's cost (costs are priced per model: one, in practice)."""
        if not self.figures:
            return None
        return max(self.figures.values(), key=lambda f: (abs(f.ai_cost), f.succeeded, f.currency))

    @property
    def cost_per_success(self) -> tuple[Decimal, str] | None:
        main = self.main
        cps = None if main is None else main.cost_per_success
        return None if main is None or cps is None else (cps, main.currency)

    @property
    def waste(self) -> tuple[Decimal | int, str] | None:
        main = self.main
        return None if main is None else (main.waste, main.currency)


def by_key(costs: Iterable[CostRow], by: Sequence[str]) -> dict[tuple[str, ...], GroupMoney]:
    """Cost rows summed per profile key (`by`: type, model, rollout — keys as the profiles
    hold them: text, '' for no model, '0' for no rollout revision)."""
    out: dict[tuple[str, ...], GroupMoney] = {}
    for row in costs:
        group = out.setdefault(tuple(_dim(row, d) for d in by), GroupMoney())
        group.unpriced += row.unpriced
        if row.currency:
            group.figures.setdefault(row.currency, Figures(row.currency)).add_tasks(row)
    return out
