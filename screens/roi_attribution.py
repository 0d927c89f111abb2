"""Screen 3's attribution parts: the method in force (`a` cycles it), the notice shown
instead of a breakdown's ROI column when it cannot rank, and the per-idea table (`i`).

The arithmetic is services/attribution_report.py's (the same as `fsar-tui roi
--attribution` and `fsar-tui report`); this module turns it into status words, the
notice's lines and the table's cells.
"""

from __future__ import annotations

from collections.abc import Hashable

from rich.text import Text

from fsar_tui.db.roi import RoiData
from fsar_tui.domain import attribution, roi
from fsar_tui.domain.formatting import duration, money
from fsar_tui.domain.sanitize import one_line
from fsar_tui.services import attribution_report
from fsar_tui.widgets.safe_text import safe_line

SAME = attribution_report.SAME
# Implemented ideas, their revenue per idea, ideas worked on, cost per idea, median time to
# first revenue, implemented ideas that earned only before their completion, implemented
# ideas with no revenue (domain/idea_figures.py).
PER_IDEA_COLUMNS = ("ideas", "rev/idea", "worked on", "cost/idea", "1st rev.", "rev. before", "waiting")


def status_part(method: str, per_idea: bool, by: str) -> str:
    part = f"attribution: {attribution.NAMES[method]} (a)"
    if per_idea and by in attribution.RANKED_DIMENSIONS:
        part += " · per idea (i)"
    return part


def notice_text(flats: dict[str, attribution.Flat], by: str, method: str) -> Text | None:
    """The lines saying the ROI column cannot rank (None when it can)."""
    if not flats:
        return None
    text = Text(no_wrap=True, overflow="ellipsis")
    for f in flats.values():
        if text.plain:
            text.append("\n")
        point, _, why = attribution.notice(method, by, f).partition(": ")
        text.append(f"{point}: ", style="bold yellow")
        text.append(one_line(why))
        if method == "cost":
            text.append(" (a: another method)", style="dim")
    return text


def roi_cell(flats: dict[str, attribution.Flat], key: str, row: roi.Figures, text: Text) -> Text:
    """A breakdown row's ROI cell: SAME (dim) where the column cannot rank."""
    if row.currency in flats and key != roi.UNATTRIBUTED and row.ai_cost != 0:
        return Text(SAME, style="dim")
    return text


def per_idea_rows(data: RoiData, by: str) -> list[tuple[Hashable, list[Text]]]:
    """The breakdown table's rows in per-idea mode: by type, model or rollout."""
    rows: list[tuple[Hashable, list[Text]]] = []
    for key, f in attribution_report.per_idea_rows(data, by):
        c = f.currency
        rows.append(
            (
                (key, c),
                [
                    safe_line(key),
                    Text(f"{f.implemented:,}"),
                    Text(money(f.revenue_per_idea, c)),
                    Text(f"{f.worked_on:,}"),
                    Text(money(f.cost_per_idea, c)),
                    Text(duration(f.first_revenue_median_s)),
                    Text(f"{f.earned_before:,}", style="yellow" if f.earned_before else ""),
                    Text(f"{f.waiting:,}", style="yellow" if f.waiting else ""),
                ],
            )
        )
    return rows
