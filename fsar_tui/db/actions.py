"""Operator actions on tasks: retry, cancel, requeue — one transaction each.

Each action takes the rows the operator saw, as (id, status) pairs, and changes only
those still in that state (the optimistic check); rows that moved meanwhile are
returned as `changed`, never silently hit. The change and its operator_actions row
(actor = the authenticated role, claimed_os_user = the OS user, reason, before/after
with the ids) are one call of fsar_task_action (revision 0020, db/action_functions.py):
the database checks the transition, and no fsar role may UPDATE the tasks directly.
A read-only session or a role without EXECUTE makes Postgres refuse; `ActionRefused`
carries the plain explanation. `apply_action` (the queue screen) and `apply_action_sync`
(`fsar-tui tasks`) share the checks and the call.

Transitions:
    retry    failed            -> queued  (finished_at cleared; one more attempt allowed)
    cancel   queued, running   -> cancelled (a running worker's fenced finish then fails)
    requeue  running, cancelled, succeeded -> queued (e.g. a stuck or wrongly cancelled task)
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection

from fsar_tui.domain.serve_auth import CHANNEL_ENV

ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "retry": (("failed",), "queued"),
    "cancel": (("queued", "running"), "cancelled"),
    "requeue": (("running", "cancelled", "succeeded"), "queued"),
}

ACTION_SQL = (
    "SELECT fsar_task_action(%(action)s, %(ids)s::bigint[], %(seen)s::text[], %(scope)s, %(reason)s, %(claimed)s)"
)


class ActionRefused(Exception):
    """Postgres refused the action (read-only role or session, missing privilege)."""


@dataclass
class ActionResult:
    action: str
    done: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)  # moved on since the operator saw them
    not_applicable: list[int] = field(default_factory=list)  # the action does not apply to their state


def os_user() -> str:
    """Who the client claims to be in the operator log (claimed_os_user): the OS user,
    behind the channel it came through when FSAR_ACTOR_CHANNEL names one — `fsar-tui
    serve` starts each browser session's app with `browser:<session id>`, so its rows
    read `browser:<session id> (<os user>)`. Every screen and command asks here."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers)
        user = "unknown"
    channel = os.environ.get(CHANNEL_ENV, "").strip()[:100]
    return f"{channel} ({user})" if channel else user


def _plan(
    action: str, seen: list[tuple[int, str]], reason: str
) -> tuple[ActionResult, list[tuple[int, str]], dict[str, Any]]:
    """Check the request; split `seen` into applicable and not; the call's parameters."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not reason.strip():
        raise ValueError("a reason is required")
    allowed, _ = ACTIONS[action]
    result = ActionResult(action)
    applicable = [(i, s) for i, s in seen if s in allowed]
    result.not_applicable = [i for i, s in seen if s not in allowed]
    params = {
        "action": action,
        "ids": [i for i, _ in applicable],
        "seen": [s for _, s in applicable],
        "reason": reason.strip(),
    }
    return result, applicable, params


def _settle(result: ActionResult, applicable: list[tuple[int, str]], updated: list[tuple[Any, ...]]) -> None:
    """Record what the call changed; the rest moved on since the operator saw them."""
    result.done = sorted(r[0] for r in updated)
    done = set(result.done)
    result.changed = [i for i, _ in applicable if i not in done]


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
    """Apply `action` to the tasks in `seen` [(id, status as seen)], atomically. `actor`:
    the OS user to record as claimed (the database records the role as the actor)."""
    result, applicable, params = _plan(action, seen, reason)
    if not applicable:
        return result
    try:
        async with conn.transaction():
            cur = await conn.execute(ACTION_SQL, {**params, "scope": scope, "claimed": actor or os_user()})
            _settle(result, applicable, await cur.fetchall())
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
        raise _refused(action, exc) from None
    return result


def apply_action_sync(
    conn: Connection, action: str, seen: list[tuple[int, str]], reason: str, *, scope: str, actor: str | None = None
) -> ActionResult:
    """`apply_action` for the CLI (`fsar-tui tasks retry|cancel|requeue`): the same call,
    in one transaction."""
    result, applicable, params = _plan(action, seen, reason)
    if not applicable:
        return result
    try:
        with conn.transaction():
            updated = conn.execute(ACTION_SQL, {**params, "scope": scope, "claimed": actor or os_user()}).fetchall()
            _settle(result, applicable, updated)
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
        raise _refused(action, exc) from None
    return result
