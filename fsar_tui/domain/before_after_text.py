"""Before/after evidence in words and JSON (domain/before_after.py computes it): the lines
the proposals screen's "Evidence: before/after" section and `fsar-tui proposals show`
print, and the object `proposals show --format json` carries. Pure. Untrusted names (the
proposal id, task types, targets) go through safe_str on one line: control sequences
removed, redacted unless revealed; the screen shows the lines as plain Text (no markup).
Unbounded interval ends are ∞ / 0 in words and null in JSON.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fsar_tui.domain.before_after import DAY, FAMILY, LEVEL, Comparison, Evidence, effect_text
from fsar_tui.domain.formatting import clock_time, fine_money
from fsar_tui.domain.sanitize import one_line, safe_str


def _bound(c: Comparison, x: float) -> str:
    if c.metric == "roi":
        return f"{x:+.1f}"
    return "0" if x <= 0 else "∞" if math.isinf(x) else f"×{x:.2f}"


def _figure(c: Comparison, x: float | None) -> str:
    if x is None:
        return "–"
    if c.metric == "failure_rate":
        return f"{100 * x:.1f} %"
    if c.metric == "run_time":
        return f"{x / 1000:.1f} s" if x >= 1000 else f"{x:.0f} ms"
    if c.metric == "cost_per_success":
        return fine_money(Decimal(repr(x)), c.currency)
    return f"{x:+.1f} %"


def _wait(c: Comparison, e: Evidence, needed: int) -> str:
    """What `needed` more after samples mean: while the after window fills, how long they
    take at its pace; once it is full, what a longer window would have needed."""
    w = e.windows
    more = f"~{needed:,} more {c.unit[:-1] if needed == 1 else c.unit}"
    if w is None or w.complete:
        return f"{more} would tell (the windows are full)"
    per_day = _after_n(c, e) / w.after_days if w.after_days > 0 else 0
    pace = f", ~{needed / per_day:.1f} days at the after window's pace" if per_day > 0 and c.metric != "roi" else ""
    return f"{more} after{pace}"


def _after_n(c: Comparison, e: Evidence) -> float:
    finished, failed = e.counts[1]
    return {"failure_rate": finished, "run_time": finished - failed}.get(c.metric, finished)


def metric_line(c: Comparison, e: Evidence) -> str:
    head = f"{c.label:<13} {_figure(c, c.before)} → {_figure(c, c.after)}"
    if c.ci is not None:
        sep = " to " if c.metric == "roi" else "–"
        head += f"  {effect_text(c)} (CI {_bound(c, c.ci[0])}{sep}{_bound(c, c.ci[1])})"
    text = f"{head}  {c.moved}" + (f": {c.why}" if c.why else "")
    if c.needed is not None:
        text += f"; {_wait(c, e, c.needed)}"
    elif c.moved == "no clear change":
        text += "; too small a change to show against the before window's spread"
    return text


SOURCES = "cost/success from raw tasks, the rest from the rollups"


def _day(t: datetime) -> str:
    return f"{t:%m-%d}"


def lines(e: Evidence) -> list[str]:
    """The evidence as plain lines (the screen's section, `proposals show`); untrusted names
    through safe_str on one line."""
    kind = one_line(safe_str(e.task_type)) if e.task_type is not None else "every task type"
    w = e.windows
    out = [f"Evidence: before/after · {kind} · {one_line(safe_str(e.subject))}"]
    if w is None or not e.comparisons:
        return [*out, f"  {e.verdict}: {e.summary}"]
    when = clock_time(w.changed_at, seconds=False) + (
        f" – {clock_time(w.settled_at, seconds=False)}" if w.settled_at != w.changed_at else ""
    )
    (nb, fb), (na, fa) = e.counts
    partial = "" if w.complete else f", {w.after_days:.1f} so far"
    last = w.after_start + (w.days - 1) * DAY
    out += [
        f"  changed {when} UTC; that day is in neither window",
        f"  before {_day(w.before_start)}–{_day(w.before_end - DAY)} ({w.days} d): {nb:,} finished, {fb:,} failed",
        f"  after  {_day(w.after_start)}–{_day(last)} ({w.days} d{partial}): {na:,} finished, {fa:,} failed",
        *(f"  {metric_line(c, e)}" for c in e.comparisons),
        f"  verdict: {e.summary}",
        f"  CI: {LEVEL * 100:g} % intervals ({FAMILY * 100:g} % for the four together); {SOURCES}",
    ]
    if e.other_changes:
        named = ", ".join(
            f"{one_line(safe_str(what))} ({clock_time(at.astimezone(UTC), seconds=False)})"
            for what, at in e.other_changes
        )
        out.append(f"  also changed in these windows (not told apart): {named}")
    return out


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def to_json(e: Evidence) -> dict[str, Any]:
    w = e.windows
    out: dict[str, Any] = {
        "subject": safe_str(e.subject),
        "task_type": None if e.task_type is None else safe_str(e.task_type),
        "verdict": e.verdict,
        "summary": safe_str(e.summary),
        "level": LEVEL,
        "family_level": FAMILY,
    }
    if w is not None:
        out["windows"] = {
            "changed_at": w.changed_at.isoformat(),
            "settled_at": w.settled_at.isoformat(),
            "days": w.days,
            "before": [w.before_start.isoformat(), w.before_end.isoformat()],
            "after": [w.after_start.isoformat(), w.after_end.isoformat()],
            "after_complete": w.complete,
            "after_days": round(w.after_days, 3),
        }
        out["before"] = {"finished": e.counts[0][0], "failed": e.counts[0][1]}
        out["after"] = {"finished": e.counts[1][0], "failed": e.counts[1][1]}
    out["metrics"] = [
        {
            "metric": c.metric,
            "currency": c.currency,
            "before": _num(c.before),
            "after": _num(c.after),
            "effect": _num(c.effect),
            "effect_kind": "difference_pct_points" if c.metric == "roi" else "ratio_after_over_before",
            "ci": None if c.ci is None else [_num(c.ci[0]), _num(c.ci[1])],
            "moved": c.moved,
            "needed": c.needed,
            "needed_unit": c.unit,
            "why": safe_str(c.why),
        }
        for c in e.comparisons
    ]
    out["other_changes"] = [{"what": safe_str(what), "at": at.isoformat()} for what, at in e.other_changes]
    return out
