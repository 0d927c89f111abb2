"""The exact-cost check's independent side (issue 17): what each model's attempts cost,
from task_events, model_prices and compute_rates alone — never a cost column.

An attempt ends with an event from 'running' (to succeeded, failed, or queued for a
retry) carrying its tokens; it started with the 'queued' → 'running' event of the same
task and attempt; its price is the model_prices row in force then (the latest
effective_from at or before it; currencies by name on a tie). Model cost: tokens ×
price × 10⁻⁶, in numeric: exact. Compute cost: the attempt's run time (its end event's
time − its start) × the compute rate in force at its start in the price's currency /
3600, to 10⁻⁶ minor units. Only tasks that ended (succeeded, failed, cancelled) in the
window count — as in the ROI rollups and the profiles (a task's earlier attempts are
counted when it ends). tests/test_cost_at_scale.py and bench/roi_bench.py compare `roi --by
model` and `profile --by model` with this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import psycopg

INDEPENDENT_SQL = """
WITH ended AS (
    SELECT id, ai_model, status FROM execution_tasks
    WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at >= %(start)s AND finished_at < %(end)s
), starts AS (
    SELECT e.task_id, e.attempt, max(e.at) AS started
    FROM task_events e JOIN ended t ON t.id = e.task_id
    WHERE e.from_status = 'queued' AND e.to_status = 'running'
    GROUP BY 1, 2
), attempts AS (
    SELECT t.ai_model, p.currency,
           (coalesce(e.input_tokens, 0) * p.input_minor_per_mtok
            + coalesce(e.output_tokens, 0) * p.output_minor_per_mtok) * 0.000001 AS cost,
           round(extract(epoch FROM e.at - s.started) * r.minor_per_hour / 3600, 6) AS compute
    FROM task_events e
    JOIN ended t ON t.id = e.task_id
    JOIN starts s ON s.task_id = e.task_id AND s.attempt = e.attempt
    CROSS JOIN LATERAL (
        SELECT mp.currency, mp.input_minor_per_mtok, mp.output_minor_per_mtok FROM model_prices mp
        WHERE mp.ai_model = t.ai_model AND mp.effective_from <= s.started
        ORDER BY mp.effective_from DESC, mp.currency LIMIT 1
    ) p
    LEFT JOIN LATERAL (
        SELECT cr.minor_per_hour FROM compute_rates cr
        WHERE cr.currency = p.currency AND cr.effective_from <= s.started
        ORDER BY cr.effective_from DESC LIMIT 1
    ) r ON true
    WHERE e.from_status = 'running' AND (e.input_tokens > 0 OR e.output_tokens > 0)
)
SELECT m.ai_model, a.currency, coalesce(a.cost, 0), coalesce(a.compute, 0), a.attempts, m.succeeded
FROM (SELECT ai_model, count(*) FILTER (WHERE status = 'succeeded') AS succeeded FROM ended GROUP BY 1) m
LEFT JOIN (SELECT ai_model, currency, sum(cost) AS cost, sum(compute) AS compute, count(*) AS attempts
           FROM attempts GROUP BY 1, 2) a
    ON a.ai_model = m.ai_model
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class ModelCost:
    model: str
    currency: str | None
    cost_minor: Decimal  # model cost, exact
    compute_minor: Decimal  # compute cost, each attempt's to 10⁻⁶
    attempts: int
    succeeded: int

    @property
    def cost_per_success_minor(self) -> Decimal | None:
        """AI cost (model + compute, failures included) per successful task."""
        return (self.cost_minor + self.compute_minor) / self.succeeded if self.succeeded else None


def independent_costs(conn: psycopg.Connection, start: datetime, end: datetime) -> dict[str, ModelCost]:
    """model → its attempts' cost over tasks that ended in [start, end)."""
    rows = conn.execute(INDEPENDENT_SQL, {"start": start, "end": end}).fetchall()
    return {r[0]: ModelCost(*r) for r in rows}


def deviation(value: Decimal | float | None, expected: Decimal | None) -> float:
    """|value − expected| / expected (inf when one is missing or expected is 0)."""
    if value is None or expected is None or expected == 0:
        return 0.0 if value == expected else float("inf")
    return abs(float(Decimal(str(value)) - expected) / float(expected))
