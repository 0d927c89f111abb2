"""Notifications (issue 20 point 3), the data: who was told what, and every attempt.

Tables (revision 0037_notifications):
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
the audit pass runs as): claim, take (due deliveries, leased with FOR UPDATE SKIP LOCKED
so two passes never send the same one) and record (an attempt's outcome).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from fsar_tui.db.rows import one
from fsar_tui.db.shipped_sql import Fn
from fsar_tui.domain.notify import CanaryRow, DriftRow, GateRow, Notified, ProposalRow

CLAIM = Fn(
    name="fsar_notify_claim",
    params=(
        "p_key text, p_kind text, p_state text, p_labels jsonb, p_annotations jsonb, p_starts_at timestamptz, "
        "p_ends_at timestamptz, p_channel_keys text[], p_channels text[], p_now timestamptz"
    ),
    signature=(
        "fsar_notify_claim(text, text, text, jsonb, jsonb, timestamp with time zone, timestamp with time zone, "
        "text[], text[], timestamp with time zone)"
    ),
    returns="bigint",
    definer=True,
    body="""
DECLARE
    v_event bigint;
BEGIN
    IF coalesce(p_key, '') = '' OR length(p_key) > 300 OR split_part(p_key, ':', 1) <> p_kind
       OR p_kind NOT IN ('drift', 'gate', 'canary', 'proposal', 'rollback') THEN
        RAISE EXCEPTION 'bad event key %', left(p_key, 40) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_state IS NULL OR p_state NOT IN ('firing', 'resolved') THEN
        RAISE EXCEPTION 'bad state' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(p_labels) IS DISTINCT FROM 'object' OR jsonb_typeof(p_annotations) IS DISTINCT FROM 'object'
       OR NOT p_labels ? 'alertname' OR p_starts_at IS NULL OR p_now IS NULL THEN
        RAISE EXCEPTION 'labels and annotations must be objects, with an alertname'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_channel_keys) IS DISTINCT FROM cardinality(p_channels) OR cardinality(p_channels) > 20
       OR EXISTS (SELECT 1 FROM unnest(p_channels) c WHERE c IS NULL OR length(c) > 500) THEN
        RAISE EXCEPTION 'bad channels' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The claim: the row's lock orders racing passes; the second sees the first's state.
    INSERT INTO notify_states AS s (event_key, state, labels, annotations, starts_at, changed_at)
    VALUES (p_key, p_state, p_labels, p_annotations, p_starts_at, p_now)
    ON CONFLICT (event_key) DO UPDATE
        SET state = EXCLUDED.state, labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
            starts_at = EXCLUDED.starts_at, changed_at = EXCLUDED.changed_at
        WHERE s.state IS DISTINCT FROM EXCLUDED.state;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO notify_events (event_key, kind, state, labels, annotations, starts_at, ends_at, created_at)
    VALUES (p_key, p_kind, p_state, p_labels, p_annotations, p_starts_at, p_ends_at, p_now)
    RETURNING id INTO v_event;
    UPDATE notify_states SET event_id = v_event WHERE event_key = p_key;
    INSERT INTO notify_deliveries (event_id, channel_key, channel, next_attempt_at)
    SELECT v_event, k, c, p_now FROM unnest(p_channel_keys, p_channels) AS x(k, c);
    RETURN v_event;
END
""",
)

TAKE = Fn(
    name="fsar_notify_take",
    params="p_now timestamptz, p_lease_s integer, p_limit integer",
    signature="fsar_notify_take(timestamp with time zone, integer, integer)",
    returns=(
        "TABLE (delivery_id bigint, channel_key text, channel text, attempts integer, event_key text, kind text, "
        "state text, labels jsonb, annotations jsonb, starts_at timestamptz, ends_at timestamptz)"
    ),
    definer=True,
    body="""
BEGIN
    IF p_now IS NULL OR p_lease_s IS NULL OR p_limit IS NULL OR p_lease_s NOT BETWEEN 1 AND 3600
       OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'bad lease or limit' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Leased, not held: the sending happens after this transaction, and a pass that dies
    -- mid-send leaves the delivery due again when the lease ends.
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM notify_deliveries d
        WHERE d.status = 'pending' AND d.next_attempt_at <= p_now
        ORDER BY d.next_attempt_at, d.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE notify_deliveries d SET next_attempt_at = p_now + make_interval(secs => p_lease_s)
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.event_id, d.channel_key, d.channel, d.attempts
    )
    SELECT l.id, l.channel_key, l.channel, l.attempts, e.event_key, e.kind, e.state, e.labels, e.annotations,
           e.starts_at, e.ends_at
    FROM leased l JOIN notify_events e ON e.id = l.event_id
    ORDER BY e.id, l.id;
