"""The reads behind one Prometheus scrape (`fsar-tui metrics`, issue 20): all of them, in
one read-only REPEATABLE READ transaction, so every figure of a scrape is of one moment.

Never execution_tasks: each read is of a table whose size does not grow with the tasks —
- the queue counters (task_counts + the not-yet-folded task_count_deltas, revision 0012);
- the run-time and queue-wait histograms of ALL time per type × model: the duration
  sketches and rollups tiling [first rolled-up day, now) plus the unfolded samples
  (db/profiles.SKETCH_SQL, the profile screen's own statement, so the same snapshot rules);
  a few hundred rows, growing with the number of 32-day blocks of history;
- task counts and costs of all time per type × model × currency: cost_rollups (one row
  per day × type × model × rollout × idea × currency) plus the unfolded samples, as the
  ROI screen adds them (db/roi.COSTS_SQL), exact numeric minor units;
- revenue of all time per currency, credits and deductions apart: ledger_daily, the ROI
  screen's kinds;
- gates with their latest verdict (db/gates.LATEST_SQL), the rollout targets with their
  running canary's weight, the canaries the header banner calls aborted
  (db/blocks.ABORTED_CANARIES_SQL), firing drift alerts, blocking proposals.
Rollback readiness is read from the record the audit pass leaves — the latest verdict of
the gate builtin:rollback-artifacts — never rehearsed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from psycopg import Connection, IsolationLevel
from psycopg.rows import TupleRow

from fsar_tui.db import gates as gate_queries
from fsar_tui.db import proposals
from fsar_tui.db.blocks import ABORTED_CANARIES_SQL
from fsar_tui.db.profiles import SKETCH_SQL
from fsar_tui.db.rows import one
from fsar_tui.domain import rollup_windows
from fsar_tui.domain.roi import REVENUE_CREDIT_KINDS, REVENUE_KINDS

ROLLBACK_GATE = "builtin:rollback-artifacts"
SCRAPE_WORK_MEM = "64MB"

COUNTS_SQL = """
    SELECT status, task_type, ai_model, sum(n)::bigint FROM (
        SELECT status, task_type, ai_model, n FROM task_counts
        UNION ALL SELECT status, task_type, ai_model, n FROM task_count_deltas) c
    GROUP BY 1, 2, 3 HAVING sum(n) <> 0"""

# Where the rollups begin (the day rows tile all of history; the index on (grain, start)
# answers min() from its first entry), the samples not folded yet, the server's clock,
# and how far the sketches reach.
SPAN_SQL = """
    SELECT least((SELECT min(start) FROM duration_rollups WHERE grain = 0),
                 (SELECT min(finished_at) FROM task_duration_samples)),
           now(), (SELECT sketched_until FROM rollup_state)"""

COSTS_SQL = """
    SELECT task_type, ai_model, currency, sum(ok)::bigint, sum(failed)::bigint, sum(cancelled)::bigint,
           sum(model_cost), sum(compute_cost), sum(waste)
    FROM (SELECT task_type, ai_model, currency, tasks_succeeded AS ok, tasks_failed AS failed,
                 tasks_cancelled AS cancelled, model_cost_minor::numeric AS model_cost,
                 compute_cost_minor::numeric AS compute_cost, waste_minor::numeric AS waste
          FROM cost_rollups
          UNION ALL
          SELECT s.task_type, s.ai_model, s.currency,
                 CASE WHEN s.outcome = 'succeeded' THEN s.n ELSE 0 END,
                 CASE WHEN s.outcome = 'failed' THEN s.n ELSE 0 END,
                 CASE WHEN s.outcome = 'cancelled' THEN s.n ELSE 0 END,
                 s.n * coalesce(s.cost_minor, 0)::numeric, s.n * coalesce(s.compute_cost_minor, 0)::numeric,
                 s.n * coalesce(s.waste_minor, 0)::numeric
          FROM task_duration_samples s) x
    GROUP BY 1, 2, 3"""

# Per currency, what credits revenue and what is taken off it (ledger_entries' sign
# check: revenue and dispute_won ≥ 0, the other revenue kinds ≤ 0): each side only grows.
REVENUE_SQL = """
    SELECT currency, coalesce(sum(amount_minor) FILTER (WHERE kind = ANY(%(credits)s)), 0)::numeric,
           coalesce(-sum(amount_minor) FILTER (WHERE kind <> ALL(%(credits)s)), 0)::numeric
    FROM ledger_daily WHERE kind = ANY(%(kinds)s) GROUP BY currency"""

# Each target: when it last changed, whether it has a revision to roll back to (the
# default rollback's rule, domain/rollouts.default_target: the one before the active),
# and its running canary's weight (%), if any.
TARGETS_SQL = """
    SELECT r.target, r.updated_at,
           r.active_revision > 1 AND EXISTS (SELECT 1 FROM rollout_revisions p
                                             WHERE p.rollout_id = r.id AND p.revision = r.active_revision - 1),
           (SELECT c.weight FROM rollout_canaries c WHERE c.rollout_id = r.id AND c.state = 'running'
            ORDER BY c.id DESC LIMIT 1)
    FROM rollouts r ORDER BY r.target"""

DRIFT_SQL = """
    SELECT coalesce(scope ->> 'task_type', ''), coalesce(scope ->> 'ai_model', ''), count(*)::bigint
    FROM drift_alerts WHERE state = 'firing' GROUP BY 1, 2"""


@dataclass(frozen=True)
class CostSum:
    """All-time task counts and exact costs (minor units) of one type × model × currency."""

    task_type: str
    ai_model: str
    currency: str
    succeeded: int
    failed: int
    cancelled: int
    model_cost: Decimal
    compute_cost: Decimal
    waste: Decimal


@dataclass(frozen=True)
class TargetRow:
    target: str
    changed_at: datetime
    has_earlier: bool  # a revision before the active one: something to roll back to
    canary_weight: int | None  # the running canary's share, %; None: no canary running


@dataclass(frozen=True)
class Snapshot:
    """One scrape's facts, as read (raw, unsanitised text)."""

    now: datetime
    counts: list[tuple[str, str, str, int]]  # (status, task_type, ai_model, n)
    sketches: list[TupleRow]  # SKETCH_SQL rows: (type, model, outcome, metric, currency, buckets, counts, total)
    costs: list[CostSum]
    revenue: list[tuple[str, Decimal, Decimal]]  # (currency, credits, deductions ≥ 0), minor units
    gates: list[gate_queries.GateStatus]
    targets: list[TargetRow]
    aborted: set[str]  # targets whose latest canary was aborted in the last 24 h (the banner's rule)
    drift: list[tuple[str, str, int]]  # (task_type, ai_model, firing alerts)
    blocking: list[tuple[str | None, int]]  # (task type — None: every type —, blocking proposals)


