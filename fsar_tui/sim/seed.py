"""`fsar-tui seed`: months of plausible history, fast, through COPY.

Tasks are spread over the window with a daily shape (busier 08–20 UTC) and a weekly
one (weekends at half load); each follows the same profiles as the live simulator:
queue wait, run time per (type, model), failures and retries with their errors,
tokens priced at the model price in force when the attempt started, Stripe-shaped
ledger rows for ideas that earn, rollout revisions that changed during the window
(one pins self_improvement's model, then is rolled back), and a few FSAR proposals.
Tasks that would still be in flight at the end of the window are left queued or
running. task_events hold every transition, exactly as the trigger would write them.

Everything lands in one transaction (db/bulk.py): a failed seed leaves nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import queue
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsar_tui.db import bulk
from fsar_tui.db import profiles as profile_queries
from fsar_tui.db.connect import connect
from fsar_tui.domain.money import run_cost, to_micro, token_cost
from fsar_tui.errors import UsageError
from fsar_tui.sim import profiles

CHUNK = 20_000
_IDEA_PAYLOADS = {idea: json.dumps({"idea_id": idea, "prompt": "seeded task"}) for idea in profiles.IDEAS}
_TARGET_PAYLOADS = {True: json.dumps({"target": "scheduler"}), False: json.dumps({"target": "retry-policy"})}
SEED_REPORT = Path(__file__).with_name("seed_report.txt")


@dataclass
class SeedResult:
    tasks: int = 0
    events: int = 0
    ledger: int = 0
    proposals: int = 0


def _sha(obj) -> str:
    from fsar_tui.domain.rollouts import artifact_sha256

    return artifact_sha256(obj)


def hour_weights(start: datetime, hours: int) -> list[float]:
    """Relative load per hour: a daily wave peaking mid-afternoon UTC, weekends halved."""
    weights = []
    for h in range(hours):
        t = start + timedelta(hours=h)
        daily = 0.35 + 0.65 * max(0.0, math.sin(math.pi * (t.hour - 6) / 16)) if 6 <= t.hour <= 22 else 0.3
        weekly = 0.5 if t.weekday() >= 5 else 1.0
        weights.append(daily * weekly)
    return weights


def created_times(rng: random.Random, end: datetime, days: int, n: int) -> list[float]:
    """n creation times (epoch seconds, sorted) over the `days` before `end`."""
    hours = days * 24
    start = end - timedelta(hours=hours)
    weights = hour_weights(start, hours)
    cum, total = [], 0.0
    for w in weights:
        total += w
        cum.append(total)
    base = start.timestamp()
    picks = rng.choices(range(hours), cum_weights=cum, k=n)
    return sorted(base + h * 3600 + rng.random() * 3600 for h in picks)


def price_table(end: datetime) -> dict[str, list[tuple[float, Decimal, Decimal, int, int]]]:
    """Per model: (effective epoch, input, output price, and both as integer micro-units)."""
    return {
        model: sorted(
            ((end - timedelta(days=d)).timestamp(), pin, pout, to_micro(pin), to_micro(pout)) for d, pin, pout in hist
        )
        for model, hist in profiles.PRICE_HISTORY.items()
    }


def compute_rate_table(end: datetime) -> list[tuple[float, Decimal, float]]:
    """(effective epoch, minor units per hour, the same as a float for seeding), oldest first."""
    return sorted(
        ((end - timedelta(days=d)).timestamp(), rate, float(rate)) for d, rate in profiles.COMPUTE_RATE_HISTORY
    )


def _in_force(table: list[tuple], at: float):
    i = bisect.bisect_right([row[0] for row in table], at) - 1
    return table[i] if i >= 0 else None


def setup_rollouts(conn, end: datetime, days: int) -> dict[str | None, list[tuple[float, int, str | None]]]:
    """Rollouts with several revisions; returns per task_type [(from_epoch, revision_id, pinned_model)]."""
    span = timedelta(days=days)
    # (target, kind, task type, [(artifact, created_at, reason)])
    plans: list[tuple[str, str, str | None, list[tuple[dict[str, Any], datetime, str]]]] = [
        (
            "model/self_improvement",
            "model",
            "self_improvement",
            [
                ({"ai_model": "gpt-4o", "temperature": 0.2}, end - span - timedelta(days=1), "initial"),
                (
                    {"ai_model": "claude-3-5-sonnet", "temperature": 0.2},
                    end - span * 0.4,
                    "try claude for self-improvement",
                ),
                ({"ai_model": "gpt-4o", "temperature": 0.2}, end - span * 0.1, "rollback: p90 run time regressed"),
            ],
        ),
        (
            "prompt/implement_idea",
            "prompt",
            "implement_idea",
            [
                (
                    {"prompt_version": "v7", "system": "You implement product ideas as small PRs."},
                    end - span - timedelta(days=1),
                    "initial",
                ),
                (
                    {"prompt_version": "v8", "system": "You implement product ideas as small, tested PRs."},
                    end - span * 0.5,
                    "ask for tests",
                ),
            ],
        ),
        (
            "policy/fleet",
            "policy",
            None,
            [
                ({"max_attempts": 3, "lease_s": 30}, end - span - timedelta(days=1), "initial"),
                ({"max_attempts": 3, "lease_s": 60}, end - span * 0.7, "longer leases for slow models"),
            ],
        ),
    ]
    out: dict[str | None, list[tuple[float, int, str | None]]] = {}
    for target, kind, task_type, revisions in plans:
        ids = bulk.insert_rollout(
            conn, target, kind, task_type, [(art, _sha(art), at, reason) for art, at, reason in revisions]
        )
        out[task_type] = [
            (at.timestamp(), rid, art.get("ai_model")) for (art, at, _), rid in zip(revisions, ids, strict=True)
        ]
    return out


def setup_proposals(conn, end: datetime, days: int) -> list[str]:
    from fsar_tui.domain.fsar_report import parse_report

    seed = parse_report(SEED_REPORT.read_bytes(), str(SEED_REPORT))  # the one real report, as ingest-fsar reads it
    rows: list[dict[str, Any]] = [
        {
            "id": seed.id,
            "severity": seed.severity,
            "block_execution": seed.block_execution,
            "task_type": seed.task_type,
            "body": seed.body,
            "status": "accepted",
            "age_days": days * 0.8,
            "risks": list(seed.risks),
            "mitigations": list(seed.mitigations),
            "lifted": False,
            "sha256": seed.sha256,
        },
        {
            "id": "fsar_seed-0002",
            "severity": 8,
            "block_execution": True,
            "task_type": "idea_implementation",
            "body": "idea_implementation: failures spike after prompt v8; pause until reviewed.",
            "status": "implemented",
            "age_days": days * 0.45,
            "risks": ["Silent defects reach customers"],
            "mitigations": ["Block idea_implementation until the prompt is fixed"],
            "lifted": True,
        },
        {
            "id": "fsar_seed-0003",
            "severity": 3,
            "block_execution": False,
            "task_type": "implement_idea",
            "body": "implement_idea: cache repository checkouts between attempts to cut run time.",
            "status": "new",
            "age_days": 1.5,
            "risks": ["Stale checkouts"],
            "mitigations": ["Verify the cache by commit hash"],
            "lifted": False,
        },
    ]
    for row in rows:
        reported = end - timedelta(days=row["age_days"])
        sha = (
            row.pop("sha256", None) or hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
        )
        bulk.insert_proposal(
            conn,
            {
                **row,
                "reported_at": reported,
                "source_sha256": sha,
                "block_lifted_at": reported + timedelta(hours=6) if row["lifted"] else None,
            },
        )
    return [r["id"] for r in rows]


def prefetch(items: Iterator, depth: int) -> Iterator:
    """Run a generator in a thread, `depth` items ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for item in items:
                q.put(item)
            q.put(done)
        except BaseException as exc:  # hand the failure to the consumer
            q.put(exc)

    threading.Thread(target=produce, daemon=True, name="seed-generator").start()
    while True:
        item = q.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def _flat_json(obj: dict) -> str:
    """json.dumps for the flat str/int dicts the profiles produce, without the encoder's overhead."""
    return "{" + ", ".join(f'"{k}": "{v}"' if isinstance(v, str) else f'"{k}": {v}' for k, v in obj.items()) + "}"


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _seconds(delta: timedelta) -> Decimal:
    """A run time exactly as PostgreSQL's extract(epoch FROM interval) gives it (µs)."""
    return Decimal(delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds).scaleb(-6)


