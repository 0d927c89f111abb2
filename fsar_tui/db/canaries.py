"""Canaries SQL (issue 19): deploy, read a canary's state, promote or abort it, record the
judge's analyses, and aggregate a step's window of each revision's tasks for the judge.

Every change goes through the SECURITY DEFINER functions of revision 0035
(db/canary_functions.py): they lock the target's row, check that what the caller saw is
still so, and write the operator log in the same transaction. A caller that lost a race
gets Conflict naming who moved the target first (operator_actions).

The judge's evidence (`arm_sample`): the tasks of one revision that finished since the
step started — failed attempts (attempt − 1 for a success, attempt for a failure), the
successful attempts' run times and the tasks' tokens as log-bucket histograms
(fsar_duration_bucket, domain/histogram.py), and cost sums in the currency most of both
arms' tasks are priced in. The database aggregates; a few hundred rows come back however
many tasks the window holds (the index of revision 0035 on (revision, finished_at)).
A task's attempts, tokens and run time are counted against the revision of its last
attempt: the split keeps a task's attempts on one revision, unless the canary's share was
sent to stable meanwhile (a canary gate failing, a blocked pinned model) — then its
earlier canary attempts count as stable's. The schema keeps no per-attempt revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from fsar_tui.db import operator_log
from fsar_tui.db.rollouts import Conflict
from fsar_tui.db.rows import one
from fsar_tui.domain.canary import Canary
from fsar_tui.domain.canary_judge import ArmSample
from fsar_tui.errors import CheckFailed, UsageError

JUDGE_ACTOR = "fsar-tui (canary judge)"


class Refused(CheckFailed):
    """The deploy or decision is not allowed as asked (nothing was written)."""


CANARY_SQL = """
    SELECT c.id, r.target, r.task_type, c.state, c.canary_revision, c.stable_revision, cr.id, sr.id,
           c.steps, c.step, c.weight, c.interval_s, c.manual, c.started_at, c.started_by, c.start_reason,
           c.step_started_at, c.ended_at, c.ended_by, c.end_reason, c.judgement, c.judged_at, c.hold_reason,
           c.judged_by,
           (SELECT max(r.at) FROM audit_gates g CROSS JOIN LATERAL
                (SELECT at FROM audit_runs WHERE gate_id = g.id ORDER BY at DESC LIMIT 1) r),
           now()
    FROM rollout_canaries c
    JOIN rollouts r ON r.id = c.rollout_id
    JOIN rollout_revisions cr ON cr.rollout_id = c.rollout_id AND cr.revision = c.canary_revision
    JOIN rollout_revisions sr ON sr.rollout_id = c.rollout_id AND sr.revision = c.stable_revision
