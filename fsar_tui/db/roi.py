"""ROI reads: task cost and ledger sums over whole UTC days, from the rollups (revision 0014).

One statement for task costs and one for the ledger, each with two grouping sets — the
dimensions (type × model × rollout × idea, or idea × kind) and the days — so a 30-day
ROI over 10 M tasks reads a few thousand rollup rows. Task samples the trigger has not
folded yet are added in, so the figures are exact at any moment. Costs are exact
decimals in minor units (numeric since revision 0024; Decimal here), never rounded
before display. domain/roi.py does
the arithmetic; the screen, `fsar-tui roi` and `fsar-tui report` share this module.

Windows are whole UTC days ending today: the rollups are daily, and a money figure
that silently covered 23.5 hours of one day would be worse than a stated day boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow

from fsar_tui.db import idea_completions
from fsar_tui.domain.attribution import Completion
from fsar_tui.domain.roi import CostRow, DayCost, DayLedger, LedgerRow

COSTS_SQL = """
    WITH pending AS (
        SELECT (s.finished_at AT TIME ZONE 'UTC')::date AS day, s.task_type, s.ai_model, s.rollout_revision_id,
               coalesce(s.idea_id, '') AS idea_id, s.currency,
               coalesce(sum(s.n) FILTER (WHERE s.outcome = 'succeeded'), 0) AS tasks_succeeded,
               coalesce(sum(s.n) FILTER (WHERE s.outcome = 'failed'), 0) AS tasks_failed,
               coalesce(sum(s.n) FILTER (WHERE s.outcome = 'cancelled'), 0) AS tasks_cancelled,
               sum(s.n * coalesce(s.cost_minor, 0)) AS model_cost_minor,
               sum(s.n * coalesce(s.compute_cost_minor, 0)) AS compute_cost_minor,
               coalesce(sum(s.n * (coalesce(s.cost_minor, 0) + coalesce(s.compute_cost_minor, 0)))
                        FILTER (WHERE s.outcome <> 'succeeded'), 0) AS failed_cost_minor,
               coalesce(sum(s.n * coalesce(s.waste_minor, 0)), 0) AS waste_minor,
               coalesce(sum(s.n * coalesce(s.unpriced_attempts, 0)), 0) AS unpriced_attempts
        FROM task_duration_samples s
        WHERE s.finished_at >= %(first)s::date::timestamp AT TIME ZONE 'UTC'
          AND s.finished_at < (%(last)s::date + 1)::timestamp AT TIME ZONE 'UTC'
        GROUP BY 1, 2, 3, 4, 5, 6),
    rows AS (
        SELECT day, task_type, ai_model, rollout_revision_id, idea_id, currency, tasks_succeeded, tasks_failed,
               tasks_cancelled, model_cost_minor, compute_cost_minor, failed_cost_minor, waste_minor,
               unpriced_attempts
        FROM cost_rollups WHERE day BETWEEN %(first)s AND %(last)s
        UNION ALL
        SELECT * FROM pending)
    SELECT GROUPING(day) = 0, day, task_type, ai_model, rollout_revision_id, idea_id, currency,
           sum(tasks_succeeded)::bigint, sum(tasks_failed)::bigint, sum(tasks_cancelled)::bigint,
           sum(model_cost_minor), sum(compute_cost_minor), sum(failed_cost_minor), sum(waste_minor),
           sum(unpriced_attempts)::bigint
    FROM rows
    GROUP BY GROUPING SETS ((task_type, ai_model, rollout_revision_id, idea_id, currency), (day, currency))
"""

LEDGER_SQL = """
    SELECT GROUPING(day) = 0, day, idea_id, kind, currency, sum(entries)::bigint, sum(amount_minor)::bigint
    FROM ledger_daily WHERE day BETWEEN %(first)s AND %(last)s
    GROUP BY GROUPING SETS ((idea_id, kind, currency), (day, kind, currency))
"""

# Reason breaks ties of equal counts: the same data lists in the same order every run.
FUNNEL_SQL = """
    SELECT stage, currency, reason, sum(n)::bigint FROM payment_funnel_daily
    WHERE day BETWEEN %(first)s AND %(last)s GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC, 3
"""

ROLLOUT_NAMES_SQL = """
    SELECT rr.id, r.target, rr.revision FROM rollout_revisions rr JOIN rollouts r ON r.id = rr.rollout_id
