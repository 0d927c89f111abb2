"""`fsar-tui roi`: the ROI screen's numbers as a table, JSON or CSV.

Same query (db/roi.py) and arithmetic (domain/roi.py) as the ROI screen and the report,
so a figure never differs between them. JSON and CSV carry money as integer minor units
(`*_minor`) with the currency beside them — exact, never a float; the table prints
decimal amounts. Ideas and other free text pass through strip_controls.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fsar_tui.db.roi import RoiData
from fsar_tui.domain import json_decimal, roi
from fsar_tui.domain.formatting import money
from fsar_tui.domain.sanitize import safe_str

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
        }
    )
    return out


def breakdown_rows(data: RoiData, by: str) -> list[tuple[str, roi.Figures | roi.DayRow]]:
    if by in ("day", "week"):
        return [(row.day.isoformat(), row) for row in roi.by_period(data.day_costs, data.day_ledger, by == "week")]
    rows: list[tuple[str, roi.Figures | roi.DayRow]] = [
        (key, f) for (key, _currency), f in roi.breakdown(data.costs, data.ledger, by)
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
            "ai_cost_minor": row.ai_cost,
            "profit_minor": row.profit,
        }
    record = {by: safe_str(key), **figures_record(row)}
    if by != "idea":
        record["attributed_revenue_minor"] = row.attributed
    return record


def records(data: RoiData, by: str) -> dict:
    attribution = roi.attribute(data.costs, data.ledger)
    return {
        "window": {
            "first_day": data.first.isoformat(),
            "last_day": data.last.isoformat(),
            "days": (data.last - data.first).days + 1,
        },
        "attribution_method": roi.METHOD,
        "summary": [figures_record(f) for f in roi.summary(data.costs, data.ledger).values()],
        "unattributed": [
            {"currency": c, "net_revenue_minor": a, "why": [safe_str(r) for r in attribution.reasons.get(c, [])]}
            for c, a in sorted(attribution.unattributed.items())
        ],
        "by": by,
        "breakdown": [breakdown_record(k, row, by) for k, row in breakdown_rows(data, by)],
        "funnel": [{"stage": s, "currency": c, "reason": safe_str(r), "n": n} for s, c, r, n in data.funnel],
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}%"


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
        lines.append(
            f"{c}: revenue {money(s['revenue_minor'], c)}, refunds {money(s['refunds_minor'], c)}, disputes "
            f"{money(s['disputes_minor'] + s['dispute_won_minor'], c)}, fees "
            f"{money(s['payment_fees_minor'] + s['dispute_fees_minor'], c)} -> net {money(s['net_revenue_minor'], c)}; "
            f"model {money(s['model_cost_minor'], c)}, compute {money(s['compute_cost_minor'], c)}; "
            f"profit {money(s['profit_minor'], c)}, ROI {_pct(s['roi_pct'])}; "
            f"cost/success {money(s['cost_per_success_minor'], c)}, "
            f"failed tasks cost {money(s['failed_cost_minor'], c)}"
        )
    for u in rec["unattributed"]:
        lines.append(f"unattributed {money(u['net_revenue_minor'], u['currency'])}: {'; '.join(u['why'][:5])}")
    by = rec["by"]
    rows = rec["breakdown"]
    if by in ("day", "week"):
        header = [by, "net revenue", "AI cost", "profit"]
        body = [
            [
                r[by],
                money(r["net_revenue_minor"], r["currency"]),
                money(r["ai_cost_minor"], r["currency"]),
                money(r["profit_minor"], r["currency"]),
            ]
            for r in rows
        ]
    else:
        header = [by, "ok", "failed", "revenue", "AI cost", "profit", "ROI"]
        body = [
            [
                str(r[by]),
                f"{r['tasks_succeeded']:,}",
                f"{r['tasks_failed'] + r['tasks_cancelled']:,}",
                money(r["net_revenue_minor"], r["currency"]),
                money(r["ai_cost_minor"], r["currency"]),
                money(r["profit_minor"], r["currency"]),
                _pct(r["roi_pct"]),
            ]
            for r in rows
        ]
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]
    lines.append("")
    for i, row in enumerate([header, *body]):
        lines.append(
            "  ".join(c.ljust(wd) if j == 0 else c.rjust(wd) for j, (c, wd) in enumerate(zip(row, widths, strict=True)))
        )
        if i == 0:
            lines.append("  ".join("-" * wd for wd in widths))
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


def render(rec: dict, fmt: str) -> str:
    if fmt == "json":
        return json_decimal.dumps(rec, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        rows = rec["breakdown"]
        fields = list(rows[0]) if rows else [rec["by"], "currency"]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    return table(rec)
