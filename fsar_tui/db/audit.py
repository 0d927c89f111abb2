"""Audit reads: the latest verdict of each audit gate and the drift alerts still open.

Used by `fsar-tui report` (and, with the audit issue, by the Audit & Rollback screen).
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

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
