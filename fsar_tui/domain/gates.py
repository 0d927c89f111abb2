"""Audit gates, judged: a measured value against the gate's pass condition.

A gate (table audit_gates, revision 0007/0016) names a metric, a scope (task_type,
ai_model and/or rollout target), a window, and a PASS condition — comparator and
threshold, as Argo Rollouts' successCondition: `failure_rate < 0.2` passes while the
failure rate stays under 20 %. With a baseline window the compared value is the ratio
current / baseline, where the baseline is the metric over the `baseline_window` just
before the current window (`p90_run_time <= 1.5` with a 7-day baseline: the last hour's
p90 may be at most 1.5× the week's).

Verdicts: pass, fail, inconclusive (too few samples to judge — rates and percentiles need
MIN_SAMPLES in the window and, relative, in the baseline; or no value at all; or a zero
baseline under a non-zero value, where a ratio means nothing) and error (the measurement
itself failed). Only a hard gate's 'fail' blocks execution (view execution_blocks), so an
inconclusive gate neither blocks the fleet nor passes silently: screens show it as such.
Pure: measuring is db/gates.py.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

COMPARATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

# Metrics whose value is a statistic of many tasks: below MIN_SAMPLES it is noise.
SAMPLED = frozenset(
    {"failure_rate", "p90_run_time", "cost_per_success", "roi", "retry_rate", "succeeded_without_result_rate"}
)
MIN_SAMPLES = 20

UNITS = {
    "failure_rate": "ratio",
    "retry_rate": "ratio",
    "succeeded_without_result_rate": "ratio",
    "p90_run_time": "ms",
    "cost_per_success": "minor units",
    "roi": "%",
    "anomaly_count": "tasks",
    "sensitive_results": "tasks",
    "open_blocking_proposals": "proposals",
    "broken_rollback_artifacts": "targets",
    "unpriced_attempts": "attempts",  # tokens of a model with no price in force: cost unknown (revision 0026)
}
METRICS = tuple(UNITS)  # the CHECK of revision 0026 lists the same (tested)
SCOPE_KEYS = ("task_type", "ai_model", "rollout", "canary")  # canary: revision 0035


@dataclass(frozen=True)
class Gate:
    id: int
    name: str
    metric: str
    scope: dict[str, Any]
    window_s: int
    comparator: str
    threshold: float
    hard: bool
    baseline_window_s: int | None = None
    enabled: bool = True
    builtin: bool = False
    description: str = ""

    @property
    def condition(self) -> str:
        rel = " × baseline" if self.baseline_window_s else ""
        return f"{self.metric} {self.comparator} {self.threshold:g}{rel}"


@dataclass(frozen=True)
class Measurement:
    value: float | None
    sample_size: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    verdict: str  # pass, fail, inconclusive, error
    value: float | None  # the compared value (a ratio when the gate has a baseline)
    measured: float | None  # the metric over the window
    baseline: float | None
    sample_size: int
    details: dict[str, Any] = field(default_factory=dict)


def _enough(metric: str, m: Measurement) -> bool:
    return m.value is not None and not (metric in SAMPLED and m.sample_size < MIN_SAMPLES)


def judge(gate: Gate, current: Measurement, baseline: Measurement | None = None) -> Verdict:
    """The gate's verdict on the current window (and its baseline, for a relative gate)."""
    details = dict(current.details)
    if current.value is None or not _enough(gate.metric, current):
        details["why"] = (
            f"{current.sample_size} sample(s) in the window, {MIN_SAMPLES} needed"
            if current.value is not None
            else "no value in the window"
        )
        return Verdict("inconclusive", None, current.value, None, current.sample_size, details)
    value = float(current.value)
    base = None
    if gate.baseline_window_s:
        if baseline is None or baseline.value is None or not _enough(gate.metric, baseline):
            n = 0 if baseline is None else baseline.sample_size
            details["why"] = f"baseline has {n} sample(s), {MIN_SAMPLES} needed"
            return Verdict("inconclusive", None, value, None, current.sample_size, details)
        base = float(baseline.value)
        if base == 0:
            if value != 0:
                details["why"] = "baseline is 0: a ratio to it means nothing"
                return Verdict("inconclusive", None, value, base, current.sample_size, details)
            compared = 1.0
        else:
            compared = value / base
    else:
        compared = value
    if math.isnan(compared):
        details["why"] = "value is not a number"
        return Verdict("error", None, value, base, current.sample_size, details)
    ok = COMPARATORS[gate.comparator](compared, gate.threshold)
    return Verdict("pass" if ok else "fail", compared, value, base, current.sample_size, details)


def parse_condition(text: str) -> tuple[str, float]:
    """`'<= 0.2'` or `'<0.2'` → ('<=', 0.2); ValueError with the reason otherwise."""
    text = text.strip()
    for comparator in ("<=", ">=", "<", ">"):
        if text.startswith(comparator):
            number = text[len(comparator) :].strip()
            try:
                threshold = float(number)
            except ValueError:
                raise ValueError(f"pass condition {text!r}: {number!r} is not a number") from None
            if not math.isfinite(threshold):
                raise ValueError(f"pass condition {text!r}: the threshold must be finite")
            return comparator, threshold
    raise ValueError(f"pass condition {text!r}: start with <, <=, > or >= (for example '<= 0.2')")


def scope_label(scope: dict[str, Any]) -> str:
    return " ".join(f"{k}={scope[k]}" for k in SCOPE_KEYS if scope.get(k)) or "all"


def in_scope(scope: dict[str, Any], task_type: str | None, ai_model: str | None) -> bool:
    """Does a (type, model) group belong to the scope? (The rollout key is matched by revision, in db/gates.)"""
    return (not scope.get("task_type") or scope["task_type"] == task_type) and (
        not scope.get("ai_model") or scope["ai_model"] == ai_model
    )