"""


def _canary(row: tuple[Any, ...]) -> Canary:
    return Canary(*row)  # CANARY_SQL's columns are Canary's fields, in order, `now` last


def latest(conn: Connection, target: str | None = None, *, running_only: bool = False) -> list[Canary]:
    """Per target, its running canary or else its most recent one (all targets, or one)."""
    rows = conn.execute(
        f"""SELECT DISTINCT ON (r.target) q.* FROM ({CANARY_SQL}) q(id, target, task_type, state, cr, sr, cri, sri,
                  steps, step, weight, interval_s, manual, started_at, started_by, start_reason, step_started_at,
                  ended_at, ended_by, end_reason, judgement, judged_at, hold_reason, judged_by, pass_at, now)
            JOIN rollouts r ON r.target = q.target
            WHERE (%(target)s::text IS NULL OR q.target = %(target)s) AND (q.state = 'running' OR NOT %(running)s)
            ORDER BY r.target, (q.state = 'running') DESC, q.id DESC""",
        {"target": target, "running": running_only},
    ).fetchall()
    out = [_canary(row) for row in rows]
    return [_with_claimed(conn, c) for c in out]


def _with_claimed(conn: Connection, c: Canary) -> Canary:
    if c.state != "running":
        return c
    rows = conn.execute(
        # Claimed since the step began: finished since, or not finished — both conditions on
        # the (revision, finished_at) index, not a scan of the stable revision's whole history.
        """SELECT rollout_revision_id, count(*) FROM execution_tasks
           WHERE rollout_revision_id = ANY(%(ids)s) AND (finished_at >= %(since)s OR finished_at IS NULL)
             AND started_at >= %(since)s
           GROUP BY 1""",
        {"ids": [c.canary_revision_id, c.stable_revision_id], "since": c.step_started_at},
    ).fetchall()
    by_id: dict[int, int] = dict(rows)
    claimed = {"canary": by_id.get(c.canary_revision_id, 0), "stable": by_id.get(c.stable_revision_id, 0)}
    return Canary(**{**c.__dict__, "claimed": claimed})


def running(conn: Connection, target: str) -> Canary:
    found = latest(conn, target, running_only=True)
    if not found:
        _require_target(conn, target)
        raise Refused(f"{target}: no canary is running (see `fsar-tui rollouts canary status`)")
    return found[0]


def _require_target(conn: Connection, target: str) -> None:
    if conn.execute("SELECT 1 FROM rollouts WHERE target = %s", (target,)).fetchone() is None:
        raise UsageError(f"no rollout target {target!r} (see `fsar-tui rollouts list`)")


# -- deploy -----------------------------------------------------------------------------------

DEPLOY_SQL = "SELECT outcome, new_revision, canary_id FROM fsar_rollout_deploy(%s, %s, %s, %s, %s, %s, %s, %s, %s)"


@dataclass(frozen=True)
class Deployed:
    revision: int
    canary_id: int | None


def active_revision(conn: Connection, target: str) -> tuple[int | None, Any]:
    """(active revision number, its artifact) of a target; UsageError if there is no target."""
    row = conn.execute(
        """SELECT r.active_revision, a.artifact FROM rollouts r
           LEFT JOIN rollout_revisions a ON a.rollout_id = r.id AND a.revision = r.active_revision
           WHERE r.target = %s""",
        (target,),
    ).fetchone()
    if row is None:
        raise UsageError(f"no rollout target {target!r} (see `fsar-tui rollouts list`)")
    return row[0], row[1]


def deploy(
    conn: Connection,
    target: str,
    artifact: Any,
    sha256: str,
    *,
    expected_active: int | None,
    steps: list[int] | None,
    interval_s: int,
    manual: bool,
    reason: str,
    claimed: str,
) -> Deployed:
    """One transaction: fsar_rollout_deploy. Refused (nothing written) when the target
    changed since `expected_active`, a canary runs on it, or the artifact is the active one."""
    with conn.transaction():
        outcome, revision, canary_id = one(
            conn.execute(
                DEPLOY_SQL,
                (target, Jsonb(artifact), sha256, expected_active, steps, interval_s, manual, reason, claimed),
            ).fetchone()
        )
        if outcome == "done":
            return Deployed(revision, canary_id)
        if outcome == "conflict":
            raise _conflict(conn, target, f"revision {revision} is active now")
        if outcome == "canary-running":
            raise Refused(
                f"{target}: canary {canary_id} is running; promote or abort it first "
                f"(`fsar-tui rollouts canary status {target}`); nothing was written"
            )
        if outcome == "same-as-active":
            raise Refused(f"{target}: the artifact equals the active revision {revision}; nothing was written")
        if outcome == "no-way-back":
            raise Refused(
                f"{target}: the rollback rehearsal is failing (gate builtin:rollback-artifacts); "
                "no canary without a way back; nothing was written"
            )
        if outcome == "no-stable":
            raise Refused(f"{target}: no active revision to run beside a canary; deploy without --canary")
        raise UsageError(f"{target}: {outcome}")


def moved_since(conn: Connection, canary: Canary, seen: str) -> Conflict:
    """The canary is not where the caller saw it (`seen`): who moved it last."""
    now = f"it is at {canary.weight} % (step {canary.step + 1}), not {seen}"
    return _conflict(conn, canary.target, now)


def _conflict(conn: Connection, target: str, state: str) -> Conflict:
    who = operator_log.last_change(conn, f"rollout:{target}")
    by = f" by {who[0]} ({who[1]} at {who[2]:%Y-%m-%d %H:%M:%S %Z})" if who else ""
    return Conflict(f"{target} changed while you decided: {state}{by}; nothing was done")


ROUTING_SQL = """
    SELECT r.task_type,
           (SELECT r2.target FROM rollouts r2 JOIN rollout_revisions a ON a.rollout_id = r2.id
                                                                  AND a.revision = r2.active_revision
            WHERE r2.task_type = r.task_type OR r2.task_type IS NULL
            ORDER BY (r2.task_type IS NULL), r2.id LIMIT 1),
           (SELECT count(DISTINCT k.task_type) FROM task_counts k
            WHERE NOT EXISTS (SELECT 1 FROM rollouts r3 WHERE r3.task_type = k.task_type))
    FROM rollouts r WHERE r.target = %s
