"""Before/after evidence reads (issue 19, "did the self-improvement pay?"): when a change
happened, and the two windows around it for its task type; domain/before_after.py
compares them.

When: an FSAR proposal's `proposal.implemented` row in the operator log (fsar_proposals
keeps no decision time: the log is the only record; an implemented proposal without one
— set around the decision functions — has no evidence, and says so). A rollout
revision: its creation, or for a revision deployed as a canary, from the canary's start
to its promotion (an aborted or running canary's revision never ran all the traffic:
no evidence). Both come down to `evidence(task_type, at)`.

What, per window (whole UTC days, domain.before_after.windows):
- finished and failed tasks per day and model, the type's AI cost per day and currency:
  cost_rollups (revision 0014) plus the samples not folded yet, as db/roi.py reads them;
- successful tasks' run-time histogram: the duration rollups' detailed rows (those keep
  the outcome; revision 0013) over the pieces that tile the window (rollup_windows,
  as db/profiles.py), plus unfolded samples;
- ROI: the ROI screen's own cost query (db/roi.COSTS_SQL) per window for the attribution
  weights, and ledger_daily per day for the ideas the type's tasks worked on;
- Σcost, Σcost² per priced task: the raw tasks (no rollup has squares), by the analytic
  index (task_type, ai_model = ANY(models the rollups saw), finished_at). Skipped when
  retention archived tasks that reach into the windows (db/retention.ARCHIVED_REACH_SQL):
  the metric then says "history archived". Rollups are never archived.
- other changes to the type inside the windows (implemented proposals, revisions).

Every function is one plan of statements (a generator of (SQL, params) that receives
the rows), run by the sync (CLI) or the async (screens) driver below, so both faces run
the very same statements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Generator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from psycopg import AsyncConnection, Connection

from fsar_tui.db.profiles import SKETCHED_UNTIL_SQL
from fsar_tui.db.retention import ARCHIVED_REACH_SQL
from fsar_tui.db.roi import COSTS_SQL
from fsar_tui.domain import rollup_windows
from fsar_tui.domain.before_after import (
    WINDOW_DAYS,
    Arm,
    CostMoments,
    Evidence,
    compare,
    daily_money,
    unavailable,
    windows,
)
from fsar_tui.domain.retention import TASKS
from fsar_tui.domain.roi import CostRow, LedgerRow
from fsar_tui.errors import UsageError

T = TypeVar("T")
Query = tuple[str, Mapping[str, Any] | None]
Rows = list[tuple[Any, ...]]
Plan = Generator[Query, Rows, T]

PROPOSAL_SQL = """
    SELECT p.task_type, p.status,
           (SELECT a.at FROM operator_actions a
            WHERE a.target = 'proposal:' || p.id AND a.action = 'proposal.implemented'
            ORDER BY a.seq DESC LIMIT 1)
    FROM fsar_proposals p WHERE p.id = %(id)s"""

REVISION_SQL = """
    SELECT r.task_type, rr.created_at, c.started_at, c.ended_at, c.state
    FROM rollouts r
    JOIN rollout_revisions rr ON rr.rollout_id = r.id AND rr.revision = %(revision)s
    LEFT JOIN LATERAL (SELECT k.started_at, k.ended_at, k.state FROM rollout_canaries k
                       WHERE k.rollout_id = r.id AND k.canary_revision = rr.revision
                       ORDER BY k.id DESC LIMIT 1) c ON true
    WHERE r.target = %(target)s"""

TYPE = "(%(type)s::text IS NULL OR {col} = %(type)s)"
IN_WINDOWS = """(({col} >= %(before_start)s AND {col} < %(before_end)s)
                 OR ({col} >= %(after_start)s AND {col} < %(after_end)s))"""

# Successful tasks' run time (metric 0) per window: the detailed rows keep the outcome.
RUN_SQL = f"""
    WITH pieces AS (SELECT * FROM unnest(%(arms)s::int[], %(grains)s::smallint[], %(starts)s::timestamptz[])
                              AS c(arm, grain, start)),
    runs AS (
        SELECT c.arm, r.bucket, r.n FROM pieces c
        JOIN duration_rollups r ON r.grain = c.grain AND r.start = c.start
        WHERE r.rollout_revision_id >= 0 AND r.metric = 0 AND r.outcome = 'succeeded'
          AND {TYPE.format(col="r.task_type")}
        UNION ALL
        SELECT CASE WHEN s.finished_at < %(before_end)s THEN 0 ELSE 1 END, m.bucket, s.n
        FROM task_duration_samples s CROSS JOIN LATERAL fsar_sample_metrics(s) m
        WHERE m.metric = 0 AND s.outcome = 'succeeded' AND {TYPE.format(col="s.task_type")}
          AND {IN_WINDOWS.format(col="s.finished_at")})
    SELECT arm, bucket, sum(n)::bigint FROM runs GROUP BY 1, 2 HAVING sum(n) <> 0"""

# Per UTC day × model × currency: the type's finished tasks and AI cost (cancelled tasks'
# cost included, as the ROI screen counts it).
DAYS_SQL = f"""
    WITH pending AS (
        SELECT (s.finished_at AT TIME ZONE 'UTC')::date AS day, s.ai_model, s.currency,
               coalesce(sum(s.n) FILTER (WHERE s.outcome = 'succeeded'), 0) AS ok,
               coalesce(sum(s.n) FILTER (WHERE s.outcome = 'failed'), 0) AS bad,
               sum(s.n * (coalesce(s.cost_minor, 0) + coalesce(s.compute_cost_minor, 0))) AS cost
        FROM task_duration_samples s
        WHERE s.finished_at >= %(first)s::date::timestamp AT TIME ZONE 'UTC'
          AND s.finished_at < (%(last)s::date + 1)::timestamp AT TIME ZONE 'UTC' AND {TYPE.format(col="s.task_type")}
        GROUP BY 1, 2, 3),
    rows AS (
        SELECT day, ai_model, currency, tasks_succeeded AS ok, tasks_failed AS bad,
               model_cost_minor + compute_cost_minor AS cost
        FROM cost_rollups WHERE day BETWEEN %(first)s AND %(last)s AND {TYPE.format(col="task_type")}
        UNION ALL
        SELECT * FROM pending)
    SELECT day, ai_model, currency, sum(ok)::bigint, sum(bad)::bigint, sum(cost) FROM rows
    GROUP BY 1, 2, 3"""

LEDGER_SQL = """
    SELECT day, idea_id, kind, currency, sum(entries)::bigint, sum(amount_minor)::bigint FROM ledger_daily
    WHERE day BETWEEN %(first)s AND %(last)s AND idea_id = ANY(%(ideas)s) GROUP BY 1, 2, 3, 4"""

# Raw tasks: per window and currency, the sums the judge's cost-per-success interval needs.
RAW_COST_SQL = f"""
    SELECT CASE WHEN t.finished_at < %(before_end)s THEN 0 ELSE 1 END, t.currency, count(*),
           count(*) FILTER (WHERE t.status = 'succeeded'), sum(x.c), sum(x.c * x.c),
           coalesce(sum(x.c) FILTER (WHERE t.status = 'succeeded'), 0)
    FROM execution_tasks t CROSS JOIN LATERAL (SELECT t.cost_minor + coalesce(t.compute_cost_minor, 0) AS c) x
    WHERE (%(type)s::text IS NULL
           OR (t.task_type = %(type)s
               AND (t.ai_model = ANY(%(models)s) OR (t.ai_model IS NULL AND '' = ANY(%(models)s)))))
      AND t.status IN ('succeeded', 'failed') AND t.cost_minor IS NOT NULL AND t.currency IS NOT NULL
      AND {IN_WINDOWS.format(col="t.finished_at")}
    GROUP BY 1, 2"""

OTHERS_SQL = """
    SELECT 'proposal ' || p.id, a.at FROM operator_actions a JOIN fsar_proposals p ON a.target = 'proposal:' || p.id
    WHERE a.action = 'proposal.implemented' AND a.at >= %(start)s AND a.at < %(end)s
      AND (%(type)s::text IS NULL OR p.task_type IS NULL OR p.task_type = %(type)s)
      AND p.id IS DISTINCT FROM %(proposal)s::text
    UNION ALL
    SELECT 'revision ' || rr.revision || ' of ' || r.target, rr.created_at
    FROM rollout_revisions rr JOIN rollouts r ON r.id = rr.rollout_id
    WHERE rr.created_at >= %(start)s AND rr.created_at < %(end)s
      AND (%(type)s::text IS NULL OR r.task_type IS NULL OR r.task_type = %(type)s)
      AND (r.target, rr.revision) IS DISTINCT FROM (%(target)s::text, %(revision)s::integer)
    ORDER BY 2 LIMIT 6"""


# -- the two drivers ------------------------------------------------------------------------


def run_sync(conn: Connection, plan: Plan[T]) -> T:
    try:
        query = next(plan)
        while True:
            query = plan.send(conn.execute(query[0], query[1]).fetchall())
    except StopIteration as done:
        result: T = done.value
        return result


async def run(conn: AsyncConnection, plan: Plan[T]) -> T:
    try:
        query = next(plan)
        while True:
            cur = await conn.execute(query[0], query[1])
            query = plan.send(await cur.fetchall())
    except StopIteration as done:
        result: T = done.value
        return result


# -- public reads ---------------------------------------------------------------------------


async def proposal_evidence(
    conn: AsyncConnection, proposal_id: str, now: datetime, days: int = WINDOW_DAYS
) -> Evidence | None:
    """An implemented proposal's evidence; None when it is missing or not implemented."""
    return await run(conn, proposal_plan(proposal_id, now, days))


