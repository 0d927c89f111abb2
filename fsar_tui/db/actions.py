"""Operator actions on tasks: retry, cancel, requeue — one transaction each.

Each action takes the rows the operator saw, as (id, status) pairs, and changes only
those still in that state (the optimistic check); rows that moved meanwhile are
returned as `changed`, never silently hit. In the same transaction it appends one
operator_actions row (actor = OS user, db_role = current_user via the trigger, reason,
before/after with the ids). A read-only session or role makes Postgres refuse the
UPDATE; `ActionRefused` carries the plain explanation.

Transitions:
    retry    failed            -> queued  (finished_at cleared; one more attempt allowed)
    cancel   queued, running   -> cancelled (a running worker's fenced finish then fails)
    requeue  running, cancelled, succeeded -> queued (e.g. a stuck or wrongly cancelled task)
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field

import psycopg
from psycopg import AsyncConnection

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


async def apply_action(conn: AsyncConnection, action: str, seen: list[tuple[int, str]], reason: str,
                       *, scope: str, actor: str | None = None) -> ActionResult:
    """Apply `action` to the tasks in `seen` [(id, status as seen)], atomically."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not reason.strip():
        raise ValueError("a reason is required")
    allowed, target = ACTIONS[action]
    result = ActionResult(action)
    applicable = [(i, s) for i, s in seen if s in allowed]
    result.not_applicable = [i for i, s in seen if s not in allowed]
    if not applicable:
        return result
    try:
        async with conn.transaction():
            cur = await conn.execute(UPDATE_SQL[target], {
                "ids": [i for i, _ in applicable], "seen": [s for _, s in applicable], "allowed": list(allowed)})
            result.done = sorted(r[0] for r in await cur.fetchall())
            done = set(result.done)
            result.changed = [i for i, _ in applicable if i not in done]
            if result.done:
                before = {str(i): s for i, s in applicable if i in done}
                await operator_log.append(conn, actor=actor or os_user(), action=f"task.{action}", target=scope,
                                          reason=reason.strip(), before={"status": before},
                                          after={"status": target, "ids": result.done})
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
        raise ActionRefused(f"the database refused {action}: {str(exc).splitlines()[0]} "
                            "(read-only session or role)") from None
    return result
