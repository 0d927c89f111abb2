"""Notifications (issue 20 point 3), the data: who was told what, and every attempt.

Tables (revisions 0037_notifications, 0038_notify_guards):
- notify_states: per event key, the last notified state (firing | resolved) and what was
  said then. A state change is CLAIMED here (fsar_notify_claim: an INSERT … ON CONFLICT
  … WHERE the state differs, under the row's lock): of two passes racing with the same
  change, the second finds the state already changed and claims nothing, so one event
  row is written and one notification goes out.
- notify_events: every claimed change (labels, annotations, start and end) — the payload
  is rebuilt from it for each attempt.
- notify_deliveries: one per event × channel (a webhook, the mail): pending → ok, or
  failed when the last attempt (domain/notify.MAX_ATTEMPTS) failed; when it is next due.
  A channel is named by its masked text (never a password or token) and found again at
  send time by `channel_key`, a hash of its URL (services/notify.channels).
- notify_attempts: every attempt: when, ok | failed, the HTTP status or error line, the
  next retry planned.

Writes go through three SECURITY DEFINER functions granted to fsar_operator (the role
the audit pass runs as): claim (the state checked
against its source, dated from it, logged in the operator log), take (the due
deliveries of the caller's channels by the server's clock, leased with FOR UPDATE SKIP
LOCKED so two passes never send the same one, each lease a random uuid) and record (an
attempt's outcome, with its lease; the time and the next retry are the server's).
Revisions 0038 and 0039; db/notify_functions.py says what each checks.

A delivery no pass sends (its channel in no running [notify], or leased again and again
by a role that never records it) is never tried, so it is never given up either: 15
minutes after it was due (`due_since`, which a lease does not move) it is listed with the
failed ones (attempts 0, with the role that took it last), so `alerts list` and screen 4
show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from fsar_tui.db.rows import one
from fsar_tui.domain.notify import CanaryRow, DriftRow, GateRow, Notified, ProposalRow

# -- the audit pass's reads ----------------------------------------------------------------


def previous_states(conn: Connection) -> dict[str, Notified]:
    """Every key's last notified state (a few rows per alert, gate, target, proposal)."""
    rows = conn.execute(
        "SELECT event_key, state, labels, annotations ->> 'summary', starts_at FROM notify_states"
    ).fetchall()
    return {
        key: Notified(state, {str(k): str(v) for k, v in (labels or {}).items()}, summary or "", starts_at)
        for key, state, labels, summary, starts_at in rows
    }


def drift_rows(conn: Connection, now: datetime) -> list[DriftRow]:
    """Open alerts, and those resolved in the last day (a resolution to tell)."""
    return (
        conn.cursor(row_factory=class_row(DriftRow))
        .execute(
            "SELECT id, indicator, scope, state, baseline::float8 AS baseline, current::float8 AS current, "
            "opened_at, resolved_at FROM drift_alerts "
            "WHERE state <> 'resolved' OR resolved_at > %s - interval '1 day' ORDER BY id LIMIT 1000",
            (now,),
        )
        .fetchall()
    )


def hard_gate_rows(conn: Connection) -> list[GateRow]:
    """Every enabled hard gate with its latest verdict."""
    return (
        conn.cursor(row_factory=class_row(GateRow))
        .execute("""
            SELECT g.name, g.scope, g.comparator, g.threshold::float8 AS threshold, r.verdict,
                   r.value::float8 AS value, r.at
            FROM audit_gates g
            LEFT JOIN LATERAL (SELECT verdict, value, at FROM audit_runs WHERE gate_id = g.id
                               ORDER BY at DESC, id DESC LIMIT 1) r ON true
            WHERE g.hard AND g.enabled ORDER BY g.name""")
        .fetchall()
    )


def aborted_canaries(conn: Connection, now: datetime) -> list[CanaryRow]:
    """Canaries aborted in the last day."""
    return (
        conn.cursor(row_factory=class_row(CanaryRow))
        .execute(
            "SELECT c.id, r.target, c.canary_revision, c.weight, c.ended_at, c.ended_by, c.end_reason "
            "FROM rollout_canaries c JOIN rollouts r ON r.id = c.rollout_id "
            "WHERE c.state = 'aborted' AND c.ended_at > %s - interval '1 day' ORDER BY c.id",
            (now,),
        )
        .fetchall()
    )


def blocking_proposals(conn: Connection) -> list[ProposalRow]:
    """FSAR proposals whose block is in force (execution_blocks' rule)."""
    return (
        conn.cursor(row_factory=class_row(ProposalRow))
        .execute(
            "SELECT id, severity, task_type, left(body, 2000) AS body, ingested_at FROM fsar_proposals "
            "WHERE block_execution AND block_lifted_at IS NULL AND status IN ('new', 'accepted') ORDER BY id "
            "LIMIT 1000"
        )
        .fetchall()
    )


