"""Drift alerts: leading indicators per type × model, hour by hour, through the change
detector of domain/drift.py, kept in drift_alerts (revision 0007/0016).

Indicators (per complete UTC hour, from the hour rollups — kept four days — and the
samples the trigger has not folded into them yet, so a pass costs a few hundred rows, not
a scan of tasks, and still counts every task finished before it began):
- failure_rate: failed / (succeeded + failed);
- p90_run_time: the hour's p90 run time (ms), from its histogram (computed in SQL:
  the first bucket where the running count reaches 90 %);
- cost_per_task: model cost (minor units, the rollups' cost metric) per finished task.
An hour with fewer than MIN_HOURLY finished tasks is a gap (None), not a zero.

Alerts: a detector that fires opens an alert (state firing) or refreshes the open one
(one open alert per indicator and scope, by a partial unique index), keeping its state
if an operator acknowledged it. When the detector has judged the series and no longer
fires, the open alert resolves by itself. Acknowledging needs a reason and goes to the
operator log.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow, class_row
from psycopg.types.json import Jsonb

from fsar_tui import clock
from fsar_tui.db.rows import one
from fsar_tui.domain import drift
from fsar_tui.domain.histogram import bucket_value
from fsar_tui.domain.rollup_windows import HOUR, floor_hour
from fsar_tui.errors import CheckFailed, UsageError

INDICATORS = ("failure_rate", "p90_run_time", "cost_per_task")
MIN_HOURLY = 20
HOURS = 66  # the hour rollups are kept three days; the newest hours are the watched ones

# The hour rollups (compact rows: every revision; run time of tasks that ran, outcome '*';
# one count/cost row per finished task, outcome kept) plus the samples the trigger has not
# folded yet, turned into those same rows by fsar_sample_metrics — what the fold would add
# (revision 0013) — in one statement, so one snapshot: a fold committing meanwhile moves
# samples into rows and the sums stay the same, never counted twice or not at all.
# MATERIALIZED: the watched hours' rows are read once for both uses, half the buffers of
# two scans (300 k seeded tasks over 4 days: about a third faster than the rollups-only
# query this replaced, which scanned them twice; pending samples are a few hundred rows).
HOURLY_SQL = """
    WITH hourly AS MATERIALIZED (
        SELECT start, task_type, ai_model, outcome, metric, bucket, n, total
        FROM duration_rollups
        WHERE grain = %(hour)s AND start >= %(first)s AND start < %(end)s AND rollout_revision_id = -1
          AND metric IN (0, 2)
        UNION ALL
        SELECT date_trunc('hour', s.finished_at, 'UTC'), s.task_type, s.ai_model,
               CASE WHEN m.metric = 2 THEN s.outcome ELSE '*' END, m.metric, m.bucket, s.n, s.n * m.value
        FROM task_duration_samples s CROSS JOIN LATERAL fsar_sample_metrics(s) m
        WHERE s.finished_at >= %(first)s AND s.finished_at < %(end)s
          AND (m.metric = 2 OR (m.metric = 0 AND s.outcome IN ('succeeded', 'failed')))),
    counts AS (
        SELECT start, task_type, ai_model,
               sum(n) FILTER (WHERE outcome = 'succeeded')::bigint AS ok,
               sum(n) FILTER (WHERE outcome = 'failed')::bigint AS failed,
               sum(n) FILTER (WHERE outcome IN ('succeeded', 'failed', 'cancelled'))::bigint AS finished,
               sum(total) AS cost
        FROM hourly WHERE metric = 2
        GROUP BY 1, 2, 3),
    run AS (
        SELECT start, task_type, ai_model, bucket,
               sum(n) OVER w AS running, sum(n) OVER (PARTITION BY start, task_type, ai_model) AS total
        FROM (SELECT start, task_type, ai_model, bucket, sum(n) AS n FROM hourly
              WHERE metric = 0 AND outcome = '*'
              GROUP BY 1, 2, 3, 4 HAVING sum(n) > 0) b
        WINDOW w AS (PARTITION BY start, task_type, ai_model ORDER BY bucket)),
    p90 AS (SELECT DISTINCT ON (start, task_type, ai_model) start, task_type, ai_model, bucket, total
            FROM run WHERE running >= 0.9 * total ORDER BY start, task_type, ai_model, bucket)
    SELECT c.start, c.task_type, c.ai_model, c.ok, c.failed, c.finished, c.cost, p.bucket, p.total
    FROM counts c LEFT JOIN p90 p USING (start, task_type, ai_model)
    ORDER BY c.task_type, c.ai_model, c.start"""


@dataclass(frozen=True)
class Signal:
    indicator: str
    task_type: str
    ai_model: str
    verdict: drift.DriftVerdict

    @property
    def scope(self) -> dict[str, Any]:
        return {"task_type": self.task_type, "ai_model": self.ai_model}


def hourly_series(rows: list[TupleRow], hours: list[datetime]) -> dict[tuple[str, str, str], list[float | None]]:
    """(indicator, type, model) → one value per hour of `hours` (None: too few tasks)."""
    index = {h: i for i, h in enumerate(hours)}
    out: dict[tuple[str, str, str], list[float | None]] = {}
    for start, task_type, model, ok, failed, finished, cost, p90_bucket, ran in rows:
        if start not in index:
            continue
        ok, failed, finished = ok or 0, failed or 0, finished or 0
        values = {
            "failure_rate": failed / (ok + failed) if ok + failed >= MIN_HOURLY else None,
            "p90_run_time": bucket_value(p90_bucket) if p90_bucket is not None and ran >= MIN_HOURLY else None,
            "cost_per_task": cost / finished if finished >= MIN_HOURLY and cost is not None else None,
        }
        for indicator, value in values.items():
            series = out.setdefault((indicator, task_type, model), [None] * len(hours))
            series[index[start]] = value
    return out


def watched_hours(now: datetime | None = None) -> list[datetime]:
    """The HOURS complete UTC hours before `now`, oldest first (the current one is still filling)."""
    end = floor_hour(now or clock.now())
    return [end - timedelta(hours=HOURS - i) for i in range(HOURS)]


def hourly_rows(conn: Connection, hours: list[datetime] | None = None) -> list[TupleRow]:
    """HOURLY_SQL's rows over `hours` (default: watched_hours()), folded or not."""
    hours = hours or watched_hours()
    return conn.execute(HOURLY_SQL, {"hour": HOUR, "first": hours[0], "end": hours[-1] + timedelta(hours=1)}).fetchall()