END
""",
)

RECORD = Fn(
    name="fsar_notify_record",
    params=(
        "p_delivery bigint, p_at timestamptz, p_ok boolean, p_http_status integer, p_error text, p_next_at timestamptz"
    ),
    signature="fsar_notify_record(bigint, timestamp with time zone, boolean, integer, text, timestamp with time zone)",
    returns="integer",
    definer=True,
    body="""
DECLARE
    v_attempt integer;
BEGIN
    IF p_at IS NULL OR p_ok IS NULL OR (p_ok AND p_next_at IS NOT NULL)
       OR p_http_status NOT BETWEEN 100 AND 599 OR length(p_error) > 2000 THEN
        RAISE EXCEPTION 'bad attempt' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE notify_deliveries
    SET attempts = attempts + 1,
        status = CASE WHEN p_ok THEN 'ok' WHEN p_next_at IS NULL THEN 'failed' ELSE 'pending' END,
        next_attempt_at = CASE WHEN p_ok THEN NULL ELSE p_next_at END,
        last_at = p_at, last_http_status = p_http_status, last_error = CASE WHEN p_ok THEN NULL ELSE p_error END
    WHERE id = p_delivery AND status = 'pending'
    RETURNING attempts INTO v_attempt;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery % is not pending', p_delivery USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO notify_attempts (delivery_id, attempt, at, outcome, http_status, error, next_retry_at)
    VALUES (p_delivery, v_attempt, p_at, CASE WHEN p_ok THEN 'ok' ELSE 'failed' END, p_http_status,
            CASE WHEN p_ok THEN NULL ELSE p_error END, CASE WHEN p_ok THEN NULL ELSE p_next_at END);
    RETURN v_attempt;
END
""",
)

FUNCTIONS = (CLAIM, TAKE, RECORD)  # revision 0037, granted to fsar_operator


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
    starts_at: datetime,
    ends_at: datetime | None,
    channels: list[tuple[str, str]],
    now: datetime,
) -> int | None:
    """The event's id, or None when another pass claimed this change first."""
    row = one(
        conn.execute(
            "SELECT fsar_notify_claim(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                key,
                kind,
                state,
                Jsonb(labels),
                Jsonb(annotations),
                starts_at,
                ends_at,
                [k for k, _ in channels],
                [c for _, c in channels],
                now,
            ),
        ).fetchone()
    )
    return None if row[0] is None else int(row[0])


@dataclass(frozen=True)
class Due:
    """A delivery leased to this pass, with its event."""

    delivery_id: int
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


def take(conn: Connection, now: datetime, *, lease_s: int = 300, limit: int = 10) -> list[Due]:
    return (
        conn.cursor(row_factory=class_row(Due))
        .execute("SELECT * FROM fsar_notify_take(%s, %s, %s)", (now, lease_s, limit))
        .fetchall()
    )


def record(
    conn: Connection,
    delivery_id: int,
    *,
    at: datetime,
    ok: bool,
    http_status: int | None,
    error: str | None,
    next_at: datetime | None,
) -> int:
    """The attempt's number."""
    row = one(
        conn.execute(
            "SELECT fsar_notify_record(%s, %s, %s, %s, %s, %s)",
            (delivery_id, at, ok, http_status, error[:2000] if error else None, next_at),
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
    attempts: int
    last_at: datetime
    last_http_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None


FAILED_SQL = """
    SELECT d.id, e.event_key, e.state, coalesce(e.annotations ->> 'summary', '') AS summary, d.channel, d.status,
           d.attempts, d.last_at, d.last_http_status, d.last_error,
           CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at
    FROM notify_deliveries d JOIN notify_events e ON e.id = d.event_id
    WHERE d.status <> 'ok' AND d.attempts > 0 AND d.last_at > now() - interval '7 days'
    ORDER BY d.last_at DESC, d.id DESC LIMIT %s"""


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
