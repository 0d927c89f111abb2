"""The executing side's SQL: enqueue, claim, lease, finish, retry, reap, ledger.

This is the integration contract of DESIGN.md §4 written down once; the simulator
uses it and a real fleet can copy it.

- Claim: one statement. `FOR UPDATE SKIP LOCKED` over the partial index of queued
  tasks (priority, id), skipping the types (and models) in `execution_blocks` and tasks whose retry
  backoff (`queued_at` in the future) has not elapsed; it sets the lease, bumps the
  attempt and stamps the rollout revision for the task's type (its artifact may pin
  ai_model): the active (stable) one, or — while a canary runs on the type's target —
  the canary revision for the canary's share of the tasks, chosen by a hash of (canary,
  task id) against the weight (domain/canary_judge.canary_bucket is the same function),
  so a task and its retries stay on one side; a hard gate scoped to the canary sends its
  share to stable. Because blocks, rollouts and canaries are read inside the claim, a
  block, rollback, promotion or abort takes effect for every claim after its commit.
- Every later write is fenced on (id, worker_id, attempt, status='running'): a
  worker that lost its lease (paused, partitioned) cannot overwrite the attempt that
  replaced it — it learns it lost and drops its result.
- Reaper: running tasks whose lease expired go back to queued (a task_event shows
  it), or fail when that was their last attempt.
- Money (the simulator plays Stripe too): ledger rows and payment_intent.* events
  (stripe_events; its trigger counts the payment funnel) land with the outcome that
  caused them, or later, when due (`record_money`), stamped with the database's now().
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.types.json import Jsonb

from fsar_tui.db.rows import one

# The blocks are read once per claim into four parameters (InitPlans) and tested per row:
# as a NOT EXISTS over the execution_blocks view the planner, misjudging the anti-join
# (it expects one surviving row), sorted the whole queued set on every claim — 5 ms at a
# 9,000-task backlog, 16-24 ms in the soak, growing with the backlog it caused. Per-row
# filters keep the plan a Merge Append over the partitions' queued indexes that stops at
# the first claimable row: flat in the backlog (issue 18). A block on a type that holds
# most of the queue still makes the scan walk past its rows, as any plan must.
CLAIM_SQL = """
WITH blocked AS MATERIALIZED (
    SELECT coalesce(bool_or(b.task_type IS NULL AND b.ai_model IS NULL AND b.revision_id IS NULL), false)
               AS everything,
           coalesce(array_agg(b.task_type) FILTER (WHERE b.revision_id IS NULL AND b.task_type IS NOT NULL
                                                         AND b.ai_model IS NULL), '{}') AS types,
           coalesce(array_agg(b.ai_model) FILTER (WHERE b.revision_id IS NULL AND b.task_type IS NULL
                                                        AND b.ai_model IS NOT NULL), '{}') AS models,
           coalesce(array_agg(ROW(b.task_type, b.ai_model)::text)
                        FILTER (WHERE b.revision_id IS NULL AND b.task_type IS NOT NULL
                                      AND b.ai_model IS NOT NULL), '{}') AS pairs,
           coalesce(array_agg(b.revision_id) FILTER (WHERE b.revision_id IS NOT NULL), '{}') AS canaries
    FROM execution_blocks b
 ), routes AS MATERIALIZED (
    SELECT a.rollout_id, a.task_type, a.revision_id, a.artifact, a.artifact ->> 'ai_model' AS model,
           a.canary_id, a.canary_revision_id, a.canary_artifact, a.canary_artifact ->> 'ai_model' AS canary_model,
           a.canary_weight
    FROM rollout_routes a
), next AS (
    SELECT t.id
    FROM execution_tasks t
    -- The model the task would run on: the stable revision's pin (its artifact's ai_model)
    -- or its own. The blocks are tested against that, so an artifact pinning a blocked
    -- model cannot run the type's tasks on it.
    CROSS JOIN LATERAL (
        SELECT coalesce((SELECT r.model FROM routes r WHERE r.task_type = t.task_type OR r.task_type IS NULL
                         ORDER BY (r.task_type IS NULL), r.rollout_id LIMIT 1), t.ai_model) AS ai_model
    ) m
    WHERE t.status = 'queued'
      AND t.queued_at <= now()
      AND t.attempt < t.max_attempts
      AND NOT (SELECT everything FROM blocked)
      AND t.task_type <> ALL ((SELECT types FROM blocked)::text[])
      AND (m.ai_model IS NULL OR m.ai_model <> ALL ((SELECT models FROM blocked)::text[]))
      AND ROW(t.task_type, m.ai_model)::text <> ALL ((SELECT pairs FROM blocked)::text[])
    ORDER BY t.priority DESC, t.id
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
), route AS (
    SELECT n.id AS task_id, t.task_type, a.revision_id, a.artifact, a.canary_id, a.canary_revision_id,
           a.canary_artifact, a.canary_model, a.canary_weight
    FROM next n
    JOIN execution_tasks t ON t.id = n.id
    JOIN LATERAL (
        SELECT * FROM routes a
        WHERE a.task_type = t.task_type OR a.task_type IS NULL
        ORDER BY (a.task_type IS NULL), a.rollout_id
        LIMIT 1
    ) a ON true
), rollout AS (
    -- The canary's share (CANARY_BUCKET: the same task, the same side, whichever worker
    -- claims it and however often it is retried), unless a gate blocks the canary or the
    -- canary's artifact pins a blocked model: that share runs on stable meanwhile.
    SELECT r.task_id, CASE WHEN c.on_canary THEN r.canary_revision_id ELSE r.revision_id END AS revision_id,
           CASE WHEN c.on_canary THEN r.canary_artifact ELSE r.artifact END AS artifact
    FROM route r
    CROSS JOIN LATERAL (
        SELECT r.canary_id IS NOT NULL
               AND r.canary_revision_id <> ALL ((SELECT canaries FROM blocked)::bigint[])
               AND (r.canary_model IS NULL
                    OR (r.canary_model <> ALL ((SELECT models FROM blocked)::text[])
                        AND ROW(r.task_type, r.canary_model)::text <> ALL ((SELECT pairs FROM blocked)::text[])))
               AND ('x' || substr(md5(r.canary_id::text || ':' || r.task_id::text), 1, 8))::bit(32)::bigint
                   < r.canary_weight::bigint * 42949672.96 AS on_canary
    ) c
)
UPDATE execution_tasks t
SET status = 'running',
    attempt = t.attempt + 1,
    worker_id = %(worker)s,
    started_at = now(),
    finished_at = NULL,
    lease_expires_at = now() + make_interval(secs => %(lease_s)s),
    rollout_revision_id = r.revision_id,
    ai_model = coalesce(r.artifact ->> 'ai_model', t.ai_model)