def _sketch_params(start: datetime, now: datetime, sketched_until: date) -> dict[str, Any]:
    """SKETCH_SQL's parameters for [start, now), as db/profiles builds them."""
    cover = rollup_windows.cover(start, now, now)
    pieces = rollup_windows.as_stored(cover, sketched_until)
    return {
        "grains": [g for g, _, _ in pieces],
        "starts": [s for _, s, _ in pieces],
        "sketched": [k for _, _, k in pieces],
        "start": cover[0][1] if cover else start,
        "end": now,
    }


def _sketches(conn: Connection, first: datetime | None, now: datetime, sketched_until: date) -> list[TupleRow]:
    if first is None:  # nothing rolled up, nothing pending
        return []
    start = rollup_windows.floor_day(first.astimezone(UTC))
    return conn.cursor(binary=True).execute(SKETCH_SQL, _sketch_params(start, now, sketched_until)).fetchall()


def _blocking(conn: Connection) -> list[tuple[str | None, int]]:
    per_type: dict[str | None, int] = {}
    for _ref, task_type, _severity in proposals.blocking_sync(conn):
        per_type[task_type] = per_type.get(task_type, 0) + 1
    return sorted(per_type.items(), key=lambda item: (item[0] is not None, item[0] or ""))


def read_snapshot(conn: Connection) -> Snapshot:
    """Every read of a scrape, in one read-only snapshot (`conn` in autocommit mode: the
    transaction is this function's; through a transaction pooler it is one server
    transaction, so it holds no session state)."""
    # In BEGIN itself (psycopg writes the connection's isolation level and read-only flag
    # into it): behind a pooler the connection's first statement in a transaction is its
    # settings' set_config, after which SET TRANSACTION would be refused.
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    with conn.transaction():
        # The all-time sums group days × pairs × ideas of rollups: with the default 4 MB the
        # planner sorts them on disk (1.6 s at ~1,000 type × model pairs and 30 days, 0.5 s
        # hashed). Local to this read-only transaction, so a pooler's server keeps nothing.
        conn.execute(f"SET LOCAL work_mem = '{SCRAPE_WORK_MEM}'")
        first, now, sketched_until = one(conn.execute(SPAN_SQL).fetchone())
        counts = [(s, t, m, int(n)) for s, t, m, n in conn.execute(COUNTS_SQL).fetchall()]
        sketches = _sketches(conn, first, now, sketched_until)
        costs = [CostSum(*row) for row in conn.execute(COSTS_SQL).fetchall()]
        kinds = {"credits": list(REVENUE_CREDIT_KINDS), "kinds": list(REVENUE_KINDS)}
        revenue = [(c, Decimal(a), Decimal(d)) for c, a, d in conn.execute(REVENUE_SQL, kinds).fetchall()]
        gates = gate_queries.latest_sync(conn)
        targets = [TargetRow(*row) for row in conn.execute(TARGETS_SQL).fetchall()]
        aborted = {target for target, _reason in conn.execute(ABORTED_CANARIES_SQL).fetchall()}
        drift = [(t, m, int(n)) for t, m, n in conn.execute(DRIFT_SQL).fetchall()]
        blocking = _blocking(conn)
    return Snapshot(now, counts, sketches, costs, revenue, gates, targets, aborted, drift, blocking)