"""


def routing_problem(conn: Connection, target: str) -> str | None:
    """Why a canary on `target` would get no traffic, or None. The claim stamps a task with
    the first target of its type (then a global one, task_type NULL) by id: a second
    target of a type, or a global target every known type has a target of its own beside,
    routes nothing."""
    row = conn.execute(ROUTING_SQL, (target,)).fetchone()
    if row is None:
        return None
    task_type, router, uncovered = row
    if task_type is not None and router is not None and router != target:
        return f"{target} routes no task: {router} is the first target of type {task_type} (the claim stamps that one)"
    if task_type is None and not uncovered:
        return f"{target} covers every type with no target of its own, and every known type has one: it routes no task"
    return None


# -- promote / abort --------------------------------------------------------------------------

DECIDE_SQL = "SELECT outcome, state, weight, step FROM fsar_canary_decide(%s, %s, %s, %s, %s, %s, %s)"


@dataclass(frozen=True)
class Decided:
    state: str
    weight: int
    step: int


def decide(
    conn: Connection,
    canary: Canary,
    action: str,
    *,
    reason: str,
    claimed: str,
    evidence: dict[str, Any] | None = None,
) -> Decided:
    """Promote or abort `canary` as the caller saw it (its id and step); Conflict when
    someone moved it first, naming who."""
    with conn.transaction():
        outcome, state, weight, step = one(
            conn.execute(
                DECIDE_SQL,
                (canary.target, canary.id, canary.step, action, reason, claimed, Jsonb(evidence or {})),
            ).fetchone()
        )
        if outcome == "done":
            return Decided(state, weight, step)
        if outcome == "conflict":
            now = f"it is {state} now" + (f" at {weight} % (step {step + 1})" if state == "running" else "")
            raise _conflict(conn, canary.target, now)
        raise UsageError(f"{canary.target}: {outcome}")


RECORD_SQL = "SELECT fsar_canary_record(%s, %s, %s, %s, %s, %s)"


def record(
    conn: Connection,
    canary: Canary,
    verdict: str,
    score: float | None,
    judgement: dict[str, Any],
    hold: str | None,
) -> int | None:
    """The judge's analysis; None when the canary moved on meanwhile (nothing recorded)."""
    with conn.transaction():
        row = conn.execute(
            RECORD_SQL,
            (
                canary.id,
                canary.step,
                verdict,
                None if score is None else Decimal(str(round(score, 3))),
                Jsonb(judgement),
                hold,
            ),
        ).fetchone()
    return None if row is None else row[0]