FROM next n
LEFT JOIN rollout r ON r.task_id = n.id
WHERE t.id = n.id
RETURNING t.id, t.task_type, t.ai_model, t.attempt, t.max_attempts, t.idea_id, t.rollout_revision_id,
          t.started_at, t.queued_at,
          (SELECT json_build_object('in', p.input_minor_per_mtok::text, 'out', p.output_minor_per_mtok::text,
                                    'currency', p.currency)
           FROM model_prices p
           WHERE p.ai_model = t.ai_model AND p.effective_from <= t.started_at
           ORDER BY p.effective_from DESC LIMIT 1),
          r.artifact -> 'simulate'
"""

FINISH_SQL = """
UPDATE execution_tasks
SET status = %(status)s::text,
    finished_at = CASE WHEN %(status)s::text = 'queued' THEN NULL ELSE now() END,
    queued_at = CASE WHEN %(status)s::text = 'queued' THEN now() + make_interval(secs => %(retry_in_s)s)
                     ELSE queued_at END,
    lease_expires_at = NULL,
    result = %(result)s,
    error = %(error)s,
    input_tokens = %(input_tokens)s,
    output_tokens = %(output_tokens)s
    -- No cost here: the database prices the attempt as it ends (trigger fsar_price_attempt,
    -- revision 0024): its tokens at the model price in force when it started, its run time
    -- at the compute rate then, exact, added to cost_minor / compute_cost_minor (and to
    -- waste_minor when the attempt did not succeed).