def proposal_evidence_sync(
    conn: Connection, proposal_id: str, now: datetime, days: int = WINDOW_DAYS
) -> Evidence | None:
    return run_sync(conn, proposal_plan(proposal_id, now, days))


async def revision_evidence(
    conn: AsyncConnection, target: str, revision: int, now: datetime, days: int = WINDOW_DAYS
) -> Evidence:
    """A deployed revision's evidence, for its target's task type (UsageError: no such revision)."""
    return await run(conn, revision_plan(target, revision, now, days))


def revision_evidence_sync(
    conn: Connection, target: str, revision: int, now: datetime, days: int = WINDOW_DAYS
) -> Evidence:
    return run_sync(conn, revision_plan(target, revision, now, days))


async def evidence(
    conn: AsyncConnection, task_type: str | None, at: datetime, now: datetime, days: int = WINDOW_DAYS
) -> Evidence:
    """Before/after any change to `task_type` (None: every type) made at `at`."""
    return await run(conn, evidence_plan(f"change at {at:%Y-%m-%d %H:%M}", task_type, at, now, days=days))


def evidence_sync(
    conn: Connection, task_type: str | None, at: datetime, now: datetime, days: int = WINDOW_DAYS
) -> Evidence:
    return run_sync(conn, evidence_plan(f"change at {at:%Y-%m-%d %H:%M}", task_type, at, now, days=days))


