"""`fsar-tui profile`: the profiles as a table, JSON or CSV, from the same query code as
the Profiles screen (db.profiles + domain.profiles).

Durations are printed in seconds (table: human units; JSON/CSV: seconds with three
decimals, so spreadsheets can sort them). Groups with fewer than MIN_SAMPLES runs
are flagged: their p99 is one or two tasks, not a distribution.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from fsar_tui.domain import json_decimal
from fsar_tui.domain.formatting import duration
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
)


def record(p: Profile, by: Sequence[str]) -> dict:
    def s(ms):
        return None if ms is None else round(ms / 1000, 3)

    cost = p.cost_per_success
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
        "cost_per_success": None if cost is None else round(cost[0] / 100, 4),
        "currency": None if cost is None else cost[1],
        "samples": p.samples,
    }


def render(profiles: Sequence[Profile], by: Sequence[str], fmt: str, window: str) -> str:
    records = [record(p, by) for p in profiles]
    if fmt == "json":
        return json_decimal.dumps({"window": window, "by": list(by), "groups": records}, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*by, *FIELDS], lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue().rstrip("\n")
    return table(records, by, window)


def table(records: list[dict], by: Sequence[str], window: str) -> str:
    def secs(v):
        return "-" if v is None else duration(v)

    header = [*by, "n", "mean", "p50", "p90", "p99", "max", "fail%", "wait p90", "cost/ok", ""]
    rows = []
    for r in records:
        cost = "-" if r["cost_per_success"] is None else f"{r['cost_per_success']:.4f} {r['currency']}"
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
                note,
            ]
        )
    widths = (
        [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)] if rows else [len(h) for h in header]
    )
    lines = [f"duration profiles, window {window} (percentiles within 0.8 %)"]
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