"""


@dataclass
class RoiData:
    """What one ROI read returns (the window's rows in both shapes)."""

    first: date
    last: date
    costs: list[CostRow]
    ledger: list[LedgerRow]
    day_costs: list[DayCost]
    day_ledger: list[DayLedger]
    funnel: list[TupleRow]  # (stage, currency, reason, n)
    rollout_names: dict[int, str]
    completions: dict[str, Completion] = field(default_factory=dict)  # idea -> its completing task

    @property
    def ideas(self) -> set[str]:
        """The window's ideas: those with task costs or ledger entries in it."""
        return {r.idea for r in self.costs if r.idea} | {r.idea for r in self.ledger if r.idea}


def window_days(days: int, today: date | None = None) -> tuple[date, date]:
    """The last `days` whole UTC days, today included."""
    last = today or datetime.now(UTC).date()
    return last - timedelta(days=max(1, days) - 1), last


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) timestamps of a whole-day window, for readers of raw tables."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return start, datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)


def _split_costs(rows: list[TupleRow]) -> tuple[list[CostRow], list[TupleRow]]:
    costs, days = [], []
    for row in rows:
        by_day, day, task_type, model, rollout, idea, currency, ok, failed, cancelled = row[:10]
        mcost, ccost, fcost, waste, unpriced = row[10:]
        if by_day:
            days.append((day, currency, mcost, ccost))
        else:
            costs.append(
                CostRow(
                    task_type,
                    model,
                    rollout,
                    idea,
                    currency,
                    ok,
                    failed,
                    cancelled,
                    mcost,
                    ccost,
                    fcost,
                    waste,
                    unpriced,
                )
            )
    return costs, days


def _split_ledger(rows: list[TupleRow]) -> tuple[list[LedgerRow], list[TupleRow]]:
    ledger, days = [], []
    for by_day, day, idea, kind, currency, entries, amount in rows:
        if by_day:
            days.append((day, kind, currency, amount))
        else:
            ledger.append(LedgerRow(idea, kind, currency, entries, amount))
    return ledger, days


def _names(rows: list[TupleRow]) -> dict[int, str]:
    return {rid: f"{target} #{revision}" for rid, target, revision in rows}


def _assemble(
    first: date,
    last: date,
    cost_rows: list[TupleRow],
    ledger_rows: list[TupleRow],
    funnel: list[TupleRow],
    names: list[TupleRow],
) -> RoiData:
    costs, day_costs = _split_costs(cost_rows)
    ledger, day_ledger = _split_ledger(ledger_rows)
    return RoiData(first, last, costs, ledger, day_costs, day_ledger, funnel, _names(names))


async def roi_data(conn: AsyncConnection, first: date, last: date) -> RoiData:
    params = {"first": first, "last": last}
    results = []
    for sql in (COSTS_SQL, LEDGER_SQL, FUNNEL_SQL, ROLLOUT_NAMES_SQL):
        cur = await conn.execute(sql, params if "%(" in sql else None)
        results.append(await cur.fetchall())
    data = _assemble(first, last, *results)
    data.completions = await idea_completions.completions(conn, data.ideas, day_bounds(first, last)[1])
    return data


def roi_data_sync(conn: Connection, first: date, last: date) -> RoiData:
    params = {"first": first, "last": last}
    results = [
        conn.execute(sql, params if "%(" in sql else None).fetchall()
        for sql in (COSTS_SQL, LEDGER_SQL, FUNNEL_SQL, ROLLOUT_NAMES_SQL)
    ]
    data = _assemble(first, last, *results)
    data.completions = idea_completions.completions_sync(conn, data.ideas, day_bounds(first, last)[1])
    return data


# The naive equivalents (benchmarks; drift checks): the same sums straight from the tables.
NAIVE_COSTS_SQL = """
    SELECT task_type, coalesce(ai_model, ''), coalesce(rollout_revision_id, 0), coalesce(idea_id, ''),
           coalesce(currency, ''),
           count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
           count(*) FILTER (WHERE status = 'cancelled'),
           coalesce(sum(cost_minor), 0), coalesce(sum(compute_cost_minor), 0),
           coalesce(sum(coalesce(cost_minor, 0) + coalesce(compute_cost_minor, 0))
                    FILTER (WHERE status <> 'succeeded'), 0),
           coalesce(sum(waste_minor), 0), coalesce(sum(unpriced_attempts), 0)::bigint
    FROM execution_tasks
    WHERE status IN ('succeeded', 'failed', 'cancelled')
      AND finished_at >= %(first)s::date::timestamp AT TIME ZONE 'UTC'
      AND finished_at < (%(last)s::date + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1, 2, 3, 4, 5
"""

