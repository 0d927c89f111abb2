"""Audit reads: the latest verdict of each audit gate and the drift alerts still open
(`fsar-tui report`), and the Audit & Rollback screen's round of reads (`audit_screen`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import dict_row

from fsar_tui.db import drift, gates, operator_log

LATEST_VERDICTS_SQL = """
    SELECT g.name, g.metric, g.comparator, g.threshold, g.hard, g.enabled, r.verdict, r.value, r.baseline,
           r.sample_size, r.at
    FROM audit_gates g
    LEFT JOIN LATERAL (SELECT * FROM audit_runs r WHERE r.gate_id = g.id ORDER BY r.at DESC LIMIT 1) r ON true
    ORDER BY g.hard DESC, g.name
"""

OPEN_ALERTS_SQL = """
    SELECT id, indicator, scope, state, baseline, current, opened_at, acked_by
    FROM drift_alerts WHERE state <> 'resolved' ORDER BY opened_at DESC LIMIT 200
"""


def latest_verdicts(conn: Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(LATEST_VERDICTS_SQL).fetchall()


def open_alerts(conn: Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(OPEN_ALERTS_SQL).fetchall()


@dataclass(frozen=True)
class AuditRound:
    """Screen 4's reads: the operator log (filtered), the gates with their latest verdicts,
    the open drift alerts, and — when asked — the database's own chain check."""

    log: list[operator_log.LoggedAction]
    gates: list[gates.GateStatus]
    alerts: list[drift.OpenAlert]
    broken_at: int | None
    verified: bool


async def audit_screen(
    conn: AsyncConnection,
    *,
    verify: bool,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    limit: int = 500,
) -> AuditRound:
    log = await operator_log.list_actions(conn, actor=actor, action=action, target=target, since=since, limit=limit)
    return AuditRound(
        log,
        await gates.latest(conn),
        await drift.open_alerts(conn),
        await operator_log.database_verdict(conn) if verify else None,
        verify,
    )
