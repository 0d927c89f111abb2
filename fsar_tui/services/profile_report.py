"""`fsar-tui profile`: the profiles as a table, JSON or CSV, from the same query code as
the Profiles screen (db.profiles + domain.profiles).

Durations are printed in seconds (table: human units; JSON/CSV: seconds with three
decimals, so spreadsheets can sort them). Groups with fewer than MIN_SAMPLES runs
are flagged: their p99 is one or two tasks, not a distribution.

Money beside each group is the ROI screen's (domain/profile_money), over the whole UTC
days that stand for the window (`money_days`): cost per successful task with waste
included — `cost_per_success` in major units as before (now exact, and in the currency's
own decimals), `cost_per_success_minor` in minor units, to 10⁻⁶ — `waste_minor` (exact)
and `unpriced_attempts`. The table rounds once, at display, half-even.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

from fsar_tui.domain import json_decimal
from fsar_tui.domain.formatting import duration, fine_money, minor_digits, money
from fsar_tui.domain.profile_money import GroupMoney
from fsar_tui.domain.profiles import MIN_SAMPLES, Profile
from fsar_tui.domain.sanitize import safe_str

FIELDS = (
    "n",
    "mean_s",
    "p50_s",
    "p90_s",
    "p99_s",
    "max_s",
    "failure_rate",
    "wait_p90_s",
    "cost_per_success",
    "currency",
    "samples",
    "cost_per_success_minor",
    "waste_minor",
    "unpriced_attempts",
)


def record(p: Profile, by: Sequence[str], group: GroupMoney | None = None) -> dict:
    def s(ms):
        return None if ms is None else round(ms / 1000, 3)

    group = group or GroupMoney()
    cost, main = group.cost_per_success, group.main
    return {
        **{dim: safe_str(value) if value is not None else None for dim, value in zip(by, p.key, strict=True)},
        "n": p.n,
        "mean_s": s(p.mean_ms),
        "p50_s": s(p.p(0.5)),
        "p90_s": s(p.p(0.9)),
        "p99_s": s(p.p(0.99)),
        "max_s": s(p.max_ms),
        "failure_rate": None if p.failure_rate is None else round(p.failure_rate, 4),
        "wait_p90_s": s(p.wait_p90_ms),
        "cost_per_success": None if cost is None else cost[0].scaleb(-minor_digits(cost[1])),
        "currency": None if main is None else main.currency,
        "samples": p.samples,
        "cost_per_success_minor": None if cost is None else cost[0],
        "waste_minor": None if main is None else main.waste,
        "unpriced_attempts": group.unpriced,
    }


def records(
    profiles: Sequence[Profile], by: Sequence[str], money: Mapping[tuple[str, ...], GroupMoney] | None = None
) -> list[dict]:
    money = money or {}
    return [record(p, by, money.get(tuple(str(k or "") for k in p.key))) for p in profiles]


def render(
    profiles: Sequence[Profile],
    by: Sequence[str],
    fmt: str,
    window: str,
    money: Mapping[tuple[str, ...], GroupMoney] | None = None,
    money_days: tuple[date, date] | None = None,
) -> str:
    rows = records(profiles, by, money)
    days = (
        None if money_days is None else {"first_day": money_days[0].isoformat(), "last_day": money_days[1].isoformat()}
    )
    if fmt == "json":
        return json_decimal.dumps({"window": window, "by": list(by), "money_days": days, "groups": rows}, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*by, *FIELDS], lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_value(v) for k, v in r.items()} for r in rows)
        return out.getvalue().rstrip("\n")
    return table(rows, by, window, days)


def csv_value(value):
    """A CSV cell: an exact decimal as fixed-point text (never '1E-7')."""
    return json_decimal.decimal_text(value) if isinstance(value, Decimal) else value


def table(records: list[dict], by: Sequence[str], window: str, money_days: dict | None = None) -> str:
    def secs(v):
        return "-" if v is None else duration(v)

    header = [*by, "n", "mean", "p50", "p90", "p99", "max", "fail%", "wait p90", "cost/ok", "waste", ""]
    rows = []
    for r in records:
        cost = fine_money(r["cost_per_success_minor"], r["currency"])
        waste = "-" if r["waste_minor"] is None else money(r["waste_minor"], r["currency"])
        if r["unpriced_attempts"]:
            waste += f" ({r['unpriced_attempts']:,} unpriced)"
        fail = "-" if r["failure_rate"] is None else f"{100 * r['failure_rate']:.1f}"
        note = f"only {r['samples']} runs" if r["samples"] < MIN_SAMPLES else ""
        rows.append(
            [
                *(str(r[d]) for d in by),
                f"{r['n']:,}",
                secs(r["mean_s"]),
                secs(r["p50_s"]),
                secs(r["p90_s"]),
                secs(r["p99_s"]),
                secs(r["max_s"]),
                fail,
                secs(r["wait_p90_s"]),
                cost,
                waste,
                note,
            ]
        )
    widths = (
        [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)] if rows else [len(h) for h in header]
    )
    lines = [f"duration profiles, window {window} (percentiles within 0.8 %)"]
    if money_days is not None:
        first, last = money_days["first_day"], money_days["last_day"]
        lines.append(
            f"cost/ok (waste included) and waste over UTC days {first} .. {last}, as the ROI screen; "
            "'unpriced': attempts without a price, cost unknown"
        )
    for i, row in enumerate([header, *rows]):
        cells = [
            c.ljust(w) if j < len(by) or j == len(row) - 1 else c.rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths).rstrip())
    if not rows:
        lines.append("(no finished tasks in the window)")
    return "\n".join(lines)
