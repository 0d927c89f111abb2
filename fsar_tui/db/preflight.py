"""Checks existing rows against the constraints a pending revision will add.

Adopting a legacy database must never half-succeed: before any revision runs, each
pending revision's checks are run against the rows as they are. Any violation stops
`fsar-tui migrate` with the offending rows listed (exit 1) and nothing changed.
Checks are written against the columns that exist *before* their revision runs
(the legacy shape for 0003).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", "running") + TERMINAL
MAX_ROWS_SHOWN = 20


@dataclass(frozen=True)
class Check:
    revision: str
    description: str
    # Returns (id, explanation) for each violating row.
    sql: str


CHECKS: tuple[Check, ...] = (
    Check(
        "0003_task_lifecycle",
        "status must be one of " + ", ".join(STATUSES),
        "SELECT id, format('status %L is not one of " + ", ".join(STATUSES) + "', status) "
        "FROM execution_tasks WHERE status NOT IN ('queued','running','succeeded','failed','cancelled') ORDER BY id",
    ),
    Check(
        "0003_task_lifecycle",
        "finished_at must be set exactly when the status is terminal",
        "SELECT id, CASE WHEN finished_at IS NULL "
        "THEN format('status %L is terminal but finished_at is empty', status) "
        "ELSE format('status %L is not terminal but finished_at is %s', status, finished_at) END "
        "FROM execution_tasks "
        "WHERE status IN ('queued','running','succeeded','failed','cancelled') "
        "AND (finished_at IS NOT NULL) <> (status IN ('succeeded','failed','cancelled')) ORDER BY id",
    ),
)


@dataclass(frozen=True)
class Violation:
    table: str
    row_id: object
    reason: str

    def __str__(self) -> str:
        return f"{self.table} id={self.row_id}: {self.reason}"


def find_violations(conn: psycopg.Connection, pending_revisions: set[str]) -> tuple[list[Violation], int]:
    """Violations of checks whose revision is pending: (first rows, total count)."""
    shown: list[Violation] = []
    total = 0
    for check in CHECKS:
        if check.revision not in pending_revisions:
            continue
        rows = conn.execute(check.sql).fetchall()
        total += len(rows)
        for row_id, reason in rows[: max(0, MAX_ROWS_SHOWN - len(shown))]:
            shown.append(Violation("execution_tasks", row_id, reason))
    return shown, total
