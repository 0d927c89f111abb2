"""SQL for Stripe ingestion: stripe_events rows, charge look-ups and ledger inserts.

The caller (fsar_tui/stripe_ingest.py) runs all of these for one event inside one
transaction, so an event and its ledger rows are stored together or not at all.
- `insert_event` is the idempotency gate: the stripe_events primary key (event id)
  makes a second copy insert nothing (ON CONFLICT DO NOTHING), and the caller then
  writes nothing else. Its AFTER INSERT trigger counts payment intents into
  payment_funnel_daily.
- `lock_charge` takes a transaction-scoped advisory lock per charge id, so two events
  of the same charge (e.g. two refunds delivered at once to the webhook) are applied
  one after the other and the cumulative-refund arithmetic stays exact.
- `charge_facts` reads the charge's revenue entry and the refunds recorded so far
  through ledger_entries_charge_idx (metadata ->> 'charge', partial on `metadata ? 'charge'`).
- `insert_ledger` writes one row with source 'stripe'; the ledger_daily trigger
  follows in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from fsar_tui.db.rows import one
from fsar_tui.domain.stripe_ledger import ChargeFacts, LedgerDraft

SOURCE = "stripe"

INSERT_EVENT_SQL = """
    INSERT INTO stripe_events (id, type, created, object_id, livemode, outcome, payload)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (id) DO NOTHING
    RETURNING id"""

LOCK_CHARGE_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('fsar.stripe.charge:' || %s, 0))"

REVENUE_OF_CHARGE_SQL = """
    SELECT idea_id, customer_id, task_id FROM ledger_entries
    WHERE metadata ? 'charge' AND metadata ->> 'charge' = %s AND kind = 'revenue' AND source = 'stripe'
    ORDER BY id LIMIT 1"""

REFUNDED_SQL = """
    SELECT coalesce(-sum(amount_minor), 0)::bigint FROM ledger_entries
    WHERE metadata ? 'charge' AND metadata ->> 'charge' = %s AND kind = 'refund' AND source = 'stripe'"""

TASK_EXISTS_SQL = "SELECT EXISTS (SELECT 1 FROM execution_tasks WHERE id = %s)"

INSERT_LEDGER_SQL = """
    INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at,
                                idea_id, task_id, customer_id, metadata)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""


def insert_event(
    conn: psycopg.Connection,
    *,
    event_id: str,
    event_type: str,
    created: datetime,
    object_id: str | None,
    livemode: bool,
    outcome: str,
    payload: dict[str, Any],
) -> bool:
    """True if the event is new (stored now), False if it was already stored."""
    row = conn.execute(
        INSERT_EVENT_SQL, (event_id, event_type, created, object_id, livemode, outcome, Jsonb(payload))
    ).fetchone()
    return row is not None


def lock_charge(conn: psycopg.Connection, charge_id: str) -> None:
    conn.execute(LOCK_CHARGE_SQL, (charge_id,))


def charge_facts(conn: psycopg.Connection, charge_id: str) -> ChargeFacts:
    revenue = conn.execute(REVENUE_OF_CHARGE_SQL, (charge_id,)).fetchone()
    refunded = one(conn.execute(REFUNDED_SQL, (charge_id,)).fetchone())[0]
    idea_id, customer_id, task_id = revenue if revenue else (None, None, None)
    return ChargeFacts(idea_id=idea_id, customer_id=customer_id, task_id=task_id, refunded_minor=refunded)


def existing_task_id(conn: psycopg.Connection, task_id: int | None) -> int | None:
    if task_id is None:
        return None
    return task_id if one(conn.execute(TASK_EXISTS_SQL, (task_id,)).fetchone())[0] else None


def insert_ledger(conn: psycopg.Connection, draft: LedgerDraft, task_id: int | None) -> None:
    conn.execute(
        INSERT_LEDGER_SQL,
        (
            SOURCE,
            draft.external_id,
            draft.kind,
            draft.amount_minor,
            draft.currency,
            draft.occurred_at,
            draft.idea_id,
            task_id,
            draft.customer_id,
            Jsonb(draft.metadata),
        ),
    )
