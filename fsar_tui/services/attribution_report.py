"""Attribution in the ROI records: the method in force, the breakdown under it, where its
ROI column cannot rank, and per-idea figures — for `fsar-tui roi`, `fsar-tui report` and
screen 3 (domain/attribution.py and domain/idea_figures.py do the arithmetic).

Records carry `attribution` (the method's key: completing, equal, cost),
`attribution_method` (what it does, in words), `uninformative` (per currency, the
breakdown's ROI range and the sentence saying why it cannot rank — the table prints
"same" in the ROI column then) and `per_idea` (by type, model or rollout). Money is in
minor units with its currency, as in the rest of the records; free text is made safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fsar_tui.db.roi import RoiData
from fsar_tui.domain import attribution, roi
from fsar_tui.domain.formatting import duration, money
from fsar_tui.domain.idea_figures import IdeaFigures, per_idea
from fsar_tui.domain.sanitize import one_line, safe_str

SAME = "same"  # the ROI cell of a breakdown whose column cannot rank
HINT = {
    "cost": "--attribution completing or equal can rank them",
    "completing": "",
    "equal": "",
}


def method_attribution(data: RoiData, method: str) -> roi.Attribution:
    return attribution.attribute(method, data.costs, data.ledger, data.completions)


def breakdown(data: RoiData, by: str, method: str) -> list[tuple[tuple[str, str], roi.Figures]]:
    """roi.breakdown with `method`'s attribution (type, model, rollout, idea)."""
    return roi.breakdown(data.costs, data.ledger, by, method_attribution(data, method))


def flat(data: RoiData, by: str, method: str) -> dict[str, attribution.Flat]:
    """Per currency, the breakdown's ROI column when it cannot rank (type, model, rollout only)."""
    return flat_rows(breakdown(data, by, method), by)


def flat_rows(rows: Sequence[tuple[Any, Any]], by: str) -> dict[str, attribution.Flat]:
    """`flat` from breakdown rows already computed: ((key, currency), figures) or (key,
    figures) as roi_report.breakdown_rows gives them (period rows have no ROI)."""
    if by not in attribution.RANKED_DIMENSIONS:
        return {}
    return attribution.flat([((k[0] if isinstance(k, tuple) else k, f.currency), f) for k, f in rows])


def rollout_label(data: RoiData, key: str) -> str:
    return data.rollout_names.get(int(key), f"revision {key}") if key.isdigit() else key


def per_idea_rows(data: RoiData, by: str) -> list[tuple[str, IdeaFigures]]:
    if by not in attribution.RANKED_DIMENSIONS:
        return []
    rows = per_idea(by, data.costs, data.ledger, data.completions)
    return [(rollout_label(data, key) if by == "rollout" else key, f) for (key, _c), f in rows]


def per_idea_record(key: str, f: IdeaFigures, by: str) -> dict[str, Any]:
    return {
        by: safe_str(key),
        "currency": f.currency,
        "ideas_implemented": f.implemented,
        "ideas_worked_on": f.worked_on,
        "implemented_revenue_minor": f.revenue,
        "revenue_per_implemented_idea_minor": f.revenue_per_idea,
        "idea_cost_minor": f.idea_cost,
        "cost_per_idea_minor": f.cost_per_idea,
        "first_revenue_median_s": f.first_revenue_median_s,
        "ideas_earning_since": len(f.first_revenue_s),
        "ideas_waiting_for_revenue": f.waiting,
        "ideas_earning_before_completion": f.earned_before,
    }


def records(data: RoiData, by: str, method: str) -> dict[str, Any]:
    """The attribution part of roi_report.records."""
    attribution.check_method(method)
    return {
        "attribution": method,
        "attribution_method": attribution.DESCRIPTIONS[method],
        "uninformative": [
            {
                "currency": f.currency,
                "by": by,
                "groups": f.groups,
                "roi_pct_low": round(float(f.low), 2),
                "roi_pct_high": round(float(f.high), 2),
                "notice": attribution.notice(method, by, f),
            }
            for f in flat(data, by, method).values()
        ],
        "per_idea": [per_idea_record(key, f, by) for key, f in per_idea_rows(data, by)],
    }


def roi_cell(rec: dict, row: dict, text: str) -> str:
    """A breakdown row's ROI cell in a table: SAME where the column cannot rank."""
    flat_currencies = {u["currency"] for u in rec.get("uninformative", [])}
    ranked = row.get(rec["by"]) != roi.UNATTRIBUTED and row.get("roi_pct") is not None
    return SAME if ranked and row.get("currency") in flat_currencies else text


def notice_lines(rec: dict) -> list[str]:
    hint = HINT.get(rec.get("attribution", ""), "")
    return [one_line(u["notice"]) + (f"; {hint}" if hint else "") for u in rec.get("uninformative", [])]


PER_IDEA_HEADER = (
    "implemented",
    "revenue/idea",
    "worked on",
    "cost/idea",
    "to 1st revenue",
    "earned before",
    "waiting",
)


def per_idea_cells(r: dict) -> list[str]:
    c = r["currency"]
    return [
        f"{r['ideas_implemented']:,}",
        money(r["revenue_per_implemented_idea_minor"], c),
        f"{r['ideas_worked_on']:,}",
        money(r["cost_per_idea_minor"], c),
        duration(r["first_revenue_median_s"]),
        f"{r['ideas_earning_before_completion']:,}",
        f"{r['ideas_waiting_for_revenue']:,}",
    ]


def per_idea_table(rec: dict) -> list[str]:
    """`roi`'s per-idea table (type, model, rollout breakdowns), or nothing."""
    rows = rec.get("per_idea", [])
    if not rows:
        return []
    by = rec["by"]
    header = [by, "currency", *PER_IDEA_HEADER]
    body = [[one_line(str(r[by])), r["currency"] or "-", *per_idea_cells(r)] for r in rows]
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]
    lines = [
        "",
        (
            f"per idea, by {by} (implemented: its task completed the idea; to 1st revenue: median time from that "
            "task's finish; earned before: revenue before completion, none since; waiting: no revenue)"
        ),
    ]
    for i, row in enumerate([header, *body]):
        lines.append(
            "  ".join(c.ljust(wd) if j < 2 else c.rjust(wd) for j, (c, wd) in enumerate(zip(row, widths, strict=True)))
        )
        if i == 0:
            lines.append("  ".join("-" * wd for wd in widths))
    return lines


def markdown_lines(roi_rec: dict, escape: Callable[[str], str]) -> list[str]:
    """The report's attribution notices and per-idea table (Markdown; text already made
    safe; `escape` makes a name inert in Markdown)."""
    out = [f"\n{escape(line)}." for line in notice_lines(roi_rec)]
    rows = roi_rec.get("per_idea", [])
    if rows:
        by = roi_rec["by"]
        out += [
            "",
            f"### Per idea, by {by}",
            "",
            f"| {by} | currency | " + " | ".join(PER_IDEA_HEADER) + " |",
            "|---|---|" + "---|" * len(PER_IDEA_HEADER),
        ]
        for r in rows:
            cells = [escape(one_line(str(r[by]))), r["currency"] or "-", *per_idea_cells(r)]
            out.append("| " + " | ".join(cells) + " |")
    return out