# -- the writes ----------------------------------------------------------------------------


def claim(
    conn: Connection,
    *,
    key: str,
    kind: str,
    state: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    channels: list[tuple[str, str]],
) -> int | None:
    """The event's id, or None when another pass claimed this change first. The database
    dates the event from its source (revision 0039)."""
    row = one(
        conn.execute(
            "SELECT fsar_notify_claim(%s, %s, %s, %s, %s, %s, %s)",
            (
                key,
                kind,
                state,
                Jsonb(labels),
                Jsonb(annotations),
                [k for k, _ in channels],
                [c for _, c in channels],
            ),
        ).fetchone()
    )
    return None if row[0] is None else int(row[0])


@dataclass(frozen=True)
class Due:
    """A delivery leased to this pass, with its event."""

    delivery_id: int
    lease: UUID  # what the record of this attempt presents
    channel_key: str
    channel: str
    attempts: int  # before this one
    event_key: str
    kind: str
    state: str
    labels: dict[str, Any]
    annotations: dict[str, Any]
    starts_at: datetime
    ends_at: datetime | None


def take(conn: Connection, channel_keys: list[str], *, lease_s: int = 300, limit: int = 10) -> list[Due]:
    """The deliveries of `channel_keys` due by the server's clock, leased for `lease_s`."""
    return (
        conn.cursor(row_factory=class_row(Due))
        .execute("SELECT * FROM fsar_notify_take(%s, %s, %s)", (channel_keys, lease_s, limit))
        .fetchall()
    )


def record(conn: Connection, due: Due, *, ok: bool, http_status: int | None, error: str | None) -> int:
    """Record the attempt at `due` (with its lease); the attempt's number. The database
    dates it and plans the retry (notify_attempts.next_retry_at)."""
    row = one(
        conn.execute(
            "SELECT fsar_notify_record(%s, %s, %s, %s, %s)",
            (due.delivery_id, due.lease, ok, http_status, error[:2000] if error else None),
        ).fetchone()
    )
    return int(row[0])


# -- what screen 4 and `alerts list` show -------------------------------------------------


@dataclass(frozen=True)
class FailedDelivery:
    """A delivery whose latest attempt failed: still retried (next_attempt_at) or given up."""

    id: int
    event_key: str
    state: str  # the event's: firing | resolved
    summary: str
    channel: str  # masked
    status: str  # pending (retried) | failed (given up)
    attempts: int  # 0: never tried (due, and no pass with its channel in [notify] has run)
    last_at: datetime | None
    last_http_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    due_since: datetime | None  # when first due (or its retry): a take's lease does not move it
    taken_by: str | None  # the role that leased it last


FAILED_SQL = """
    SELECT d.id, e.event_key, e.state, coalesce(e.annotations ->> 'summary', '') AS summary, d.channel, d.status,
           d.attempts, d.last_at, d.last_http_status, d.last_error,
           CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at, d.due_since, d.taken_by
    FROM notify_deliveries d JOIN notify_events e ON e.id = d.event_id
    WHERE (d.status <> 'ok' AND d.attempts > 0 AND d.last_at > now() - interval '7 days')
       OR (d.status = 'pending' AND d.attempts = 0 AND d.due_since < now() - interval '15 minutes'
           AND e.created_at > now() - interval '7 days')
    ORDER BY coalesce(d.last_at, d.due_since) DESC, d.id DESC LIMIT %s"""


def failed_deliveries_sync(conn: Connection, limit: int = 50) -> list[FailedDelivery]:
    return conn.cursor(row_factory=class_row(FailedDelivery)).execute(FAILED_SQL, (limit,)).fetchall()


async def failed_deliveries(conn: AsyncConnection, limit: int = 50) -> list[FailedDelivery]:
    cur = conn.cursor(row_factory=class_row(FailedDelivery))
    return await (await cur.execute(FAILED_SQL, (limit,))).fetchall()


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    event_key: str
    channel: str
    attempt: int
    at: datetime
    outcome: str
    http_status: int | None
    error: str | None
    next_retry_at: datetime | None


def attempts(conn: Connection, limit: int = 200) -> list[Attempt]:
    """The newest attempts, newest first (tests, and what `alerts list --format json` adds)."""
    return (
        conn.cursor(row_factory=class_row(Attempt))
        .execute(
            "SELECT a.delivery_id, e.event_key, d.channel, a.attempt, a.at, a.outcome, a.http_status, a.error, "
            "a.next_retry_at FROM notify_attempts a JOIN notify_deliveries d ON d.id = a.delivery_id "
            "JOIN notify_events e ON e.id = d.event_id ORDER BY a.at DESC, a.id DESC LIMIT %s",
            (limit,),
        )
        .fetchall()
    )