def detect_all(
    conn: Connection, now: datetime | None = None, params: drift.DriftParams = drift.DriftParams()
) -> list[Signal]:
    hours = watched_hours(now)
    rows = hourly_rows(conn, hours)
    return [
        Signal(indicator, task_type, model, judge(indicator, series, params))
        for (indicator, task_type, model), series in sorted(hourly_series(rows, hours).items())
    ]


# Run times and costs are right-skewed: the detector sees their logarithms (with an
# absolute 5 % floor on the spread), which keeps its false-positive rate at the Gaussian
# 0.8 % instead of 7–24 % (domain/drift.py); baseline and current are reported back in
# the indicator's own unit.
LOG_INDICATORS = frozenset({"p90_run_time", "cost_per_task"})
LOG_REL_FLOOR, LOG_ABS_FLOOR = 0.0, math.log(1.05)


def judge(indicator: str, series: list[float | None], params: drift.DriftParams) -> drift.DriftVerdict:
    if indicator not in LOG_INDICATORS:
        return drift.detect(series, params)
    v = drift.detect(
        [math.log(x) if x is not None and x > 0 else None for x in series],
        dataclasses.replace(params, rel_floor=LOG_REL_FLOOR, abs_floor=LOG_ABS_FLOOR),
    )
    return dataclasses.replace(v, baseline=_exp(v.baseline), current=_exp(v.current), sigma=None)


def _exp(y: float | None) -> float | None:
    return None if y is None else math.exp(y)


def apply(conn: Connection, signals: list[Signal], *, claimed: str | None = None) -> tuple[int, int]:
    """Open or refresh alerts for firing signals, resolve open ones that stopped firing,
    through the functions of revision 0020 (a resolve is logged). Returns (firing now,
    resolved now)."""
    firing = resolved = 0
    with conn.transaction():
        for s in signals:
            v = s.verdict
            if v.insufficient:
                continue  # no judgement: leave any open alert as it is
            details = Jsonb(
                {
                    "direction": v.direction,
                    "sigma": v.sigma,
                    "alarms": len(v.alarms),
                    "detector": "two-sided CUSUM on hourly values (domain/drift.py)",
                }
            )
            if v.firing:
                firing += 1
                conn.execute(
                    "SELECT fsar_drift_alert_raise(%s, %s, %s::numeric, %s::numeric, %s)",
                    (s.indicator, Jsonb(s.scope), v.baseline, v.current, details),
                )
            else:
                resolved += one(
                    conn.execute(
                        "SELECT fsar_drift_alert_resolve(%s, %s, %s::numeric, %s)",
                        (s.indicator, Jsonb(s.scope), v.current, claimed),
                    ).fetchone()
                )[0]
    return firing, resolved


def ack(conn: Connection, alert_id: int, *, actor: str, reason: str) -> None:
    """Acknowledge a firing alert (fsar_drift_alert_ack logs it). `actor`: the OS user, as
    claimed (the database records the role as acked_by and as the log's actor)."""
    if not reason.strip():
        raise UsageError("a reason is required to acknowledge an alert")
    with conn.transaction():
        outcome: str = one(
            conn.execute("SELECT fsar_drift_alert_ack(%s::bigint, %s, %s)", (alert_id, reason, actor)).fetchone()
        )[0]
    if outcome == "missing":
        raise UsageError(f"no alert {alert_id}")
    if outcome.startswith("not-firing:"):
        raise CheckFailed(f"alert {alert_id} is {outcome.split(':', 1)[1]}, not firing: nothing to acknowledge")


OPEN_SQL = """
    SELECT id, indicator, scope, state, baseline::float8 AS baseline, current::float8 AS current, opened_at,
           acked_by, ack_reason, details
    FROM drift_alerts WHERE state <> 'resolved' ORDER BY state = 'acked', opened_at DESC LIMIT 200"""


@dataclass(frozen=True)
class OpenAlert:
    """A drift alert that is firing or acknowledged (not resolved)."""

    id: int
    indicator: str
    scope: dict[str, Any]
    state: str
    baseline: float | None
    current: float | None
    opened_at: datetime
    acked_by: str | None
    ack_reason: str | None
    details: dict[str, Any] | None


def open_alerts_sync(conn: Connection) -> list[OpenAlert]:
    return conn.cursor(row_factory=class_row(OpenAlert)).execute(OPEN_SQL).fetchall()


async def open_alerts(conn: AsyncConnection) -> list[OpenAlert]:
    cur = conn.cursor(row_factory=class_row(OpenAlert))
    return await (await cur.execute(OPEN_SQL)).fetchall()


async def alert_counts(conn: AsyncConnection) -> tuple[int, int]:
    """(firing, acked) — the header's alert figure."""
    cur = await conn.execute(
        "SELECT count(*) FILTER (WHERE state = 'firing'), count(*) FILTER (WHERE state = 'acked') "
        "FROM drift_alerts WHERE state <> 'resolved'"
    )
    firing, acked = one(await cur.fetchone())
    return firing, acked