def last_look(conn: Connection, canary: Canary) -> int | None:
    """The canary attempts the step's newest analysis counted (the database counts them:
    fsar_canary_record, revision 0036); None before the step's first analysis."""
    row = conn.execute(
        """SELECT canary_attempts FROM canary_analyses WHERE canary_id = %s AND step = %s
           ORDER BY id DESC LIMIT 1""",
        (canary.id, canary.step),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def analyses(conn: Connection, canary_id: int, limit: int = 20) -> list[tuple[datetime, int, str, Any, str | None]]:
    """The newest analyses of a canary: (at, step, verdict, score, hold reason)."""
    return conn.execute(
        """SELECT at, step, verdict, score, hold_reason FROM canary_analyses WHERE canary_id = %s
           ORDER BY at DESC, id DESC LIMIT %s""",
        (canary_id, limit),
    ).fetchall()


# -- the judge's evidence ---------------------------------------------------------------------

ARM_SQL = """
    WITH w AS (
        SELECT t.status, t.attempt, t.started_at, t.finished_at, t.cost_minor, t.currency,
               coalesce(t.input_tokens, 0) + coalesce(t.output_tokens, 0) AS tokens
        FROM execution_tasks t
        WHERE t.rollout_revision_id = %(revision)s AND t.finished_at >= %(start)s AND t.finished_at < %(end)s
          AND t.status IN ('succeeded', 'failed')
    )
    SELECT 'totals', NULL::integer, count(*), sum(attempt), sum(attempt - (status = 'succeeded')::int),
           count(*) FILTER (WHERE status = 'succeeded'), NULL::text, NULL::numeric, NULL::numeric, NULL::numeric
    FROM w
    UNION ALL
    SELECT 'run_ms', fsar_duration_bucket(extract(epoch FROM finished_at - started_at) * 1000), count(*),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM w WHERE status = 'succeeded' AND finished_at >= started_at GROUP BY 2
    UNION ALL
    SELECT 'tokens', fsar_duration_bucket(tokens), count(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM w GROUP BY 2
    UNION ALL
    SELECT 'cost', NULL, count(*), NULL, NULL, count(*) FILTER (WHERE status = 'succeeded'), currency,
           sum(cost_minor), sum(cost_minor * cost_minor), coalesce(sum(cost_minor) FILTER (WHERE status = 'succeeded'), 0)
    FROM w WHERE currency IS NOT NULL AND cost_minor IS NOT NULL GROUP BY currency
"""  # noqa: E501 - one statement, read as one


def arm_sample(conn: Connection, revision_id: int, revision: int, start: datetime, end: datetime) -> _ArmRows:
    rows = conn.execute(ARM_SQL, {"revision": revision_id, "start": start, "end": end}).fetchall()
    return _ArmRows(revision, rows)


@dataclass(frozen=True)
class _ArmRows:
    revision: int
    rows: list[tuple[Any, ...]]

    def currencies(self) -> dict[str, int]:
        return {r[6]: r[2] for r in self.rows if r[0] == "cost"}

    def sample(self, currency: str | None) -> ArmSample:
        totals = next(r for r in self.rows if r[0] == "totals")
        cost = next((r for r in self.rows if r[0] == "cost" and r[6] == currency), None)
        return ArmSample(
            revision=self.revision,
            attempts=int(totals[3] or 0),
            failed_attempts=int(totals[4] or 0),
            run_ms={int(r[1]): int(r[2]) for r in self.rows if r[0] == "run_ms"},
            tokens={int(r[1]): int(r[2]) for r in self.rows if r[0] == "tokens"},
            tasks=int(cost[2]) if cost else int(totals[2] or 0),
            successes=int(cost[5]) if cost else int(totals[5] or 0),
            cost_sum=Decimal(cost[7]) if cost else Decimal(0),
            cost_sq_sum=Decimal(cost[8]) if cost else Decimal(0),
            success_cost_sum=Decimal(cost[9]) if cost else Decimal(0),
            currency=currency if cost else None,
        )


def arm_samples(conn: Connection, canary: Canary, end: datetime) -> tuple[ArmSample, ArmSample]:
    """(canary, stable) over [step start, end), in the currency most of their tasks use."""
    c = arm_sample(conn, canary.canary_revision_id, canary.canary_revision, canary.step_started_at, end)
    s = arm_sample(conn, canary.stable_revision_id, canary.stable_revision, canary.step_started_at, end)
    counts: dict[str, int] = {}
    for arm in (c, s):
        for cur, n in arm.currencies().items():
            counts[cur] = counts.get(cur, 0) + n
    currency = max(sorted(counts), key=lambda k: counts[k]) if counts else None
    return c.sample(currency), s.sample(currency)