# -- plans ----------------------------------------------------------------------------------


def proposal_plan(proposal_id: str, now: datetime, days: int) -> Plan[Evidence | None]:
    rows = yield PROPOSAL_SQL, {"id": proposal_id}
    if not rows or rows[0][1] != "implemented":
        return None
    task_type, _, at = rows[0]
    subject = f"proposal {proposal_id}"
    if at is None:
        why = "no `proposal.implemented` row in the operator log says when it was implemented"
        return unavailable(subject, task_type, why)
    return (yield from evidence_plan(subject, task_type, at, now, days=days, proposal=proposal_id))


def revision_plan(target: str, revision: int, now: datetime, days: int) -> Plan[Evidence]:
    rows = yield REVISION_SQL, {"target": target, "revision": revision}
    if not rows:
        raise UsageError(f"no revision {revision} of rollout target {target!r} (see `fsar-tui rollouts list`)")
    task_type, created_at, canary_start, canary_end, state = rows[0]
    subject = f"revision {revision} of {target}"
    if state in ("running", "aborted"):
        why = f"its canary {'is still running' if state == 'running' else 'was aborted'}: it never ran all the traffic"
        return unavailable(subject, task_type, why)
    start, settled = (canary_start, canary_end) if state == "promoted" else (created_at, created_at)
    return (
        yield from evidence_plan(
            subject, task_type, start, now, settled_at=settled, days=days, target=target, revision=revision
        )
    )