WHERE id = %(id)s AND worker_id = %(worker)s AND attempt = %(attempt)s AND status = 'running'
RETURNING finished_at, now(), cost_minor
"""

RENEW_SQL = """
UPDATE execution_tasks SET lease_expires_at = now() + make_interval(secs => %(lease_s)s)
WHERE id = %(id)s AND worker_id = %(worker)s AND attempt = %(attempt)s AND status = 'running'
"""

REAP_SQL = """
UPDATE execution_tasks t
SET status = CASE WHEN t.attempt >= t.max_attempts THEN 'failed' ELSE 'queued' END,
    finished_at = CASE WHEN t.attempt >= t.max_attempts THEN now() END,
    queued_at = CASE WHEN t.attempt >= t.max_attempts THEN t.queued_at ELSE now() END,
    lease_expires_at = NULL,
    error = format('lease expired at %s: worker %s stopped renewing (attempt %s)',
                   t.lease_expires_at, t.worker_id, t.attempt)
FROM (
    SELECT id FROM execution_tasks
    WHERE status = 'running' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT 500
    FOR UPDATE SKIP LOCKED
) expired
WHERE t.id = expired.id
RETURNING t.id, t.task_type, t.ai_model, t.status, t.attempt
"""

LEDGER_SQL = """
INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id, task_id,
                            customer_id, metadata)
VALUES ('stripe', %(external_id)s, %(kind)s, %(amount_minor)s, %(currency)s, %(occurred_at)s, %(idea_id)s,
        %(task_id)s, %(customer_id)s, %(metadata)s)
ON CONFLICT (source, external_id) DO NOTHING
"""

# As the Stripe ingestion stores an event (db/stripe.py); `created` is when it is written.
STRIPE_EVENT_SQL = """
INSERT INTO stripe_events (id, type, created, object_id, livemode, outcome, payload)
SELECT %(id)s, %(type)s, n.at, %(object_id)s, false, 'applied',
       jsonb_set(%(payload)s, '{created}', to_jsonb(extract(epoch FROM n.at)::bigint))
