"""Audit gates, evaluated: measure each gate's metric over its window (and baseline),
judge it (domain/gates.py) and record the verdict — `fsar-tui audit run` and the app's
scheduled audit pass. The SQL lives in db/gates.py; where each metric comes from is
said there.

Each gate is measured in its own transaction: one that errors (a statement timeout)
records 'error' and the others still run.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import psycopg
from psycopg import Connection

from fsar_tui import clock
from fsar_tui.db import gates as gate_reads
from fsar_tui.db import profiles as profile_reads
from fsar_tui.db import retention as retention_reads
from fsar_tui.db import rollouts
from fsar_tui.db.roi import day_bounds, roi_data_sync
from fsar_tui.domain import profiles as profile_math
from fsar_tui.domain import roi as roi_math
from fsar_tui.domain.gates import Gate, Measurement, Verdict, in_scope, judge
from fsar_tui.domain.json_text import JsonText
from fsar_tui.domain.redact import policy, value_findings
from fsar_tui.domain.retention import GateReach, archived_problem
from fsar_tui.errors import UsageError, first_line


def _profile(conn: Connection, gate: Gate, start: datetime, end: datetime, now: datetime) -> profile_math.Profile:
    scope = gate_reads.scope_params(conn, gate)
    by = ("type", "model", "rollout") if scope["revision"] is not None else ("type", "model")
    parts = [
        p
        for p in profile_reads.load_profiles_sync(conn, start, end, now, by)
        # The profiles' keys are text (db/profiles._keyed): the revision id compared as text —
        # compared as an int it never matched, and every rollout-scoped gate read nothing.
        if in_scope(gate.scope, p.key[0], p.key[1])
        and (scope["revision"] is None or p.key[2] == str(scope["revision"]))
    ]
    return profile_math.merge(parts)


def _from_profile(metric: str, p: profile_math.Profile) -> Measurement:
    if metric == "failure_rate":
        return Measurement(p.failure_rate, p.succeeded + p.failed)
    if metric == "p90_run_time":
        return Measurement(p.p(0.9), p.samples)
    cps = p.cost_per_success
    return Measurement(None if cps is None else cps[0], p.succeeded, {} if cps is None else {"currency": cps[1]})


def _roi(conn: Connection, gate: Gate, start: datetime, end: datetime) -> Measurement:
    if gate.scope.get("ai_model") or gate.scope.get("rollout"):
        raise UsageError(f"gate {gate.name}: roi is measured per task type only")
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    data = roi_data_sync(conn, first, last)
    if gate.scope.get("task_type"):
        rows = [
            f
            for (label, _currency), f in roi_math.breakdown(data.costs, data.ledger, "type")
            if label == gate.scope["task_type"]
        ]
    else:
        rows = list(roi_math.summary(data.costs, data.ledger).values())
    if not rows:
        return Measurement(None, 0)
    figures = max(rows, key=lambda f: f.ai_cost)  # the currency that carries the cost
    lo, hi = day_bounds(first, last)
    return Measurement(
        figures.roi_pct, figures.succeeded, {"currency": figures.currency, "days": f"{lo:%Y-%m-%d}..{hi:%Y-%m-%d}"}
    )


def sensitive_prefilter() -> str:
    """The SQL prefilter for the policy in force: the detectors' tell-tales, and a key of any
    always-hidden field; a configured extra pattern is Python regex syntax, so then every
    result is a candidate (Postgres would not read every Python pattern alike)."""
    if policy().patterns:
        return "."
    fields = "|".join(sorted(re.escape(f) for f in policy().fields))
    return f'{gate_reads.SENSITIVE_PREFILTER}|"(?:{fields})":'


# Bounded per row and per run (issue 15: one 200 KB result took 41 s, and the app runs the
# gate every minute): a result is parsed only up to SCAN_PER_RESULT characters (a larger one,
# or one nested too deep for Python's parser, arrives as its JSON text: db/json_adapters) and
# checked on its first SCAN_PER_RESULT characters (named in `partly_checked`); past
# SCAN_PER_RUN characters in all, the rest of the candidates wait for the next run (said in
# `note`: the count is then "at least"). Redaction is linear, so these bound the time.
SCAN_PER_RESULT = 1024 * 1024
SCAN_PER_RUN = 32 * 1024 * 1024


def _sensitive(conn, gate, start, end) -> Measurement:
    from fsar_tui.db.json_adapters import bounded_documents

    with bounded_documents(conn, max_chars=SCAN_PER_RESULT):
        rows = gate_reads.sensitive_candidates(conn, gate, start, end, sensitive_prefilter())
    hits: list[tuple[int, list[str]]] = []
    partly: list[int] = []
    scanned = checked = 0
    for task_id, result in rows:
        if scanned >= SCAN_PER_RUN:
            break
        checked += 1
        # As text (the findings are the tokens the policy adds to the JSON text, as before):
        # a parsed result is at most 64 levels deep here, so json.dumps is safe.
        doc = result if isinstance(result, JsonText) else JsonText(json.dumps(result, ensure_ascii=False), "")
        scanned += min(len(doc.text), SCAN_PER_RESULT)
        if len(doc.text) > SCAN_PER_RESULT:
            partly.append(task_id)
            kinds = value_findings(JsonText(doc.text[:SCAN_PER_RESULT], doc.why), partial=True)
        else:
            kinds = value_findings(doc)
        if kinds:
            hits.append((task_id, kinds))
    details: dict[str, object] = {
        "task_ids": [t for t, _ in hits[:10]],
        "kinds": sorted({k for _, ks in hits for k in ks}),
        "checked": checked,
    }
    if partly:
        details["partly_checked"] = {
            "task_ids": partly[:10],
            "count": len(partly),
            "why": f"larger than {SCAN_PER_RESULT:,} characters: the first {SCAN_PER_RESULT:,} checked",
        }
    if checked < len(rows):
        details["note"] = (
            f"{checked:,} of {len(rows):,} candidates checked ({SCAN_PER_RUN:,} characters per run): at least this many"
        )
    elif len(rows) == gate_reads.SENSITIVE_CANDIDATES:
        details["note"] = (
            f"only the first {gate_reads.SENSITIVE_CANDIDATES} candidates were checked: at least this many"
        )
    return Measurement(len(hits), checked, details)


def _broken_artifacts(conn) -> Measurement:
    broken, checked = {}, 0
    for target in rollouts.list_targets(conn):
        if target.rollback_to is None and target.problem == "no earlier revision":
            continue
        checked += 1
        problem = rollouts.rehearse(conn, target)
        if problem is not None:
            broken[target.target] = problem
    return Measurement(len(broken), checked, {"broken": broken})


def measure(conn: Connection, gate: Gate, start: datetime, end: datetime, now: datetime) -> Measurement:
    metric = gate.metric
    if metric in ("failure_rate", "p90_run_time", "cost_per_success"):
        return _from_profile(metric, _profile(conn, gate, start, end, now))
    if metric == "roi":
        return _roi(conn, gate, start, end)
    if metric == "retry_rate":
        return gate_reads.retry_rate(conn, gate, start, end)
    if metric == "unpriced_attempts":
        return gate_reads.unpriced_attempts(conn, gate, start, end)
    if metric == "succeeded_without_result_rate":
        return gate_reads.trust_inflation(conn, gate, start, end)
    if metric == "anomaly_count":
        return gate_reads.anomalies(conn, gate, start, end)
    if metric == "sensitive_results":
        return _sensitive(conn, gate, start, end)
    if metric == "open_blocking_proposals":
        return gate_reads.open_blocking(conn, gate)
    if metric == "broken_rollback_artifacts":
        return _broken_artifacts(conn)
    raise UsageError(f"gate {gate.name}: unknown metric {metric!r}")


def evaluate(conn: Connection, gate: Gate, now: datetime, archived: dict[str, datetime] | None = None) -> Verdict:
    """Measure the window (and the baseline window just before it) and judge. A gate that
    reads raw rows whose window reaches into what retention archived is not measured over
    the rows left: UsageError (recorded as 'error', "history archived: …")."""
    reach = GateReach(gate.name, gate.metric, gate.window_s, gate.baseline_window_s)
    problem = archived_problem(reach, archived if archived is not None else {}, now)
    if problem:
        raise UsageError(problem)
    window = timedelta(seconds=gate.window_s)
    current = measure(conn, gate, now - window, now, now)
    baseline = None
    if gate.baseline_window_s:
        start = now - window - timedelta(seconds=gate.baseline_window_s)
        baseline = measure(conn, gate, start, now - window, now)
    return judge(gate, current, baseline)


def refuse_if_archived(conn: Connection, gate: Gate, now: datetime | None = None) -> None:
    """UsageError when `gate`, enabled now, would read raw rows retention archived: `audit
    gate add` and `set --enable` refuse it rather than record 'error' at every pass."""
    reach = GateReach(gate.name, gate.metric, gate.window_s, gate.baseline_window_s)
    problem = archived_problem(reach, retention_reads.archived_reach(conn), now or clock.now())
    if problem:
        raise UsageError(f"gate {gate.name} not enabled: {problem}")


def run_gates(conn: Connection, name: str | None = None, now: datetime | None = None) -> list[tuple[Gate, Verdict]]:
    """Evaluate the enabled gates (or the one named) and record a verdict for each.
    `conn` must be in autocommit: each gate is its own transaction."""
    now = now or clock.now()
    out = []
    archived = retention_reads.archived_reach(conn)
    for gate in gate_reads.load_gates(conn, name, enabled_only=name is None):
        try:
            with conn.transaction():
                verdict = evaluate(conn, gate, now, archived)
        except psycopg.Error as exc:
            verdict = Verdict("error", None, None, None, 0, {"why": first_line(exc)})
        except gate_reads.NoCanary as exc:
            verdict = Verdict("inconclusive", None, None, None, 0, {"why": exc.message})
        except UsageError as exc:
            verdict = Verdict("error", None, None, None, 0, {"why": exc.message})
        with conn.transaction():
            gate_reads.record(conn, gate, verdict)
        out.append((gate, verdict))
    return out
