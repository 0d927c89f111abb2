"""Bulk loading through COPY, in one transaction (used by `fsar-tui seed`).

The transaction sets `fsar.bulk_load = on`, which the triggers honour for the tables'
owner: the loader writes task_events itself (the trigger would write them row by row and
queue a NOTIFY per row), one task_counts delta per group it loaded, and the rollups in
bulk (db/bulk_rollups.py). A SHARE ROW EXCLUSIVE lock on execution_tasks keeps other
writers out while the id range is reserved, so the loader can link events, ledger rows
and proposals to task ids it chose. Readers are never blocked.

While the rows are copied, the INSERT row triggers of the tasks, the ledger and the
Stripe events are disabled (`row_triggers_off`): the first two would only find the flag
set and return, but four SECURITY DEFINER calls per task row were ~75 % of the tasks'
COPY's server time (10.5 → 2.6 s for 100 k tasks here); the payment funnel's counted
each event with an upsert. What they do is done in bulk after the load
(`add_count_deltas`, bulk_rollups, `add_payment_funnel`, `add_ledger_daily`,
`add_fraud_velocity`). Disabling a trigger needs the owner — the same people the flag
is honoured for — and takes a SHARE ROW EXCLUSIVE lock on its table: writers to the
ledger and Stripe events (ingestion, the simulator's money) wait for the seed as task
writers do; readers still never do. It is undone before the commit (or by the rollback).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import postgres, pq, sql
from psycopg.adapt import Dumper
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from fsar_tui.db.rows import one

TASK_COLUMNS = (
    "id",
    "task_type",
    "ai_model",
    "status",
    "priority",
    "attempt",
    "max_attempts",
    "idea_id",
    "proposal_id",
    "rollout_revision_id",
    "worker_id",
    "lease_expires_at",
    "payload",
    "result",
    "error",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "input_tokens",
    "output_tokens",
    "cost_minor",
    "currency",
    "compute_cost_minor",
    "waste_minor",
    "unpriced_attempts",
)
# The event that ends an attempt carries its tokens and exact costs (revision 0024).
EVENT_COLUMNS = (
    "task_id",
    "from_status",
    "to_status",
    "attempt",
    "worker_id",
    "at",
    "error",
    "input_tokens",
    "output_tokens",
    "model_cost_minor",
    "compute_cost_minor",
)
LEDGER_COLUMNS = (
    "source",
    "external_id",
    "kind",
    "amount_minor",
    "currency",
    "occurred_at",
    "idea_id",
    "task_id",
    "customer_id",
    "metadata",
)
# The seed's payment_intent.* events, as the Stripe ingestion would store them (revision 0014).
STRIPE_EVENT_COLUMNS = ("id", "type", "created", "object_id", "livemode", "outcome", "received_at", "payload")
# The columns' types for a binary COPY (copy_rows' `types`): varchar and char(3) travel
# as text (the same binary form), numeric as Decimal, jsonb as JSON text.
TASK_TYPES = (
    *("int8", "text", "text", "text", "int2", "int4", "int4", "text", "text", "int8", "text", "timestamptz"),
    *("jsonb", "jsonb", "text", "timestamptz", "timestamptz", "timestamptz", "timestamptz", "int8", "int8"),
    *("numeric", "text", "numeric", "numeric", "int4"),
)
EVENT_TYPES = ("int8", "text", "text", "int4", "text", "timestamptz", "text", "int8", "int8", "numeric", "numeric")
LEDGER_TYPES = ("text", "text", "text", "int8", "text", "timestamptz", "text", "int8", "text", "jsonb")
STRIPE_EVENT_TYPES = ("text", "text", "timestamptz", "text", "bool", "text", "timestamptz", "jsonb")


@contextmanager
def bulk_transaction(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with conn.transaction():
        conn.execute("SET LOCAL fsar.bulk_load = 'on'")
        conn.execute("SET LOCAL statement_timeout = 0")
        # Room to aggregate a million tasks' rollups in memory (no spill to disk) and
        # to build indexes; for this transaction only.
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        conn.execute("LOCK TABLE execution_tasks IN SHARE ROW EXCLUSIVE MODE")
        yield conn


# A trigger's type bit for INSERT (pg_trigger.tgtype, TRIGGER_TYPE_INSERT).
_INSERT_TRIGGERS_SQL = """
    SELECT tgname FROM pg_trigger
    WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgenabled <> 'D' AND tgtype & 4 <> 0
    ORDER BY tgname"""


@contextmanager
def row_triggers_off(conn: psycopg.Connection, table: str) -> Iterator[list[str]]:
    """Inside bulk_transaction, after the partitions are made: `table`'s enabled INSERT
    triggers disabled (on a partitioned table, on every partition too) until the block
    ends; yields their names. Internal triggers (foreign keys) stay on."""
    names = [r[0] for r in conn.execute(_INSERT_TRIGGERS_SQL, (table,)).fetchall()]
    for name in names:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(sql.Identifier(table), sql.Identifier(name)))
    yield names
    for name in names:
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(sql.Identifier(table), sql.Identifier(name)))


def reserve_task_ids(conn: psycopg.Connection, n: int) -> int:
    """First id of a block of n consecutive task ids (inside bulk_transaction)."""
    first: int = one(conn.execute("SELECT nextval('execution_tasks_id_seq')").fetchone())[0]
    if n > 1:
        conn.execute("SELECT setval('execution_tasks_id_seq', %s)", (first + n - 1,))
    return first


def add_count_deltas(conn: psycopg.Connection, first_id: int, last_id: int) -> None:
    """The task_counts trigger is skipped under bulk_load: one delta per group instead."""
    conn.execute(
        "INSERT INTO task_count_deltas (status, task_type, ai_model, n) "
        "SELECT status, task_type, coalesce(ai_model, ''), count(*) FROM execution_tasks "
        "WHERE id BETWEEN %s AND %s GROUP BY 1, 2, 3",
        (first_id, last_id),
    )


def ledger_high_water(conn: psycopg.Connection) -> int:
    high: int = one(conn.execute("SELECT coalesce(max(id), 0) FROM ledger_entries").fetchone())[0]
    return high


def add_ledger_daily(conn: psycopg.Connection, after_id: int) -> None:
    """The ledger_daily trigger is skipped under bulk_load: the loaded entries, summed."""
    conn.execute(
        "INSERT INTO ledger_daily AS d (day, kind, currency, idea_id, entries, amount_minor) "
        "SELECT (occurred_at AT TIME ZONE 'UTC')::date, kind, currency, coalesce(idea_id, ''), count(*), "
        "sum(amount_minor) FROM ledger_entries WHERE id > %s GROUP BY 1, 2, 3, 4 "
        "ON CONFLICT (day, kind, currency, idea_id) DO UPDATE SET entries = d.entries + EXCLUDED.entries, "
        "amount_minor = d.amount_minor + EXCLUDED.amount_minor",
        (after_id,),
    )


def add_fraud_velocity(conn: psycopg.Connection, after_id: int) -> None:
    """The fraud_velocity trigger is skipped under bulk_load: the loaded charges, counted
    per subject and UTC hour (revision 0025; domain/fraud_velocity.py)."""
    conn.execute(
        "INSERT INTO fraud_velocity AS v (subject_kind, subject, hour, charges) "
        "SELECT s.kind, s.subject, date_trunc('hour', e.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', "
        "count(*) FROM ledger_entries e "
        "CROSS JOIN LATERAL (VALUES ('customer', e.customer_id), "
        "('card', e.metadata ->> 'card_fingerprint')) s(kind, subject) "
        "WHERE e.id > %s AND e.kind = 'revenue' AND s.subject IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 "
        "ON CONFLICT (subject_kind, subject, hour) DO UPDATE SET charges = v.charges + EXCLUDED.charges",
        (after_id,),
    )


def add_payment_funnel(conn: psycopg.Connection) -> None:
    """The funnel trigger (fsar_stripe_event_funnel, revision 0014) is off while the loader
    copies Stripe events: the payment_intent.* events this transaction inserted, counted
    per UTC day, stage, currency and decline reason by the trigger's own rules. The
    loader's rows are those whose xmin is this transaction's id (it copies them outside
    any savepoint)."""
    conn.execute(
        "INSERT INTO payment_funnel_daily AS f (day, stage, currency, reason, n) "
        "SELECT (created AT TIME ZONE 'UTC')::date, stage, upper(coalesce(payload #>> '{data,object,currency}', '')), "
        "CASE WHEN stage = 'failed' THEN coalesce(payload #>> '{data,object,last_payment_error,decline_code}', "
        "payload #>> '{data,object,last_payment_error,code}', 'unknown') ELSE '' END, count(*) "
        "FROM (SELECT *, CASE type WHEN 'payment_intent.created' THEN 'created' "
        "WHEN 'payment_intent.succeeded' THEN 'succeeded' WHEN 'payment_intent.payment_failed' THEN 'failed' END "
        "AS stage FROM stripe_events WHERE xmin = pg_current_xact_id()::xid) e "
        "WHERE stage IS NOT NULL GROUP BY 1, 2, 3, 4 "
        "ON CONFLICT (day, stage, currency, reason) DO UPDATE SET n = f.n + EXCLUDED.n"
    )


def insert_compute_rates(conn: psycopg.Connection, rates: list[TupleRow]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO compute_rates (currency, minor_per_hour, effective_from) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            rates,
        )


class _JsonTextBinary(Dumper):
    """jsonb in COPY's binary format from JSON text already encoded (the seed's payloads
    come from a few pre-encoded strings): version byte 1, then the text."""

    format = pq.Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def copy_rows(
    conn: psycopg.Connection,
    table: str,
    columns: Iterable[str],
    rows: Iterable[TupleRow],
    types: Sequence[str] | None = None,
) -> int:
    """COPY rows in; with `types` (one per column, as *_TYPES below) in the binary
    format, which halves the client's work and spares the server parsing every
    timestamp and number from text. jsonb values are then JSON text."""
    count = 0
    cols = ", ".join(columns)
    binary = " (FORMAT BINARY)" if types else ""
    with conn.cursor() as cur:
        if types:
            cur.adapters.register_dumper(None, _JsonTextBinary)  # looked up by the jsonb oid
        with cur.copy(f"COPY {table} ({cols}) FROM STDIN{binary}") as copy:
            if types:
                copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)
                count += 1
    return count


def insert_prices(conn: psycopg.Connection, prices: list[TupleRow]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO model_prices "
            "(ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, effective_from) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            prices,
        )


def insert_rollout(
    conn: psycopg.Connection,
    target: str,
    kind: str,
    task_type: str | None,
    revisions: list[tuple[dict[str, Any], str, object, str]],
) -> list[int]:
    """A rollout with revisions [(artifact, sha256, created_at, reason)]; the last is active.

    Returns the revision row ids, in order. An existing target is left alone (seed can
    run twice) and its ids are returned instead.
    """
    row = conn.execute(
        "INSERT INTO rollouts (target, kind, task_type, created_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (target) DO NOTHING RETURNING id",
        (target, kind, task_type, revisions[0][2]),
    ).fetchone()
    if row is None:
        return [
            r[0]
            for r in conn.execute(
                "SELECT rr.id FROM rollout_revisions rr JOIN rollouts r ON r.id = rr.rollout_id "
                "WHERE r.target = %s ORDER BY rr.revision",
                (target,),
            ).fetchall()
        ]
    rollout_id = row[0]
    ids = []
    for number, (artifact, sha, created_at, reason) in enumerate(revisions, start=1):
        ids.append(
            one(
                conn.execute(
                    "INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256, created_at, "
                    "created_by, reason) "
                    "VALUES (%s, %s, %s, %s, %s, 'seed', %s) RETURNING id",
                    (rollout_id, number, Jsonb(artifact), sha, created_at, reason),
                ).fetchone()
            )[0]
        )
    conn.execute(
        "UPDATE rollouts SET active_revision = %s, updated_at = %s WHERE id = %s",
        (len(revisions), revisions[-1][2], rollout_id),
    )
    return ids


def insert_proposal(conn: psycopg.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO fsar_proposals (id, reported_at, severity, block_execution, block_lifted_at, task_type, body, "
        "risks, mitigations, status, source_sha256) VALUES (%(id)s, %(reported_at)s, %(severity)s, "
        "%(block_execution)s, %(block_lifted_at)s, %(task_type)s, %(body)s, %(risks)s, %(mitigations)s, "
        "%(status)s, %(source_sha256)s) ON CONFLICT (id) DO NOTHING",
        {**row, "risks": Jsonb(row["risks"]), "mitigations": Jsonb(row["mitigations"])},
    )


def analyze(conn: psycopg.Connection) -> None:
    for table in ("execution_tasks", "task_events", "ledger_entries"):
        conn.execute(f"ANALYZE {table}")


def has_tasks(conn: psycopg.Connection) -> bool:
    exists: bool = one(conn.execute("SELECT EXISTS (SELECT 1 FROM execution_tasks)").fetchone())[0]
    return exists