FROM (SELECT date_trunc('second', now()) AS at) n
ON CONFLICT (id) DO NOTHING
"""

ENQUEUE_SQL = """
INSERT INTO execution_tasks (task_type, ai_model, idea_id, payload, priority, max_attempts)
VALUES (%(task_type)s, %(ai_model)s, %(idea_id)s, %(payload)s, %(priority)s, %(max_attempts)s)
RETURNING id, queued_at
"""


@dataclass(frozen=True)
class ClaimedTask:
    id: int
    task_type: str
    ai_model: str | None
    attempt: int
    max_attempts: int
    idea_id: str | None
    rollout_revision_id: int | None
    started_at: datetime
    queued_at: datetime
    price_in: Decimal | None
    price_out: Decimal | None
    currency: str | None
    # The revision's artifact's `simulate` section (the reference executor's multipliers:
    # sim/worker.py), None when it has none or the type has no rollout target.
    simulate: dict[str, Any] | None = None


async def enqueue(conn: AsyncConnection, tasks: list[dict[str, Any]]) -> list[tuple[int, datetime]]:
    """Insert queued tasks; returns (id, queued_at) per task, in order."""
    out: list[tuple[int, datetime]] = []
    async with conn.transaction():
        async with conn.cursor() as cur:
            for task in tasks:
                await cur.execute(ENQUEUE_SQL, {**task, "payload": Jsonb(task.get("payload"))})
                task_id, queued_at = one(await cur.fetchone())
                out.append((task_id, queued_at))
    return out


async def claim(conn: AsyncConnection, worker: str, lease_s: float) -> ClaimedTask | None:
    async with conn.transaction():
        cur = await conn.execute(CLAIM_SQL, {"worker": worker, "lease_s": lease_s})
        row = await cur.fetchone()
    if row is None:
        return None
    task_id, task_type, ai_model, attempt, max_attempts, idea_id, revision_id, started_at, queued_at, price, sim = row
    price = price or {}
    return ClaimedTask(
        task_id,
        task_type,
        ai_model,
        attempt,
        max_attempts,
        idea_id,
        revision_id,
        started_at,
        queued_at,
        price_in=Decimal(price["in"]) if price else None,
        price_out=Decimal(price["out"]) if price else None,
        currency=price.get("currency"),
        simulate=sim if isinstance(sim, dict) else None,
    )


async def renew_lease(conn: AsyncConnection, task: ClaimedTask, worker: str, lease_s: float) -> bool:
    async with conn.transaction():
        cur = await conn.execute(
            RENEW_SQL, {"id": task.id, "worker": worker, "attempt": task.attempt, "lease_s": lease_s}
        )
    return cur.rowcount == 1


async def finish(
    conn: AsyncConnection,
    task: ClaimedTask,
    worker: str,
    *,
    status: str,
    result: dict[str, Any] | None,
    error: str | None,
    input_tokens: int,
    output_tokens: int,
    retry_in_s: float = 0.0,
    ledger: Sequence[dict[str, Any]] = (),
    events: Sequence[dict[str, Any]] = (),
) -> datetime | None:
    """Record the attempt's outcome (status succeeded, failed, or queued for a retry).

    Returns the commit-time `now()` when it landed, None when the lease was lost. Ledger
    rows and Stripe events (both idempotent) land in the same transaction as the outcome.
    """
    async with conn.transaction():
        cur = await conn.execute(
            FINISH_SQL,
            {
                "status": status,
                "retry_in_s": retry_in_s,
                "result": Jsonb(result) if result is not None else None,
                "error": error,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "id": task.id,
                "worker": worker,
                "attempt": task.attempt,
            },
        )
        row = await cur.fetchone()
        if row is None:
            return None
        at: datetime = row[1]
        await _write_money(conn, at, ledger, events)
    return at


async def record_money(
    conn: AsyncConnection, ledger: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]
) -> datetime:
    """Ledger rows and Stripe events that fall due now, in one transaction, at its now()."""
    async with conn.transaction():
        at: datetime = one(await (await conn.execute("SELECT now()")).fetchone())[0]
        await _write_money(conn, at, ledger, events)
    return at


async def _write_money(
    conn: AsyncConnection, at: datetime, ledger: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]
) -> None:
    async with conn.cursor() as cur:
        for entry in ledger:
            await cur.execute(LEDGER_SQL, {**entry, "occurred_at": at, "metadata": Jsonb(entry["metadata"])})
        for event in events:
            await cur.execute(STRIPE_EVENT_SQL, {**event, "payload": Jsonb(event["payload"])})


def may_write_stripe_events_sync(conn: Connection) -> bool:
    """Whether this role may store Stripe events (the simulator's payment funnel)."""
    allowed: bool = one(conn.execute("SELECT has_table_privilege('stripe_events', 'INSERT')").fetchone())[0]
    return allowed


async def reap_expired(conn: AsyncConnection) -> list[tuple[int, str, str | None, str, int]]:
    """Requeue (or fail, on the last attempt) tasks whose worker stopped renewing its lease."""
    async with conn.transaction():
        cur = await conn.execute(REAP_SQL)
        return await cur.fetchall()


async def active_work_count(conn: AsyncConnection) -> int:
    """Tasks still queued or running (the simulator's --until-idle uses it)."""
    cur = await conn.execute("SELECT count(*) FROM execution_tasks WHERE status IN ('queued', 'running')")
    count: int = one(await cur.fetchone())[0]
    return count


async def blocked_types(conn: AsyncConnection) -> list[tuple[str | None, str]]:
    cur = await conn.execute("SELECT task_type, reason FROM execution_blocks ORDER BY task_type NULLS FIRST")
    return await cur.fetchall()


def fleet_privileges_sync(conn: Connection, *, enqueue: bool) -> list[str]:
    """[] when the role may run the fleet; else [role, what it may not do, …]."""
    role, update, insert = one(
        conn.execute(
            "SELECT current_user, has_any_column_privilege('execution_tasks', 'UPDATE'), "
            "has_table_privilege('execution_tasks', 'INSERT')"
        ).fetchone()
    )
    missing = ([] if update else ["claim or finish tasks (UPDATE execution_tasks)"]) + (
        ["enqueue tasks (INSERT INTO execution_tasks)"] if enqueue and not insert else []
    )
    return [role, *missing] if missing else []
