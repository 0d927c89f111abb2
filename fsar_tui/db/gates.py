"""Audit gates in SQL: definitions, the reads behind each metric, verdicts, overrides.
services/gates.py evaluates (measure, judge with domain/gates.py, record); `fsar-tui
audit run` and the app's scheduled pass call it.

Where each metric comes from — chosen so that a run over 10 M tasks stays cheap:
- failure_rate, p90_run_time, cost_per_success: the duration rollups (db/profiles, the
  same reads as the Profiles screen), merged over the groups in scope;
- roi: the ROI rollups (db/roi), over the whole UTC days that cover the window;
- retry_rate (finished tasks that needed more than one attempt),
  succeeded_without_result_rate (trust inflation: succeeded with an empty result, no
  run time, no tokens, or no task_events trail to 'succeeded'), anomaly_count and
  sensitive_results: the tasks finished in the window, read per (type, model) through
  the analytic index (task_type, ai_model, finished_at) — windows are hours, so these
  are thousands of rows, not millions. Tasks without a model (legacy rows) are not seen
  by them;
- anomaly_count: per type × model in the window, tasks whose log run time, log cost or
  log tokens lie more than ANOMALY_Z robust z-scores (median / 1.4826·MAD) from the
  group's median, for groups of at least ANOMALY_MIN_GROUP tasks. Logs because these
  quantities are roughly log-normal: a plain z would flag the normal long tail;
- sensitive_results: a cheap SQL prefilter, then the redaction policy's own detectors and
  fields (domain/redact.value_findings) on each candidate's result;
- unpriced_attempts: attempts without a price or compute rate (revision 0028) (tokens of a model with no price in force
  at their start: cost unknown, revision 0024) summed over the window's finished tasks,
  read as retry_rate is; the models and how many each travel in details;
- open_blocking_proposals: fsar_proposals;
- broken_rollback_artifacts: every rollout target's rollback rehearsed
  (db/rollouts.rehearse) — the warm-artifact check; the target names travel in details.
A gate scoped to a rollout target measures the tasks stamped with its active revision.
Each gate is measured in its own transaction: one that errors (a statement timeout)
records 'error' and the others still run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from fsar_tui.db.rows import one
from fsar_tui.domain.gates import Gate, Measurement, Verdict
from fsar_tui.errors import UsageError

ANOMALY_Z = 6.0
ANOMALY_MIN_GROUP = 30
SENSITIVE_CANDIDATES = 5000  # results checked per run; more are reported as "at least"

GATE_COLUMNS = """id, name, metric, scope, extract(epoch FROM time_window)::bigint, comparator, threshold::float8,
                  hard, extract(epoch FROM baseline_window)::bigint, enabled, builtin, description"""


def load_gates(conn: Connection, name: str | None = None, *, enabled_only: bool = True) -> list[Gate]:
    rows = conn.execute(
        f"""SELECT {GATE_COLUMNS} FROM audit_gates
            WHERE (%(name)s::text IS NULL OR name = %(name)s) AND (enabled OR NOT %(enabled_only)s)
            ORDER BY hard DESC, name""",
        {"name": name, "enabled_only": enabled_only},
    ).fetchall()
    if name is not None and not rows:
        raise UsageError(f"no audit gate {name!r} (see `fsar-tui audit gates`)")
    return [Gate(*row) for row in rows]


# -- measuring ----------------------------------------------------------------------------


def _active_revision(conn: Connection, target: str) -> int | None:
    row = conn.execute("SELECT revision_id FROM active_rollout_revisions WHERE target = %s", (target,)).fetchone()
    return row[0] if row else None


class NoCanary(UsageError):
    """A gate scoped to a target's canary while none runs: nothing to measure (the pass
    records 'inconclusive', which never blocks — not 'error' at every pass)."""


def _canary_revision(conn: Connection, target: str) -> int | None:
    row = conn.execute(
        "SELECT canary_revision_id FROM rollout_routes WHERE target = %s AND canary_id IS NOT NULL", (target,)
    ).fetchone()
    return row[0] if row else None


def scope_params(conn: Connection, gate: Gate) -> dict[str, Any]:
    """The scope as query parameters. A gate scoped to a target measures the tasks of its
    active revision — or, with `canary` in the scope (revision 0035), of its running
    canary's revision (none running: UsageError, recorded as 'error' by the pass)."""
    rollout = gate.scope.get("rollout")
    if rollout and gate.scope.get("canary"):
        revision = _canary_revision(conn, rollout)
        if revision is None:
            raise NoCanary(f"gate {gate.name}: no canary is running on {rollout!r}")
        return {"type": gate.scope.get("task_type"), "model": gate.scope.get("ai_model"), "revision": revision}
    revision = _active_revision(conn, rollout) if rollout else None
    if rollout and revision is None:
        raise UsageError(f"gate {gate.name}: no rollout target {rollout!r}")
    return {"type": gate.scope.get("task_type"), "model": gate.scope.get("ai_model"), "revision": revision}


