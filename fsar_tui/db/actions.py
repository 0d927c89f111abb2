"""Operator actions on tasks: retry, cancel, requeue — one transaction each.

Each action takes the rows the operator saw, as (id, status) pairs, and changes only
those still in that state (the optimistic check); rows that moved meanwhile are
returned as `changed`, never silently hit. In the same transaction it appends one
operator_actions row (actor = OS user, db_role = current_user via the trigger, reason,
before/after with the ids). A read-only session or role makes Postgres refuse the
UPDATE; `ActionRefused` carries the plain explanation. `apply_action` (the queue screen)
and `apply_action_sync` (`fsar-tui tasks`) share the checks, the SQL and the log entry.

Transitions:
    retry    failed            -> queued  (finished_at cleared; one more attempt allowed)
    cancel   queued, running   -> cancelled (a running worker's fenced finish then fails)
    requeue  running, cancelled, succeeded -> queued (e.g. a stuck or wrongly cancelled task)
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection

from fsar_tui.db import operator_log

ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "retry": (("failed",), "queued"),
    "cancel": (("queued", "running"), "cancelled"),
    "requeue": (("running", "cancelled", "succeeded"), "queued"),
}

UPDATE_SQL = {
    "queued": """
        UPDATE execution_tasks t
        SET status = 'queued', finished_at = NULL, lease_expires_at = NULL, queued_at = now(),
            max_attempts = greatest(t.max_attempts, t.attempt + 1)
        FROM unnest(%(ids)s::bigint[], %(seen)s::text[]) AS s(id, seen)
        WHERE t.id = s.id AND t.status = s.seen AND t.status = ANY(%(allowed)s)
        RETURNING t.id""",
    "cancelled": """
        UPDATE execution_tasks t
        SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
        FROM unnest(%(ids)s::bigint[], %(seen)s::text[]) AS s(id, seen)
        WHERE t.id = s.id AND t.status = s.seen AND t.status = ANY(%(allowed)s)
        RETURNING t.id""",
}


class ActionRefused(Exception):
    """Postgres refused the action (read-only role or session, missing privilege)."""


@dataclass
class ActionResult:
    action: str
    done: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)  # moved on since the operator saw them
    not_applicable: list[int] = field(default_factory=list)  # the action does not apply to their state


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return "unknown"


def _plan(
    action: str, seen: list[tuple[int, str]], reason: str
) -> tuple[ActionResult, list[tuple[int, str]], dict[str, Any]]:
    """Check the request; split `seen` into applicable and not; the UPDATE's parameters."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not reason.strip():
        raise ValueError("a reason is required")
    allowed, _ = ACTIONS[action]
    result = ActionResult(action)
    applicable = [(i, s) for i, s in seen if s in allowed]
    result.not_applicable = [i for i, s in seen if s not in allowed]
    params = {"ids": [i for i, _ in applicable], "seen": [s for _, s in applicable], "allowed": list(allowed)}
    return result, applicable, params


def _settle(
    result: ActionResult, applicable: list[tuple[int, str]], updated: list[tuple[Any, ...]]
) -> dict[str, Any] | None:
    """Record what the UPDATE touched; the operator-log entry's fields, None if nothing was."""
    result.done = sorted(r[0] for r in updated)
    done = set(result.done)
    result.changed = [i for i, _ in applicable if i not in done]
    if not result.done:
        return None
    before = {str(i): s for i, s in applicable if i in done}
    return {
        "action": f"task.{result.action}",
        "before": {"status": before},
        "after": {"status": ACTIONS[result.action][1], "ids": result.done},
    }


def _refused(action: str, exc: Exception) -> ActionRefused:
    return ActionRefused(f"the database refused {action}: {str(exc).splitlines()[0]} (read-only session or role)")


async def apply_action(
    conn: AsyncConnection,
    action: str,
    seen: list[tuple[int, str]],
    reason: str,
    *,
    scope: str,
    actor: str | None = None,
) -> ActionResult:
    """Apply `action` to the tasks in `seen` [(id, status as seen)], atomically."""
    result, applicable, params = _plan(action, seen, reason)
    if not applicable:
        return result
    try:
        async with conn.transaction():
            cur = await conn.execute(UPDATE_SQL[ACTIONS[action][1]], params)
            entry = _settle(result, applicable, await cur.fetchall())
            if entry is not None:
                await operator_log.append(conn, actor=actor or os_user(), target=scope, reason=reason.strip(), **entry)
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
        raise _refused(action, exc) from None
    return result


def apply_action_sync(
    conn: Connection, action: str, seen: list[tuple[int, str]], reason: str, *, scope: str, actor: str | None = None
) -> ActionResult:
    """`apply_action` for the CLI (`fsar-tui tasks retry|cancel|requeue`): the same
    optimistic UPDATE and operator-log entry, in one transaction."""
    result, applicable, params = _plan(action, seen, reason)
    if not applicable:
        return result
    try:
        with conn.transaction():
            updated = conn.execute(UPDATE_SQL[ACTIONS[action][1]], params).fetchall()
            entry = _settle(result, applicable, updated)
            if entry is not None:
                operator_log.append_sync(conn, actor=actor or os_user(), target=scope, reason=reason.strip(), **entry)
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
        raise _refused(action, exc) from None
    return result
