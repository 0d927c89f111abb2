"""Rollouts SQL: the targets and their readiness, and the rollback transaction.

Rollback (and roll-forward, which is a rollback to a newer revision) is one
transaction: check that the active revision is the one the operator saw (else Conflict,
naming who changed it), re-hash the chosen revision's artifact here (a tampered artifact
refuses: it is a failing hard gate), then fsar_rollout_rollback (revision 0020,
db/action_functions.py) locks the target's row, checks the active revision again, appends
a revision that copies the chosen one inside the database (jsonb to jsonb, so it is
byte-identical), makes it active — the rollouts trigger of revision 0010 sends NOTIFY —
and appends to operator_actions. No fsar role may write rollouts or revisions directly.
Two operators racing: the second waits on the row lock, then sees the new active
revision and gets a Conflict; never a double rollback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import Connection

from fsar_tui.db import operator_log
from fsar_tui.db.rows import one
from fsar_tui.domain.rollouts import Preview, artifact_sha256, default_target, move_kind
from fsar_tui.errors import CheckFailed, UsageError, first_line


class Conflict(CheckFailed):
    """Someone else changed the target first."""


class ArtifactBroken(CheckFailed):
    """The chosen revision's artifact no longer matches its hash."""


@dataclass(frozen=True)
class Target:
    target: str
    kind: str
    task_type: str | None
    active: int | None
    latest: int
    rollback_to: int | None
    ready: bool
    problem: str | None  # why a rollback would refuse


def list_targets(conn: Connection) -> list[Target]:
    rows = conn.execute(
        """SELECT r.target, r.kind, r.task_type, r.active_revision, max(rr.revision),
                  (SELECT jsonb_build_object('artifact', p.artifact, 'sha256', p.sha256) FROM rollout_revisions p
                   WHERE p.rollout_id = r.id AND p.revision = r.active_revision - 1)
           FROM rollouts r JOIN rollout_revisions rr ON rr.rollout_id = r.id
           GROUP BY r.id ORDER BY r.target"""
    ).fetchall()
    out = []
    for target, kind, task_type, active, latest, previous in rows:
        to = default_target(active)
        if to is None or previous is None:
            out.append(Target(target, kind, task_type, active, latest, None, False, "no earlier revision"))
        elif artifact_sha256(previous["artifact"]) != previous["sha256"]:
            out.append(
                Target(
                    target,
                    kind,
                    task_type,
                    active,
                    latest,
                    to,
                    False,
                    f"revision {to}'s artifact does not match its sha256",
                )
            )
        else:
            out.append(Target(target, kind, task_type, active, latest, to, True, None))
    return out


def preview(conn: Connection, target: str, to: int | None) -> Preview:
    row = conn.execute(
        """SELECT r.id, r.task_type, r.active_revision, a.artifact FROM rollouts r
           JOIN rollout_revisions a ON a.rollout_id = r.id AND a.revision = r.active_revision
           WHERE r.target = %s""",
        (target,),
    ).fetchone()
    if row is None:
        raise UsageError(f"no rollout target {target!r} (see `fsar-tui rollouts list`)")
    rollout_id, task_type, active, current = row
    to = default_target(active) if to is None else to
    if to is None:
        raise UsageError(f"{target} has no earlier revision to roll back to")
    if to == active:
        raise UsageError(f"revision {to} of {target} is already active")
    chosen = conn.execute(
        "SELECT artifact FROM rollout_revisions WHERE rollout_id = %s AND revision = %s", (rollout_id, to)
    ).fetchone()
    if chosen is None:
        raise UsageError(f"{target} has no revision {to}")
    in_flight = one(
        conn.execute(
            "SELECT count(*) FROM execution_tasks WHERE status = 'running' AND (%s::text IS NULL OR task_type = %s)",
            (task_type, task_type),
        ).fetchone()
    )[0]
    verdicts = conn.execute(
        """SELECT g.name, r.verdict, r.at FROM audit_gates g
           LEFT JOIN LATERAL (SELECT verdict, at FROM audit_runs WHERE gate_id = g.id ORDER BY at DESC LIMIT 1) r
                ON true
           WHERE g.enabled AND (g.scope ->> 'task_type' IS NULL OR g.scope ->> 'task_type' = %s)
           ORDER BY g.name""",
        (task_type,),
    ).fetchall()
    origins = _origins(conn, rollout_id, (to, active))
    canary = conn.execute(
        "SELECT canary_revision, weight FROM rollout_canaries WHERE rollout_id = %s AND state = 'running'",
        (rollout_id,),
    ).fetchone()
    kind = move_kind(origins[to], origins[active])
    return Preview(target, active, to, current, chosen[0], in_flight, verdicts, kind, canary and (canary[0], canary[1]))