# The tasks finished in [start, end) of the groups in scope, through the analytic index;
# the groups are the (type, model) pairs of the task counters (revision 0012) and their
# deltas not folded yet.
WINDOW_TASKS = """
    groups AS (SELECT task_type, ai_model FROM (SELECT task_type, ai_model FROM task_counts
                                                UNION SELECT task_type, ai_model FROM task_count_deltas) k
               WHERE (%(type)s::text IS NULL OR task_type = %(type)s)
                 AND (%(model)s::text IS NULL OR ai_model = %(model)s)),
    w AS (SELECT t.* FROM groups g CROSS JOIN LATERAL (
              SELECT * FROM execution_tasks t
              WHERE t.task_type = g.task_type AND t.ai_model = g.ai_model
                AND t.finished_at >= %(start)s AND t.finished_at < %(end)s) t
          WHERE %(revision)s::bigint IS NULL OR t.rollout_revision_id = %(revision)s)"""

RETRY_SQL = f"""
    WITH {WINDOW_TASKS}
    SELECT count(*) FILTER (WHERE attempt > 1), count(*) FROM w WHERE status IN ('succeeded', 'failed')"""

UNPRICED_SQL = f"""
    WITH {WINDOW_TASKS},
    g AS (SELECT ai_model, sum(unpriced_attempts)::bigint AS n, count(*) AS tasks FROM w
          WHERE status IN ('succeeded', 'failed', 'cancelled') GROUP BY ai_model)
    SELECT coalesce(sum(n), 0)::bigint, coalesce(sum(tasks), 0)::bigint,
           coalesce(jsonb_object_agg(ai_model, n) FILTER (WHERE n > 0), '{{}}')
    FROM g"""

EMPTY_RESULTS = "('null', '{}', '[]', '\"\"')"
TRUST_SQL = f"""
    WITH {WINDOW_TASKS},
    s AS (SELECT w.id,
                 w.result IS NULL OR w.result IN {EMPTY_RESULTS} AS empty_result,
                 w.started_at IS NULL OR w.finished_at <= w.started_at AS zero_run_time,
                 coalesce(w.input_tokens, 0) + coalesce(w.output_tokens, 0) = 0 AS zero_tokens,
                 NOT EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = w.id AND e.to_status = 'succeeded')
                     AS no_event_trail
          FROM w WHERE w.status = 'succeeded')
    SELECT count(*) FILTER (WHERE empty_result OR zero_run_time OR zero_tokens OR no_event_trail),
           count(*), count(*) FILTER (WHERE empty_result), count(*) FILTER (WHERE zero_run_time),
           count(*) FILTER (WHERE zero_tokens), count(*) FILTER (WHERE no_event_trail),
           (array_agg(id ORDER BY id)
                FILTER (WHERE empty_result OR zero_run_time OR zero_tokens OR no_event_trail))[1:10]
    FROM s"""

