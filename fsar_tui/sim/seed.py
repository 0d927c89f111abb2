"""`fsar-tui seed`: months of plausible history, fast, through COPY.

Tasks are spread over the window with a daily shape (busier 08–20 UTC) and a weekly
one (weekends at half load); each follows the same profiles as the live simulator:
queue wait, run time per (type, model), failures and retries with their errors,
tokens priced at the model price in force when the attempt started, the money ideas
earn (sim/payments.py: payment intent events, charges and fees, refunds hours to days
and disputes days to weeks after their charge — what would happen after the window
is left out), rollout revisions that changed during the window and a few FSAR
proposals (sim/seed_setup.py).
Tasks that would still be in flight at the end of the window are left queued or
running. task_events hold every transition, exactly as the trigger would write them.

Everything lands in one transaction (db/bulk.py): a failed seed leaves nothing.
"""

from __future__ import annotations

import bisect
import json
import math
import queue
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fsar_tui.db import bulk, bulk_rollups, partitions
from fsar_tui.db import profiles as profile_queries
from fsar_tui.db.connect import connect
from fsar_tui.domain.money import run_cost, to_micro, token_cost
from fsar_tui.errors import UsageError
from fsar_tui.sim import payments, profiles
from fsar_tui.sim.seed_setup import SEED_REPORT as SEED_REPORT  # where it always was, for its readers
from fsar_tui.sim.seed_setup import setup_proposals, setup_rollouts

CHUNK = 20_000
_IDEA_PAYLOADS = {idea: json.dumps({"idea_id": idea, "prompt": "seeded task"}) for idea in profiles.IDEAS}
_TARGET_PAYLOADS = {True: json.dumps({"target": "scheduler"}), False: json.dumps({"target": "retry-policy"})}


@dataclass
class SeedResult:
    tasks: int = 0
    events: int = 0
    ledger: int = 0
    payment_events: int = 0
    proposals: int = 0


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
        if tasks:  # every seeded task and event in a partition of its own range, none in DEFAULT
            partitions.ensure_range(
                conn,
                first_id=first_id,
                last_id=first_id + tasks - 1,
                first_day=(end - timedelta(days=days)).date(),
                last_day=end.date(),
            )
        ledger_before = bulk.ledger_high_water(conn)
        times = created_times(rng, end, days, tasks)
        rollout_starts = {k: [r[0] for r in v] for k, v in rollouts.items()}

        def generate():
            for chunk_start in range(0, tasks, CHUNK):
                task_rows: list[tuple[Any, ...]] = []
                event_rows: list[tuple[Any, ...]] = []
                ledger_rows: list[tuple[Any, ...]] = []
                intent_rows: list[tuple[Any, ...]] = []
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
                        intent_rows,
                    )
                yield task_rows, event_rows, ledger_rows, intent_rows

        # Generation (Python, one core) overlaps with COPY ingestion (the server, the other core).
        # The tasks', ledger entries' and Stripe events' row triggers are off meanwhile (the
        # first two would only return under the bulk flag; the funnel's counted each event
        # with an upsert): what they do is done in bulk below.
        with (
            bulk.row_triggers_off(conn, "execution_tasks"),
            bulk.row_triggers_off(conn, "ledger_entries"),
            bulk.row_triggers_off(conn, "stripe_events"),
        ):
            for task_rows, event_rows, ledger_rows, intent_rows in prefetch(generate(), depth=2):
                result.tasks += bulk.copy_rows(conn, "execution_tasks", bulk.TASK_COLUMNS, task_rows, bulk.TASK_TYPES)
                result.events += bulk.copy_rows(conn, "task_events", bulk.EVENT_COLUMNS, event_rows, bulk.EVENT_TYPES)
                result.ledger += bulk.copy_rows(
                    conn, "ledger_entries", bulk.LEDGER_COLUMNS, ledger_rows, bulk.LEDGER_TYPES
                )
                result.payment_events += bulk.copy_rows(
                    conn, "stripe_events", bulk.STRIPE_EVENT_COLUMNS, intent_rows, bulk.STRIPE_EVENT_TYPES
                )
        if tasks:
            bulk.add_count_deltas(conn, first_id, first_id + tasks - 1)
            bulk_rollups.add_loaded_rollups(conn, first_id, first_id + tasks - 1)
        bulk.add_payment_funnel(conn)
        bulk.add_ledger_daily(conn, ledger_before)
        bulk.add_fraud_velocity(conn, ledger_before)
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
    intent_rows,
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
            if idea is not None:
                money = payments.draw_payment_with(rng, seed, task_id, attempt, idea)
                _money_rows(money, t, end_epoch, idea, task_id, ledger_rows, intent_rows)
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


def _money_rows(money: payments.Payment, at: float, end_epoch: float, idea, task_id, ledger_rows, intent_rows) -> None:
    """A successful task's money as rows, each at its moment; what would come after the
    window has not happened yet."""
    for i in money.intents:
        created = math.floor(at + i.delay_s)
        if created <= end_epoch:
            when = _ts(created)
            event = json.dumps(i.event(created), separators=(",", ":"))
            intent_rows.append((i.event_id, i.type, when, i.intent["id"], False, "applied", when, event))
    for d in money.ledger:
        if at + d.delay_s <= end_epoch:
            row = (d.external_id, d.kind, d.amount_minor, d.currency, _ts(at + d.delay_s), idea, task_id, d.customer_id)
            ledger_rows.append(("stripe", *row, json.dumps(d.metadata)))