# Revisions may be copies of copies (a rollback of a roll-forward…): follow rollback_of to
# the revision first written, whose number says how old the content is.
ORIGINS_SQL = """
    WITH RECURSIVE chain AS (
        SELECT revision AS start, revision, rollback_of FROM rollout_revisions
        WHERE rollout_id = %(id)s AND revision = ANY(%(revisions)s)
        UNION ALL
        SELECT c.start, r.revision, r.rollback_of FROM chain c
        JOIN rollout_revisions r ON r.rollout_id = %(id)s AND r.revision = c.rollback_of)
    SELECT start, revision FROM chain WHERE rollback_of IS NULL"""


def _origins(conn: Connection, rollout_id: int, revisions: Iterable[int]) -> dict[int, int]:
    return dict(conn.execute(ORIGINS_SQL, {"id": rollout_id, "revisions": list(revisions)}).fetchall())


def rollback(conn: Connection, target: str, to: int, *, expected_active: int, actor: str, reason: str) -> int:
    """The rollback transaction; returns the new (active) revision number."""
    with conn.transaction():
        return _apply(conn, target, to, expected_active=expected_active, actor=actor, reason=reason)


def rehearse(conn: Connection, target: Target) -> str | None:
    """Run the target's rollback (to its rollback revision) inside a transaction that is
    rolled back: the artifact is re-hashed and every statement of the real path runs.
    None when it would work, else why not."""
    if target.rollback_to is None:
        return target.problem
    try:
        with conn.transaction(force_rollback=True):
            _apply(
                conn,
                target.target,
                target.rollback_to,
                expected_active=target.active,
                actor="fsar-tui rehearsal",
                reason="rollouts verify (rolled back)",
            )
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred checks a commit would run
    except psycopg.Error as exc:
        return f"rehearsal failed: {first_line(exc)}"
    except CheckFailed as exc:
        return exc.message
    return None


ROLLBACK_SQL = "SELECT outcome, new_revision, move FROM fsar_rollout_rollback(%s, %s::integer, %s::integer, %s, %s)"


def _conflict(conn: Connection, target: str, active: int | None) -> Conflict:
    who = operator_log.last_change(conn, f"rollout:{target}")
    by = f" by {who[0]} ({who[1]} at {who[2]:%Y-%m-%d %H:%M:%S %Z})" if who else ""
    return Conflict(f"{target} changed while you decided: revision {active} is active now{by}; nothing was done")


def _apply(conn: Connection, target: str, to: int, *, expected_active: int | None, actor: str, reason: str) -> int:
    """The rollback's statements, in the caller's transaction. `actor`: the OS user, as
    claimed (the database records the role)."""
    row = conn.execute("SELECT id, active_revision FROM rollouts WHERE target = %s", (target,)).fetchone()
    if row is None:
        raise UsageError(f"no rollout target {target!r}")
    rollout_id, active = row
    if active != expected_active:
        raise _conflict(conn, target, active)
    chosen = conn.execute(
        "SELECT artifact, sha256 FROM rollout_revisions WHERE rollout_id = %s AND revision = %s", (rollout_id, to)
    ).fetchone()
    if chosen is None:
        raise UsageError(f"{target} has no revision {to}")
    # Revisions are append-only (a trigger): what is checked here is what the function copies.
    if artifact_sha256(chosen[0]) != chosen[1]:
        raise ArtifactBroken(
            f"{target} revision {to}: the artifact does not match its sha256; refusing to roll "
            f"back to it (a failing hard gate)"
        )
    outcome, new, _ = one(conn.execute(ROLLBACK_SQL, (target, to, expected_active, reason, actor)).fetchone())
    if outcome == "conflict":  # someone committed between our read and the function's lock
        raise _conflict(conn, target, new)
    if outcome != "done":
        raise UsageError(f"{target}: {outcome}")
    revision: int = new
    return revision