ANOMALY_SQL = f"""
    WITH {WINDOW_TASKS},
    x AS (SELECT w.id, w.task_type, w.ai_model, v.what, v.val
          FROM w CROSS JOIN LATERAL (VALUES
              -- a start or finish at ±infinity has no run time (the subtraction would fail
              -- the whole gate): NULL, which the medians and the flags pass over
              ('run time', CASE WHEN isfinite(w.started_at) AND isfinite(w.finished_at)
                                THEN ln(greatest(extract(epoch FROM w.finished_at - w.started_at) * 1000, 1)) END),
              ('cost', ln(coalesce(w.cost_minor, 0) + coalesce(w.compute_cost_minor, 0) + 1)),
              ('tokens', ln(coalesce(w.input_tokens, 0) + coalesce(w.output_tokens, 0) + 1))) v(what, val)
          WHERE w.status IN ('succeeded', 'failed') AND w.started_at IS NOT NULL),
    med AS (SELECT task_type, ai_model, what, count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY val) AS m
            FROM x GROUP BY 1, 2, 3),
    mad AS (SELECT x.task_type, x.ai_model, x.what, med.m, med.n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(x.val - med.m)) * 1.4826 AS s
            FROM x JOIN med USING (task_type, ai_model, what) GROUP BY 1, 2, 3, 4, 5),
    outliers AS (SELECT x.id, x.task_type, x.ai_model, x.what, (x.val - mad.m) / mad.s AS z
                 FROM x JOIN mad USING (task_type, ai_model, what)
                 WHERE mad.n >= {ANOMALY_MIN_GROUP} AND mad.s > 0 AND abs(x.val - mad.m) / mad.s > {ANOMALY_Z})
    SELECT (SELECT count(DISTINCT id) FROM outliers), (SELECT count(*) FROM w),
           (SELECT coalesce(json_agg(o ORDER BY abs(o.z) DESC), '[]') FROM (SELECT * FROM outliers
                                                                            ORDER BY abs(z) DESC LIMIT 10) o)"""

# Cheap, deliberately loose: anything a detector could match has one of these.
SENSITIVE_PREFILTER = r"@|[0-9][0-9 .()+-]{6,}[0-9]|sk[-_]|pk_|ghp_|xox|AKIA|[Bb]earer|[Tt]oken|[Kk]ey|[Ss]ecret"
SENSITIVE_SQL = f"""
    WITH {WINDOW_TASKS}
    SELECT w.id, w.result FROM w
    WHERE w.status = 'succeeded' AND w.result::text ~* %(prefilter)s
    ORDER BY w.id LIMIT {SENSITIVE_CANDIDATES}"""


def sensitive_candidates(
    conn: Connection, gate: Gate, start: datetime, end: datetime, prefilter: str
) -> list[tuple[int, object]]:
    """(task id, result) of the window's results that match `prefilter` (at most SENSITIVE_CANDIDATES)."""
    return conn.execute(SENSITIVE_SQL, {**_window_params(conn, gate, start, end), "prefilter": prefilter}).fetchall()


def _window_params(conn: Connection, gate: Gate, start: datetime, end: datetime) -> dict[str, Any]:
    return {**scope_params(conn, gate), "start": start, "end": end}


def retry_rate(conn: Connection, gate: Gate, start: datetime, end: datetime) -> Measurement:
    retried, finished = one(conn.execute(RETRY_SQL, _window_params(conn, gate, start, end)).fetchone())
    return Measurement(retried / finished if finished else None, finished, {"retried": retried})


def unpriced_attempts(conn: Connection, gate: Gate, start: datetime, end: datetime) -> Measurement:
    """Attempts without a price of the tasks in scope that finished in the window."""
    count, tasks, by_model = one(conn.execute(UNPRICED_SQL, _window_params(conn, gate, start, end)).fetchone())
    return Measurement(count, tasks, {"by_model": by_model})


def trust_inflation(conn: Connection, gate: Gate, start: datetime, end: datetime) -> Measurement:
    bad, total, empty, zero_run, zero_tokens, no_trail, ids = one(
        conn.execute(TRUST_SQL, _window_params(conn, gate, start, end)).fetchone()
    )
    return Measurement(
        bad / total if total else None,
        total,
        {
            "suspect": bad,
            "empty_result": empty,
            "zero_run_time": zero_run,
            "zero_tokens": zero_tokens,
            "no_event_trail": no_trail,
            "task_ids": ids or [],
        },
    )


