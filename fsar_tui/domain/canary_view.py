"""How a canary and its judgement read, as text: `rollouts canary status|promote|abort|
analyze` print these lines and screen 4 shows them (and `status_json` is the JSON
status). Every text that came from the database or an operator (targets, reasons, actors,
gate names, the judge's words) goes through strip_controls: no escape sequence reaches a
terminal. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fsar_tui.domain.canary import Canary, staleness, weight_line
from fsar_tui.domain.sanitize import strip_controls

METRIC_NAMES = {
    "failure_rate": "failure rate",
    "run_time": "p90 run time",
    "cost_per_success": "cost per success",
    "tokens": "median tokens",
}


def _clean(text: object, limit: int = 300) -> str:
    s = strip_controls(str(text))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def figure(metric: str, value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return "—"
    if metric == "failure_rate":
        return f"{value:.1%}"
    if metric == "run_time":
        return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"
    if metric == "cost_per_success":
        return f"{value:,.1f} minor"
    if metric == "tokens":
        return f"{value:,.0f}"
    return f"{value:g}"


def ratio(effect: object, ci: object) -> str:
    if not isinstance(effect, int | float) or isinstance(effect, bool) or not math.isfinite(effect):
        return "—"
    out = f"×{effect:.2f}"
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(isinstance(x, int | float) for x in ci):
        out += f" [{ci[0]:.2f}–{ci[1]:.2f}]"
    return out


def metric_rows(judgement: Mapping[str, Any] | None) -> list[tuple[str, str, str, str, str, str]]:
    """(metric, verdict, canary, stable, effect [CI], why) per metric of a stored judgement."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    metrics = judgement.get("metrics") if isinstance(judgement, Mapping) else None
    for m in metrics if isinstance(metrics, list | tuple) else []:
        if not isinstance(m, Mapping):
            continue
        metric = str(m.get("metric", "?"))
        name = METRIC_NAMES.get(metric, metric)
        rows.append(
            (
                _clean(name, 60),
                _clean(m.get("verdict", "?"), 20),
                figure(metric, m.get("canary")),
                figure(metric, m.get("stable")),
                ratio(m.get("effect"), m.get("ci")),
                _clean(m.get("why") or "", 200),
            )
        )
    return rows


def _when(at: datetime | None) -> str:
    return "—" if at is None else f"{at:%Y-%m-%d %H:%M:%S %Z}".strip()


def status_lines(c: Canary) -> list[str]:
    lines = [
        _clean(
            f"{c.target}: canary {c.id} {c.state} — revision {c.canary_revision} vs stable {c.stable_revision}, "
            f"{weight_line(c.state, c.weight, c.step, c.steps)}"
        ),
        _clean(f"  started {_when(c.started_at)} by {c.started_by}: {c.start_reason}"),
    ]
    if c.state != "running":
        lines.append(_clean(f"  ended {_when(c.ended_at)} by {c.ended_by}: {c.end_reason}"))
        return lines
    lines.append(
        f"  this step since {_when(c.step_started_at)}; tasks claimed: "
        f"{c.claimed.get('canary', 0):,} canary, {c.claimed.get('stable', 0):,} stable"
    )
    j = c.judgement if isinstance(c.judgement, dict) else {}  # jsonb: a recorder could store any shape
    if j.get("verdict"):
        score = j.get("score")
        score_text = f", score {score:.0f}" if isinstance(score, int | float) else ""
        by = f" (recorded by {c.judged_by})" if c.judged_by else ""
        lines.append(
            _clean(f"  judge: {j.get('verdict')}{score_text} at {_when(c.judged_at)}{by}: {j.get('summary', '')}")
        )
        for name, verdict, canary, stable, effect, why in metric_rows(j):
            lines.append(f"    {name:<18} {verdict:<12} canary {canary:>10}  stable {stable:>10}  {effect}  {why}")
    elif j.get("error"):
        lines.append(_clean(f"  judge: error at {_when(c.judged_at)}: {j['error']}"))
    else:
        lines.append("  judge: no analysis yet")
    if c.hold_reason:
        lines.append(_clean(f"  weight holds: {c.hold_reason}"))
    stale = staleness(c.judged_at, c.step_started_at, c.now, c.pass_at)
    if stale:
        lines.append(_clean(f"  STALE: {stale}"))
    return lines


def status_json(c: Canary, analyses: Iterable[tuple[datetime, int, str, Any, str | None]] = ()) -> dict[str, Any]:
    return {
        "id": c.id,
        "target": c.target,
        "task_type": c.task_type,
        "state": c.state,
        "weight": c.weight,
        "step": c.step + 1,
        "steps": list(c.steps),
        "canary_revision": c.canary_revision,
        "stable_revision": c.stable_revision,
        "interval_s": c.interval_s,
        "manual": c.manual,
        "started_at": c.started_at,
        "started_by": c.started_by,
        "start_reason": c.start_reason,
        "step_started_at": c.step_started_at,
        "ended_at": c.ended_at,
        "ended_by": c.ended_by,
        "end_reason": c.end_reason,
        "claimed_this_step": dict(c.claimed),
        "judgement": c.judgement,
        "judged_at": c.judged_at,
        "judged_by": c.judged_by,
        "hold_reason": c.hold_reason,
        "stale": staleness(c.judged_at, c.step_started_at, c.now, c.pass_at) if c.state == "running" else None,
        "analyses": [
            {
                "at": at,
                "step": step + 1,
                "verdict": verdict,
                "score": None if score is None else float(score),
                "hold_reason": hold,
            }
            for at, step, verdict, score, hold in analyses
        ],
    }


def judgement_lines(judgement: Any) -> list[str]:
    """A fresh Judgement (domain/canary_judge.py) as `canary analyze` prints it."""
    from fsar_tui.domain.canary import judgement_json

    data = judgement_json(judgement)
    score = data.get("score")
    score_text = f", score {score:.0f}" if isinstance(score, int | float) else ""
    lines = [_clean(f"verdict {data.get('verdict')}{score_text}: {data.get('summary', '')}")]
    for name, verdict, canary, stable, effect, why in metric_rows(data):
        lines.append(f"  {name:<18} {verdict:<12} canary {canary:>10}  stable {stable:>10}  {effect}  {why}")
    return lines
