"""`fsar-tui roi`: the ROI screen's numbers as a table, JSON or CSV.

Same query (db/roi.py) and arithmetic (domain/roi.py) as the ROI screen and the report,
so a figure never differs between them. JSON and CSV carry money in minor units
(`*_minor`) with the currency beside them — exact: ledger amounts are integers, task
costs decimals with every digit they have (JSON numbers; CSV decimal text, never an
exponent), never a float. The table prints decimal amounts rounded once, half-even, the
breakdown's rows adding up to the summary as shown (domain/roi_display). Waste (cost of
attempts that did not produce the task's success) is a column and a summary figure;
attempts without a price are counted and named by model, never costed as 0. Ideas and
other free text pass through strip_controls.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fsar_tui.db.roi import RoiData
from fsar_tui.domain import json_decimal, roi
from fsar_tui.domain.attribution import DEFAULT as DEFAULT_METHOD
from fsar_tui.domain.formatting import fine_money, money
from fsar_tui.domain.roi_display import shown_record, shown_records
from fsar_tui.domain.sanitize import one_line, safe_str
from fsar_tui.services import attribution_report

MONEY_FIELDS = (
    "revenue",
    "refunds",
    "disputes",
    "dispute_won",
    "dispute_fees",
    "payment_fees",
    "net_revenue",
    "model_cost",
    "compute_cost",
    "ai_cost",
    "profit",
    "failed_cost",
    "waste",
)


def figures_record(f: roi.Figures) -> dict[str, Any]:
    out: dict[str, Any] = {"currency": f.currency}
    for name in MONEY_FIELDS:
        out[f"{name}_minor"] = getattr(f, name)
    out.update(
        {
            "roi_pct": None if f.roi_pct is None else round(f.roi_pct, 2),
            "cost_per_success_minor": f.cost_per_success,
            "tasks_succeeded": f.succeeded,
            "tasks_failed": f.failed,
            "tasks_cancelled": f.cancelled,
            "charges": f.charges,
            "unpriced_attempts": f.unpriced,
        }
    )
    return out


def breakdown_rows(data: RoiData, by: str, method: str = DEFAULT_METHOD) -> list[tuple[str, roi.Figures | roi.DayRow]]:
    if by in ("day", "week"):
        return [(row.day.isoformat(), row) for row in roi.by_period(data.day_costs, data.day_ledger, by == "week")]
    rows: list[tuple[str, roi.Figures | roi.DayRow]] = [
        (key, f) for (key, _currency), f in attribution_report.breakdown(data, by, method)
    ]
    if by == "rollout":
        rows = [(data.rollout_names.get(int(k), f"revision {k}") if k.isdigit() else k, f) for k, f in rows]
    return rows


def breakdown_record(key: str, row, by: str) -> dict:
    if isinstance(row, roi.DayRow):
        return {
            by: key,
            "currency": row.currency,
            "net_revenue_minor": row.net_revenue,
            "model_cost_minor": row.model_cost,
            "compute_cost_minor": row.compute_cost,
            "ai_cost_minor": row.ai_cost,
            "profit_minor": row.profit,
        }
    record = {by: safe_str(key), **figures_record(row)}
    if by != "idea":
        record["attributed_revenue_minor"] = row.attributed
    return record


def records(data: RoiData, by: str, method: str = DEFAULT_METHOD) -> dict:
    attribution = attribution_report.method_attribution(data, method)
    by_model = {safe_str(m): n for m, n in roi.unpriced_by_model(data.costs).items()}
    return {
        "window": {
            "first_day": data.first.isoformat(),
            "last_day": data.last.isoformat(),
            "days": (data.last - data.first).days + 1,
        },
        **attribution_report.records(data, by, method),  # attribution, uninformative, per_idea
        "summary": [figures_record(f) for f in roi.summary(data.costs, data.ledger).values()],
        # Attempts with tokens and no model price in force at their start, in any currency
        # or none (such a task may have no currency): their model cost is unknown, not 0.
        "unpriced_attempts": {
            "total": sum(by_model.values()),
            "by_model": by_model,
            "tasks_without_currency": roi.tasks_without_currency(data.costs),
        },
        "unattributed": [
            {"currency": c, "net_revenue_minor": a, "why": [safe_str(r) for r in attribution.reasons.get(c, [])]}
            for c, a in sorted(attribution.unattributed.items())
        ],
        "by": by,
        "breakdown": [breakdown_record(k, row, by) for k, row in breakdown_rows(data, by, method)],
        "funnel": [{"stage": s, "currency": c, "reason": safe_str(r), "n": n} for s, c, r, n in data.funnel],
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}%"


def unpriced_line(rec: dict, shown_models: int = 5) -> str | None:
    """'n attempts without a price …' (None when every attempt had one)."""
    unpriced = rec["unpriced_attempts"]
    if not unpriced["total"]:
        return None
    models = list(unpriced["by_model"].items())
    named = ", ".join(f"{one_line(m)} ×{n:,}" for m, n in models[:shown_models])
    more = f" and {len(models) - shown_models} more" if len(models) > shown_models else ""
    no_currency = unpriced.get("tasks_without_currency", 0)
    counted = (
        f"; {no_currency:,} task(s) with no currency (first attempt unpriced) are in no row below"
        if no_currency
        else ""
    )
    return (
        f"{unpriced['total']:,} attempt(s) without a price or compute rate — cost unknown, not counted: {named}{more}"
        f"{counted} (add the model's price to model_prices: later attempts are priced, these stay unknown)"
    )


def table(rec: dict) -> str:
    w = rec["window"]
    lines = [
        (
            f"ROI {w['first_day']} .. {w['last_day']} (UTC days; {w['days']} day(s)); attribution: "
            f"{rec['attribution_method']}"
        )
    ]
    if not rec["summary"]:
        lines.append("(no revenue or task cost in the window)")
    for s in rec["summary"]:
        c = s["currency"]
        shown = shown_record(s)
        lines.append(
            f"{c}: revenue {money(s['revenue_minor'], c)}, refunds {money(s['refunds_minor'], c)}, disputes "
            f"{money(s['disputes_minor'] + s['dispute_won_minor'], c)}, fees "
            f"{money(s['payment_fees_minor'] + s['dispute_fees_minor'], c)} -> net {money(shown.net_revenue, c)}; "
            f"AI cost {money(shown.ai_cost, c)} (model {money(shown.model_cost, c)}, compute "
            f"{money(shown.compute_cost, c)}), waste {money(shown.waste, c)}; profit {money(shown.profit, c)}, "
            f"ROI {_pct(s['roi_pct'])}; cost/success {fine_money(s['cost_per_success_minor'], c)} (waste included), "
            f"failed tasks cost {money(shown.failed_cost, c)}"
        )
    unpriced = unpriced_line(rec)
    if unpriced:
        lines.append(unpriced)
    for u in rec["unattributed"]:
        why = one_line("; ".join(u["why"][:5]))
        lines.append(f"unattributed {money(u['net_revenue_minor'], u['currency'])}: {why}")
    lines += attribution_report.notice_lines(rec)
    by = rec["by"]
    rows = rec["breakdown"]
    shown_rows = shown_records(rows)
    if by in ("day", "week"):
        header = [by, "net revenue", "AI cost", "profit"]
        body = [
            [r[by], money(v.net_revenue, v.currency), money(v.ai_cost, v.currency), money(v.profit, v.currency)]
            for r, v in zip(rows, shown_rows, strict=True)
        ]
    else:
        header = [by, "ok", "failed/cancelled", "net revenue", "AI cost", "waste", "profit", "ROI", "cost/ok"]
        body = [
            [
                one_line(str(r[by])),
                f"{r['tasks_succeeded']:,}",
                f"{r['tasks_failed'] + r['tasks_cancelled']:,}",
                money(v.net_revenue, v.currency),
                money(v.ai_cost, v.currency),
                money(v.waste, v.currency),
                money(v.profit, v.currency),
                attribution_report.roi_cell(rec, r, _pct(r["roi_pct"])),
                fine_money(r["cost_per_success_minor"], v.currency),
            ]
            for r, v in zip(rows, shown_rows, strict=True)
        ]
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]
    lines.append("")
    for i, row in enumerate([header, *body]):
        lines.append(
            "  ".join(c.ljust(wd) if j == 0 else c.rjust(wd) for j, (c, wd) in enumerate(zip(row, widths, strict=True)))
        )
        if i == 0:
            lines.append("  ".join("-" * wd for wd in widths))
    lines += attribution_report.per_idea_table(rec)
    if rec["funnel"]:
        lines.append("")
        lines.append(
            "payment funnel: "
            + ", ".join(
                f"{f['stage']}{' (' + f['reason'] + ')' if f['reason'] else ''} {f['n']:,} {f['currency']}"
                for f in rec["funnel"]
            )
        )
    return "\n".join(lines)


def markdown_lines(rec: dict, escape: Callable[[str], str]) -> list[str]:
    """The report's ROI figures in Markdown (`rec`: `records(data, "type")`, as the report
    holds it; `escape`: Markdown escaping of untrusted names): the summary per currency,
    attempts without a price, unattributed revenue, and the breakdown by task type, whose
    rows add up to the summary as shown."""
    out: list[str] = []
    if rec["summary"]:
        out += [
            (
                "| currency | revenue | refunds | disputes | fees | net revenue | AI cost | model cost | "
                "compute cost | waste | profit | ROI | cost / success | failed tasks cost |"
            ),
            "|" + "---|" * 14,
        ]
        for s in rec["summary"]:
            c, v = s["currency"], shown_record(s)
            roi_pct = "-" if s["roi_pct"] is None else f"{s['roi_pct']:,.1f} %"
            out.append(
                f"| {c} | {money(s['revenue_minor'], c)} | {money(s['refunds_minor'], c)} | "
                f"{money(s['disputes_minor'] + s['dispute_won_minor'], c)} | "
                f"{money(s['payment_fees_minor'] + s['dispute_fees_minor'], c)} | {money(v.net_revenue, c)} | "
                f"{money(v.ai_cost, c)} | {money(v.model_cost, c)} | {money(v.compute_cost, c)} | "
                f"{money(v.waste, c)} | {money(v.profit, c)} | {roi_pct} | "
                f"{fine_money(s['cost_per_success_minor'], c)} | {money(v.failed_cost, c)} |"
            )
        out += [
            "",
            (
                "Waste: the cost of attempts that did not produce their task's success (failed, lost their lease, "
                "cancelled); cost / success includes it. Amounts are rounded once, half-even; JSON and CSV are exact."
            ),
        ]
    else:
        out.append("No revenue and no task cost in the period.")
    unpriced = unpriced_line(rec)
    if unpriced:
        out.append(f"\n**{escape(unpriced)}**")
    for u in rec["unattributed"]:
        out.append(
            f"\nUnattributed revenue: {money(u['net_revenue_minor'], u['currency'])} "
            f"({escape(one_line('; '.join(u['why'][:5])))})."
        )
    out += [
        "",
        "### By task type",
        "",
        (
            "| type | currency | succeeded | failed / cancelled | net revenue | AI cost | waste | profit | "
            "cost / success |"
        ),
        "|" + "---|" * 9,
    ]
    for r, v in zip(rec["breakdown"], shown_records(rec["breakdown"]), strict=True):
        c = r["currency"]
        out.append(
            f"| {escape(one_line(r['type']))} | {c} | {r['tasks_succeeded']:,} | "
            f"{r['tasks_failed'] + r['tasks_cancelled']:,} | "
            f"{money(v.net_revenue, c)} | {money(v.ai_cost, c)} | {money(v.waste, c)} | {money(v.profit, c)} | "
            f"{fine_money(r['cost_per_success_minor'], c)} |"
        )
    return out


def csv_value(value: Any) -> Any:
    """A CSV cell: an exact decimal as fixed-point text (never '1E-7'), the rest as it is."""
    return json_decimal.decimal_text(value) if isinstance(value, Decimal) else value


def render(rec: dict, fmt: str) -> str:
    if fmt == "json":
        return json_decimal.dumps(rec, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        rows = rec["breakdown"]
        fields = list(rows[0]) if rows else [rec["by"], "currency"]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_value(v) for k, v in row.items()} for row in rows)
        return out.getvalue().rstrip("\n")
    return table(rec)