def anomalies(conn: Connection, gate: Gate, start: datetime, end: datetime) -> Measurement:
    count, total, top = one(conn.execute(ANOMALY_SQL, _window_params(conn, gate, start, end)).fetchone())
    return Measurement(count, total, {"z_threshold": ANOMALY_Z, "top": top})


def open_blocking(conn: Connection, gate: Gate) -> Measurement:
    ids = [
        r[0]
        for r in conn.execute(
            """SELECT id FROM fsar_proposals
           WHERE block_execution AND block_lifted_at IS NULL AND status IN ('new', 'accepted')
             AND (%(type)s::text IS NULL OR task_type IS NULL OR task_type = %(type)s) ORDER BY id""",
            {"type": gate.scope.get("task_type")},
        ).fetchall()
    ]
    return Measurement(len(ids), len(ids), {"proposals": ids[:10]})


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in details.items()}


def last_pass_age_s(conn: Connection) -> float | None:
    """Seconds since the newest verdict any pass recorded (None: none yet) — each gate's
    newest by its (gate_id, at) index, so the cost does not grow with the history."""
    row = conn.execute(
        "SELECT extract(epoch FROM now() - max(r.at))::float8 FROM audit_gates g CROSS JOIN LATERAL "
        "(SELECT at FROM audit_runs WHERE gate_id = g.id ORDER BY at DESC LIMIT 1) r"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def record(conn: Connection, gate: Gate, verdict: Verdict, *, claimed: str | None = None) -> None:
    """The verdict, through fsar_record_verdict (revision 0020): no fsar role may INSERT
    into audit_runs, and a verdict that starts or ends a hard gate's block is logged there
    (`gate_blocked` / `gate_unblocked`, revision 0021)."""
    conn.execute(
        "SELECT fsar_record_verdict(%s::bigint, %s::numeric, %s::numeric, %s, %s::bigint, %s, %s)",
        (
            gate.id,
            verdict.value,
            verdict.baseline,
            verdict.verdict,
            verdict.sample_size,
            Jsonb(_jsonable({**verdict.details, "measured": verdict.measured, "condition": gate.condition})),
            claimed,
        ),
    )


# -- operator changes: the SECURITY DEFINER functions of revision 0020 (fsar_admin) ---------


def override(conn: Connection, name: str, *, actor: str, reason: str, expires_at: datetime | None = None) -> None:
    """Let a failing hard gate's scope run anyway until the gate next passes (or expires_at).
    `actor`: the OS user, as claimed (the database records the role)."""
    if not reason.strip():
        raise UsageError("a reason is required to override a gate")
    with conn.transaction():
        outcome = one(
            conn.execute(
                "SELECT fsar_gate_override(%s, %s, %s::timestamptz, %s)", (name, reason, expires_at, actor)
            ).fetchone()
        )[0]
    if outcome == "missing":
        raise UsageError(f"no audit gate {name!r}")
    if outcome == "not-blocking":
        raise UsageError(f"gate {name} is not blocking anything (not hard, not failing, or already overridden)")


def add_gate(conn: Connection, gate: Gate, *, actor: str, reason: str) -> None:
    with conn.transaction():
        outcome = one(
            conn.execute(
                "SELECT fsar_gate_add(%s, %s, %s, %s::bigint, %s, %s::numeric, %s, %s::bigint, %s, %s, %s)",
                (
                    gate.name,
                    gate.metric,
                    Jsonb(gate.scope),
                    gate.window_s,
                    gate.comparator,
                    gate.threshold,
                    gate.hard,
                    gate.baseline_window_s,
                    gate.description,
                    reason,
                    actor,
                ),
            ).fetchone()
        )[0]
    if outcome == "exists":
        raise UsageError(f"gate {gate.name!r} exists: change it with `fsar-tui audit gate set`")


def set_gate(conn: Connection, name: str, changes: dict[str, Any], *, actor: str, reason: str) -> Gate:
    """Change a gate's hard/enabled/comparator/threshold; returns it as it is now."""
    allowed = {"hard", "enabled", "comparator", "threshold"}
    if not changes or set(changes) - allowed:
        raise UsageError("nothing to change: give --hard/--soft, --enable/--disable or --pass-if")
    with conn.transaction():
        outcome = one(
            conn.execute(
                "SELECT fsar_gate_set(%s, %s::boolean, %s::boolean, %s, %s::numeric, %s, %s)",
                (
                    name,
                    changes.get("hard"),
                    changes.get("enabled"),
                    changes.get("comparator"),
                    changes.get("threshold"),
                    reason,
                    actor,
                ),
            ).fetchone()
        )[0]
        if outcome == "missing":
            raise UsageError(f"no audit gate {name!r} (see `fsar-tui audit gates`)")
        return load_gates(conn, name, enabled_only=False)[0]


@dataclass(frozen=True)
class GateStatus:
    """A gate as the screen and `audit gates` show it: its definition, its latest run,
    whether it blocks execution now, and the live override (actor: reason), if any."""

    name: str
    metric: str
    scope: dict[str, Any]
    comparator: str
    threshold: float
    hard: bool
    enabled: bool
    builtin: bool
    window_s: int
    baseline_window_s: int | None
    verdict: str | None
    value: float | None
    sample_size: int | None
    at: datetime | None
    details: dict[str, Any] | None
    blocking: bool
    override: str | None


LATEST_SQL = """
    SELECT g.name, g.metric, g.scope, g.comparator, g.threshold::float8 AS threshold, g.hard, g.enabled, g.builtin,
           extract(epoch FROM g.time_window)::bigint AS window_s,
           extract(epoch FROM g.baseline_window)::bigint AS baseline_window_s,
           r.verdict, r.value::float8 AS value, r.sample_size, r.at, r.details,
           EXISTS (SELECT 1 FROM execution_blocks b WHERE b.source = 'gate' AND b.ref = g.name) AS blocking,
           (SELECT o.actor || ': ' || o.reason FROM live_gate_overrides o WHERE o.gate_id = g.id
            ORDER BY o.at DESC LIMIT 1) AS override
    FROM audit_gates g
    LEFT JOIN LATERAL (SELECT * FROM audit_runs r WHERE r.gate_id = g.id
                       ORDER BY r.at DESC, r.id DESC LIMIT 1) r ON true
    ORDER BY g.hard DESC, (r.verdict = 'fail') DESC NULLS LAST, g.name"""


def latest_sync(conn: Connection) -> list[GateStatus]:
    """Every gate with its latest verdict, whether it blocks now and any live override."""
    return conn.cursor(row_factory=class_row(GateStatus)).execute(LATEST_SQL).fetchall()


async def latest(conn: AsyncConnection) -> list[GateStatus]:
    cur = conn.cursor(row_factory=class_row(GateStatus))
    return await (await cur.execute(LATEST_SQL)).fetchall()


# Verdicts are history, not state: keep 90 days, and always each gate's latest verdict and
# latest pass (the rule is in fsar_prune_audit_runs, revision 0018), at most PRUNE_MAX_ROWS
# a call. The function refuses a younger `kept` or a larger batch (revision 0021,
# db/action_functions.PRUNE_AUDIT_RUNS): these are the policy, not defaults.
RUNS_KEPT = "90 days"
PRUNE_MAX_ROWS = 5000


def prune_runs(conn: Connection, *, kept: str = RUNS_KEPT, limit: int = PRUNE_MAX_ROWS) -> int:
    """Delete up to `limit` verdicts past retention; returns how many (the scheduled pass
    calls it every minute, so a backlog drains in bounded steps)."""
    pruned: int = one(conn.execute("SELECT fsar_prune_audit_runs(%s, %s::interval)", (limit, kept)).fetchone())[0]
    return pruned