MAX_SEED_DAYS = 3_650
MAX_SEED_TASKS = 100_000_000  # ten times the largest bench database; beyond is a typo, not a plan


def validate_seed_args(days: int, tasks: int) -> None:
    if not 1 <= days <= MAX_SEED_DAYS:
        raise UsageError(f"--days must be between 1 and {MAX_SEED_DAYS:,}, got {days:,}")
    if not 0 <= tasks <= MAX_SEED_TASKS:
        raise UsageError(f"--tasks must be between 0 and {MAX_SEED_TASKS:,}, got {tasks:,}")


def seed_history(dsn: str, *, days: int, tasks: int, seed: int = 0) -> SeedResult:
    validate_seed_args(days, tasks)
    rng = random.Random(f"seed:{seed}")
    end = datetime.now(UTC).replace(microsecond=0)
    end_epoch = end.timestamp()
    result = SeedResult()
    prices = price_table(end)
    rates = compute_rate_table(end)
    with connect(dsn) as conn, bulk.bulk_transaction(conn):
        bulk.insert_prices(
            conn,
            [
                (model, profiles.CURRENCY, pin, pout, _ts(at))
                for model, rows in prices.items()
                for at, pin, pout, _, _ in rows
            ],
        )
        bulk.insert_compute_rates(conn, [(profiles.CURRENCY, rate, _ts(at)) for at, rate, _ in rates])
        rollouts = setup_rollouts(conn, end, days)
        proposal_ids = setup_proposals(conn, end, days)
        result.proposals = len(proposal_ids)
        first_id = bulk.reserve_task_ids(conn, tasks) if tasks else 0
        ledger_before = bulk.ledger_high_water(conn)
        times = created_times(rng, end, days, tasks)
        rollout_starts = {k: [r[0] for r in v] for k, v in rollouts.items()}

        def generate():
            for chunk_start in range(0, tasks, CHUNK):
                task_rows: list[tuple[Any, ...]] = []
                event_rows: list[tuple[Any, ...]] = []
                ledger_rows: list[tuple[Any, ...]] = []
                for offset in range(chunk_start, min(tasks, chunk_start + CHUNK)):
                    _one_task(
                        rng,
                        seed,
                        first_id + offset,
                        times[offset],
                        end_epoch,
                        rollouts,
                        rollout_starts,
                        prices,
                        rates,
                        proposal_ids,
                        task_rows,
                        event_rows,
                        ledger_rows,
                    )
                yield task_rows, event_rows, ledger_rows

        # Generation (Python, one core) overlaps with COPY ingestion (the server, the other core).
        for task_rows, event_rows, ledger_rows in prefetch(generate(), depth=2):
            result.tasks += bulk.copy_rows(conn, "execution_tasks", bulk.TASK_COLUMNS, task_rows)
            result.events += bulk.copy_rows(conn, "task_events", bulk.EVENT_COLUMNS, event_rows)
            result.ledger += bulk.copy_rows(conn, "ledger_entries", bulk.LEDGER_COLUMNS, ledger_rows)
        if tasks:
            bulk.add_count_deltas(conn, first_id, first_id + tasks - 1)
            profile_queries.count_loaded(conn, first_id, first_id + tasks - 1)
        bulk.add_ledger_daily(conn, ledger_before)
        bulk.analyze(conn)
    with connect(dsn) as conn:
        conn.autocommit = True
        profile_queries.vacuum_rollups(conn)
    return result