NAIVE_LEDGER_SQL = """
    SELECT coalesce(idea_id, ''), kind, currency, count(*), sum(amount_minor)::bigint
    FROM ledger_entries
    WHERE occurred_at >= %(first)s::date::timestamp AT TIME ZONE 'UTC'
      AND occurred_at < (%(last)s::date + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1, 2, 3
"""

# Cost rollups + pending samples vs a recount from the tasks the 0013 rule counts; rows
# that differ (a full scan: for checks and tests).
COST_DRIFT_SQL = """
    WITH st AS (SELECT * FROM rollup_state),
    counted AS (
        SELECT (t.finished_at AT TIME ZONE 'UTC')::date AS day, t.task_type, coalesce(t.ai_model, '') AS ai_model,
               coalesce(t.rollout_revision_id, 0) AS rev, coalesce(t.idea_id, '') AS idea,
               coalesce(t.currency, '') AS currency,
               count(*) FILTER (WHERE t.status = 'succeeded') AS ok, count(*) FILTER (WHERE t.status = 'failed') AS bad,
               count(*) FILTER (WHERE t.status = 'cancelled') AS cancelled,
               coalesce(sum(t.cost_minor), 0) AS model, coalesce(sum(t.compute_cost_minor), 0) AS compute,
               coalesce(sum(t.waste_minor), 0) AS waste, coalesce(sum(t.unpriced_attempts), 0) AS unpriced
        FROM execution_tasks t CROSS JOIN st
        WHERE t.status IN ('succeeded', 'failed', 'cancelled')
          AND (t.id > st.backfill_target OR t.finished_at >= st.epoch OR t.id <= st.backfilled_upto)
        GROUP BY 1, 2, 3, 4, 5, 6),
    kept AS (
        SELECT day, task_type, ai_model, rollout_revision_id AS rev, idea_id AS idea, currency,
               sum(tasks_succeeded) AS ok, sum(tasks_failed) AS bad, sum(tasks_cancelled) AS cancelled,
               sum(model_cost_minor) AS model, sum(compute_cost_minor) AS compute,
               sum(waste_minor) AS waste, sum(unpriced_attempts) AS unpriced
        FROM (SELECT day, task_type, ai_model, rollout_revision_id, idea_id, currency, tasks_succeeded,
                     tasks_failed, tasks_cancelled, model_cost_minor, compute_cost_minor, waste_minor,
                     unpriced_attempts FROM cost_rollups
              UNION ALL
              SELECT (finished_at AT TIME ZONE 'UTC')::date, task_type, ai_model, rollout_revision_id,
                     coalesce(idea_id, ''), currency,
                     CASE WHEN outcome = 'succeeded' THEN n ELSE 0 END, CASE WHEN outcome = 'failed' THEN n ELSE 0 END,
                     CASE WHEN outcome = 'cancelled' THEN n ELSE 0 END,
                     n * coalesce(cost_minor, 0), n * coalesce(compute_cost_minor, 0), n * coalesce(waste_minor, 0),
                     n * coalesce(unpriced_attempts, 0)
              FROM task_duration_samples) x
        GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(tasks_succeeded) <> 0 OR sum(tasks_failed) <> 0 OR sum(tasks_cancelled) <> 0
            OR sum(model_cost_minor) <> 0 OR sum(compute_cost_minor) <> 0 OR sum(waste_minor) <> 0
            OR sum(unpriced_attempts) <> 0)
    SELECT * FROM counted FULL JOIN kept USING (day, task_type, ai_model, rev, idea, currency)
    WHERE counted.ok IS DISTINCT FROM kept.ok OR counted.bad IS DISTINCT FROM kept.bad
       OR counted.cancelled IS DISTINCT FROM kept.cancelled OR counted.model IS DISTINCT FROM kept.model
       OR counted.compute IS DISTINCT FROM kept.compute OR counted.waste IS DISTINCT FROM kept.waste
       OR counted.unpriced IS DISTINCT FROM kept.unpriced
"""

LEDGER_DRIFT_SQL = """
    WITH counted AS (
        SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, kind, currency, coalesce(idea_id, '') AS idea_id,
               count(*) AS entries, sum(amount_minor) AS amount
        FROM ledger_entries GROUP BY 1, 2, 3, 4),
    kept AS (SELECT day, kind, currency, idea_id, entries, amount_minor AS amount FROM ledger_daily
             WHERE entries <> 0 OR amount_minor <> 0)
    SELECT * FROM counted FULL JOIN kept USING (day, kind, currency, idea_id)
    WHERE counted.entries IS DISTINCT FROM kept.entries OR counted.amount IS DISTINCT FROM kept.amount
"""