def evidence_plan(
    subject: str,
    task_type: str | None,
    at: datetime,
    now: datetime,
    *,
    settled_at: datetime | None = None,
    days: int = WINDOW_DAYS,
    proposal: str | None = None,
    target: str | None = None,
    revision: int | None = None,
) -> Plan[Evidence]:
    """The statements of one comparison (module docstring), then domain.compare."""
    w = windows(at, now, days, settled_at)
    if w.after_end <= w.after_start:
        why = f"nothing to compare yet: the after window starts {w.after_start:%Y-%m-%d %H:%M} UTC"
        return unavailable(subject, task_type, why + " (the day of the change is in neither window)", w)
    until = (yield SKETCHED_UNTIL_SQL, None)[0][0]
    arms, grains, starts = [], [], []
    read_end = w.after_end
    for arm, (start, end) in enumerate(((w.before_start, w.before_end), (w.after_start, w.after_end))):
        for grain, piece, _ in rollup_windows.as_stored(rollup_windows.cover(start, end, now), until):
            arms.append(arm)
            grains.append(grain)
            starts.append(piece)
            read_end = max(read_end, piece + rollup_windows.span(grain)) if arm else read_end
    bounds = {
        "type": task_type,
        "before_start": w.before_start,
        "before_end": w.before_end,
        "after_start": w.after_start,
        "after_end": read_end,  # today's whole day row when the window ends now: samples to match
    }
    runs = yield RUN_SQL, {**bounds, "arms": arms, "grains": grains, "starts": starts}
    before_days, after_days = w.day_list(False), w.day_list(True)
    first, last = before_days[0], after_days[-1]
    day_rows = yield DAYS_SQL, {"type": task_type, "first": first, "last": last}
    window_costs = []
    for window_days in (before_days, after_days):
        rows = yield COSTS_SQL, {"first": window_days[0], "last": window_days[-1]}
        window_costs.append([CostRow(*row[2:]) for row in rows if not row[0]])
    ideas = sorted({r.idea for costs in window_costs for r in costs if r.idea and task_type in (None, r.task_type)})
    ledger: dict[date, list[LedgerRow]] = defaultdict(list)
    if ideas:
        for day, idea, kind, currency, entries, amount in (
            yield (
                LEDGER_SQL,
                {"first": first, "last": last, "ideas": ideas},
            )
        ):
            ledger[day].append(LedgerRow(idea, kind, currency, entries, amount))
    reach: dict[str, datetime] = {str(table): at for table, at in (yield ARCHIVED_REACH_SQL, None) if at}
    archived_upto = reach.get(TASKS)
    models = sorted({str(row[1]) for row in day_rows})
    raw: Rows | None = None
    if archived_upto is None or archived_upto < w.before_start:
        raw = (yield RAW_COST_SQL, {**bounds, "models": models}) if models else []
    others = yield (
        OTHERS_SQL,
        {
            "type": task_type,
            "start": w.before_start,
            "end": read_end,
            "proposal": proposal,
            "target": target,
            "revision": revision,
        },
    )
    built = [
        _arm(arm, window_days, task_type, runs, day_rows, raw, costs, ledger)
        for arm, (window_days, costs) in enumerate(zip((before_days, after_days), window_costs, strict=True))
    ]
    return compare(subject, task_type, w, built[0], built[1], [(str(what), at) for what, at in others])


def _arm(
    arm: int,
    days: list[date],
    task_type: str | None,
    runs: Rows,
    day_rows: Rows,
    raw: Rows | None,
    window_costs: list[CostRow],
    ledger: Mapping[date, list[LedgerRow]],
) -> Arm:
    wanted = set(days)
    mine = [row for row in day_rows if row[0] in wanted]
    costs = None
    if raw is not None:
        costs = [
            CostMoments(str(currency).strip(), int(n), int(ok), Decimal(total), Decimal(sq), Decimal(ok_total))
            for a, currency, n, ok, total, sq, ok_total in raw
            if a == arm
        ]
    type_costs = [(day, str(currency).strip(), Decimal(cost or 0)) for day, _, currency, _, _, cost in mine]
    return Arm(
        succeeded=sum(int(row[3]) for row in mine),
        failed=sum(int(row[4]) for row in mine),
        run_ms={int(bucket): int(n) for a, bucket, n in runs if a == arm},
        costs=costs,
        money=daily_money(task_type, days, type_costs, window_costs, ledger),
    )


__all__ = [
    "evidence",
    "evidence_sync",
    "proposal_evidence",
    "proposal_evidence_sync",
    "revision_evidence",
    "revision_evidence_sync",
]