def _one_task(
    rng,
    seed,
    task_id,
    created,
    end_epoch,
    rollouts,
    rollout_starts,
    prices,
    rates,
    proposal_ids,
    task_rows,
    event_rows,
    ledger_rows,
) -> None:
    task_type = profiles.weighted(rng, profiles.TYPE_WEIGHTS)
    profile = profiles.TYPES[task_type]
    model = profiles.weighted(rng, profile.models)
    key = task_type if task_type in rollouts else None
    i = bisect.bisect_right(rollout_starts[key], created) - 1
    _, revision_id, pinned = rollouts[key][max(i, 0)]
    model = pinned or model
    idea = rng.choice(profiles.IDEAS) if profile.earns_revenue else None
    # Payloads come from a small fixed set: pre-encoded JSON keeps seeding fast.
    payload = _IDEA_PAYLOADS[idea] if idea else _TARGET_PAYLOADS[rng.random() < 0.5]
    proposal = proposal_ids[0] if task_type == "self_improvement" and rng.random() < 0.05 else None
    worker = f"seed-w{rng.randint(1, 16)}"
    created_ts = _ts(created)
    event_rows.append((task_id, None, "queued", 0, None, created_ts, None, None, None, None, None))
    status, attempt, t = "queued", 0, created
    queued_at = created_ts
    started = finished = None
    result = error = None
    in_tok = out_tok = cost = compute = None
    currency: str | None = None
    waste = Decimal(0)
    unpriced = 0
    max_attempts = 3
    while attempt < max_attempts:
        wait = rng.lognormvariate(0.7, 1.2)
        if t + wait > end_epoch:
            break  # still waiting in the queue at the end of the window
        attempt += 1
        t += wait
        started = _ts(t)
        event_rows.append((task_id, "queued", "running", attempt, worker, started, None, None, None, None, None))
        outcome = profiles.draw_attempt_with(rng, task_type, model)
        if t + outcome.duration_s > end_epoch:
            status = "running"
            in_tok = out_tok = None  # the running attempt's tokens are not written yet
            break
        # As the database prices an attempt (revision 0024, fsar_price_attempt): tokens at
        # the price in force at its start, exact; run time at the compute rate then.
        price = _in_force(prices.get(model, []), t)
        in_tok, out_tok = outcome.input_tokens, outcome.output_tokens
        attempt_cost = token_cost(in_tok, out_tok, price[3], price[4]) if price else None
        if attempt_cost is None:
            unpriced += 1
        else:
            cost = (cost or 0) + attempt_cost
            currency = currency or profiles.CURRENCY
        rate = _in_force(rates, t) if currency else None
        end = _ts(t + outcome.duration_s)
        run = run_cost(_seconds(end - started), rate[1]) if rate is not None else Decimal(0)
        if rate is not None:
            compute = (compute or 0) + run
        if not outcome.succeeded:
            waste += (attempt_cost or 0) + run
        t += outcome.duration_s
        done = end
        if outcome.succeeded:
            status, result, finished = "succeeded", outcome.result, done
            event_rows.append(
                (task_id, "running", "succeeded", attempt, worker, done, None, in_tok, out_tok, attempt_cost, run)
            )
            for d in profiles.draw_ledger_with(rng, seed, task_id, attempt, idea):
                if d.kind in ("revenue", "payment_fee"):
                    occurred = done
                else:  # refunds and disputes come hours to days later — or not yet
                    later = t + rng.uniform(3600, 7 * 86400)
                    if later > end_epoch:
                        continue
                    occurred = _ts(later)
                ledger_rows.append(
                    (
                        "stripe",
                        d.external_id,
                        d.kind,
                        d.amount_minor,
                        d.currency,
                        occurred,
                        idea,
                        task_id,
                        d.customer_id,
                        json.dumps(d.metadata),
                    )
                )
            break
        error = outcome.error
        if attempt >= max_attempts:
            status, finished = "failed", done
            event_rows.append(
                (task_id, "running", "failed", attempt, worker, done, error, in_tok, out_tok, attempt_cost, run)
            )
            break
        status = "queued"
        event_rows.append(
            (task_id, "running", "queued", attempt, worker, done, error, in_tok, out_tok, attempt_cost, run)
        )
        t += rng.uniform(1, 30)  # retry backoff
        queued_at = _ts(t)
    lease = _ts(end_epoch + 300) if status == "running" else None
    task_rows.append(
        (
            task_id,
            task_type,
            model,
            status,
            0,
            attempt,
            max_attempts,
            idea,
            proposal,
            revision_id,
            worker if attempt else None,
            lease,
            payload,
            _flat_json(result) if result is not None else None,
            error,
            created_ts,
            queued_at,
            started if attempt else None,
            finished,
            in_tok,
            out_tok,
            cost,
            currency,
            compute,
            waste or None,
            unpriced,
        )
    )
