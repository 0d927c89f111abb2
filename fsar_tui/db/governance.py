"""Data governance in the database: what the connected role may do, logged reveals,
anonymization batches, and the facts `fsar-tui security-audit` judges.

- `privileges()`: read once at connect; the app hides what the role cannot do
  (Postgres refuses it regardless — revision 0017's grants).
- `record_reveal()`: EXECUTE on fsar_record_reveal is what "allowed to see raw data"
  means; the call appends the reveal to operator_actions, so no reveal goes unlogged.
  Since revision 0020 it is SECURITY DEFINER (no fsar role may INSERT into the log) and
  the chain trigger records the authenticated role as the actor.
- Anonymization: keyset batches by id over rows older than the cutoff; the scrub
  itself (domain/redact's policy) runs in Python; only rows that change are written,
  each batch in its own transaction, so an interrupted run keeps what it finished and
  a re-run resumes by finding nothing left in the done part.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from fsar_tui.db.rows import one
from fsar_tui.errors import UsageError, first_line

ROLES = ("fsar_viewer", "fsar_operator", "fsar_admin")


@dataclass(frozen=True)
class Privileges:
    role: str
    superuser: bool
    act: bool  # retry/cancel, rollback, proposal decisions, alert acks (fsar_operator)
    override: bool  # audit gate overrides (fsar_admin)
    reveal: bool  # see raw data, logged (fsar_admin)
    anonymize: bool  # rewrite payloads/results and ledger metadata (fsar_admin)

    @property
    def label(self) -> str:
        if self.superuser:
            return "superuser"
        if self.reveal and self.override:
            return "admin"
        return "operator" if self.act else "viewer"


# Since revision 0020 the actions are functions: a role may act if it may EXECUTE them
# (to_regprocedure: NULL, hence false, on a schema that predates them).
# Since revision 0020 the actions are functions: a role may act if it may EXECUTE them
# (to_regprocedure: NULL, hence false, on a schema that predates them).
TASK_ACTION = "fsar_task_action(text, bigint[], text[], text, text, text)"
DECIDE = "fsar_proposal_decide(text, text, text, text, text)"
OVERRIDE = "fsar_gate_override(text, text, timestamptz, text)"
PRIVILEGES_SQL = f"""
    SELECT current_user, r.rolsuper,
           coalesce(has_function_privilege(to_regprocedure('{TASK_ACTION}'), 'EXECUTE')
                    AND has_function_privilege(to_regprocedure('{DECIDE}'), 'EXECUTE'), false),
           coalesce(has_function_privilege(to_regprocedure('{OVERRIDE}'), 'EXECUTE'), false),
           has_function_privilege('fsar_record_reveal(text, text, text)', 'EXECUTE'),
           has_column_privilege('execution_tasks', 'payload', 'UPDATE')
             AND has_column_privilege('ledger_entries', 'metadata', 'UPDATE')
             AND has_column_privilege('stripe_events', 'payload', 'UPDATE')
    FROM pg_roles r WHERE r.rolname = current_user"""


def privileges_sync(conn: Connection) -> Privileges:
    return Privileges(*one(conn.execute(PRIVILEGES_SQL).fetchone()))


async def privileges(conn: AsyncConnection) -> Privileges:
    return Privileges(*one(await (await conn.execute(PRIVILEGES_SQL)).fetchone()))


class RevealRefused(UsageError):
    """The role may not see raw data (not fsar_admin): nothing is shown raw."""


def _refused(role_hint: str) -> RevealRefused:
    return RevealRefused(f"--reveal refused: role {role_hint} may not see raw data (grant it fsar_admin)")


def _unlogged(exc: psycopg.Error) -> RevealRefused:
    return RevealRefused(f"--reveal refused: the reveal could not be logged ({first_line(exc)})")


def record_reveal_sync(conn: Connection, *, actor: str, target: str, reason: str) -> int:
    """Log a reveal (returns its seq) or raise RevealRefused: not allowed, or not loggable
    (a read-only session, a standby) — no log row, no reveal."""
    try:
        with conn.transaction():
            seq: int = one(conn.execute("SELECT fsar_record_reveal(%s, %s, %s)", (actor, target, reason)).fetchone())[0]
            return seq
    except psycopg.errors.InsufficientPrivilege:
        raise _refused(conn.info.user) from None
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.UndefinedFunction) as exc:
        raise _unlogged(exc) from None


async def record_reveal(conn: AsyncConnection, *, actor: str, target: str, reason: str) -> int:
    try:
        async with conn.transaction():
            cur = await conn.execute("SELECT fsar_record_reveal(%s, %s, %s)", (actor, target, reason))
            seq: int = one(await cur.fetchone())[0]
            return seq
    except psycopg.errors.InsufficientPrivilege:
        raise _refused(conn.info.user) from None
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.UndefinedFunction) as exc:
        raise _unlogged(exc) from None


# -- anonymization --------------------------------------------------------------------------

# table → (which rows are old enough, the scrubbed columns, a key below every id).
# Tasks: finished ones only, by when they finished — a queued or running task's payload is
# still input to an agent. Stripe events keep the raw event, billing details included.
SCRUBBED = {
    "execution_tasks": (
        "finished_at < %s AND status IN ('succeeded', 'failed', 'cancelled')",
        ("payload", "result", "error"),
        0,
    ),
    "ledger_entries": ("occurred_at < %s", ("metadata",), 0),
    "stripe_events": ("created < %s", ("payload",), ""),
}


def batches(conn: Connection, table: str, cutoff: datetime, size: int) -> Iterator[list[TupleRow]]:
    """Rows (id, *scrubbed columns) older than the cutoff, by id: each statement reads the
    next `size` rows by primary key and returns those old enough (a batch may have fewer,
    an empty one is not yielded). So one statement's work is bounded by `size` whatever
    the table's size and however few of its rows are old — the statement timeout bounds a
    batch, never the run. (`WHERE old_enough … LIMIT size` read on until it had found
    `size` old rows: the whole table in one statement when it has few.)"""
    old_enough, columns, last = SCRUBBED[table]
    # Columns of rows not old enough are not sent (nor detoasted): NULL in their place.
    picked = ", ".join(f"CASE WHEN due THEN {c} END" for c in columns)
    while True:
        rows = conn.execute(
            f"SELECT id, due, {picked} FROM (SELECT id, ({old_enough}) AS due, {', '.join(columns)} "
            f"FROM {table} WHERE id > %s ORDER BY id LIMIT %s) window_",
            (cutoff, last, size),
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        due = [(row[0], *row[2:]) for row in rows if row[1]]
        if due:
            yield due


def _param(column: str, value: Any) -> Any:
    return value if column == "error" or value is None else Jsonb(value)


def write_scrubbed(conn: Connection, table: str, changes: list[tuple[TupleRow, TupleRow]]) -> int:
    """Write the scrubbed values [(old row, new row)], one transaction, each only if the row
    still holds what was read (a task retried meanwhile is left for the next run).
    Returns how many rows were written."""
    _, columns, _ = SCRUBBED[table]
    sets = ", ".join(f"{c} = %s" for c in columns)
    same = " AND ".join(f"{c} IS NOT DISTINCT FROM %s" for c in columns)
    with conn.transaction():
        with conn.cursor() as cur:
            cur.executemany(
                f"UPDATE {table} SET {sets} WHERE id = %s AND {same}",
                [
                    tuple(_param(c, v) for c, v in zip(columns, new[1:], strict=True))
                    + (old[0],)
                    + tuple(_param(c, v) for c, v in zip(columns, old[1:], strict=True))
                    for old, new in changes
                ],
            )
            return cur.rowcount


def log_anonymize(
    conn: Connection, *, actor: str, cutoff: datetime, reason: str, action: str, counts: dict[str, Any] | None = None
) -> None:
    """`anonymize.start` before the first write (an interrupted run still left its mark),
    `anonymize` with the counts at the end — through fsar_log_anonymize (fsar_admin, revision
    0020). `actor`: the OS user, as claimed (the database records the role)."""
    conn.execute(
        "SELECT fsar_log_anonymize(%s, %s, %s, %s, %s)",
        (
            action,
            f"older-than:{cutoff.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
            reason,
            None if counts is None else Jsonb(counts),
            actor,
        ),
    )


# -- security audit facts ---------------------------------------------------------------------


def role_facts(conn: Connection) -> tuple[str, bool, bool]:
    """(current role, superuser, bypasses row security)."""
    role, superuser, bypass_rls = one(
        conn.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    )
    return role, superuser, bypass_rls


def try_change_operator_actions(conn: Connection) -> dict[str, str | None]:
    """Attempt UPDATE and DELETE of the log as this role, each in a rolled-back savepoint:
    {verb: None if it was refused, else what happened}. With an empty log no row
    trigger can fire, so the trigger's presence is checked instead."""
    out: dict[str, str | None] = {}
    rows = one(conn.execute("SELECT count(*) FROM (SELECT 1 FROM operator_actions LIMIT 1) s").fetchone())[0]
    for verb, sql in (
        ("UPDATE", "UPDATE operator_actions SET reason = reason"),
        ("DELETE", "DELETE FROM operator_actions"),
    ):
        try:
            with conn.transaction(force_rollback=True):
                cur = conn.execute(sql)
                changed = cur.rowcount
            out[verb] = f"{changed} row(s) {verb.lower()}d" if changed else None
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException):
            out[verb] = None
    if not rows:
        armed = one(
            conn.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'operator_actions'::regclass "
                "AND tgname = 'operator_actions_append_only' AND tgenabled IN ('O', 'A')"
            ).fetchone()
        )[0]
        if not armed:
            out = dict.fromkeys(out, "the append-only trigger is missing or disabled")
    return out


def viewer_write_privileges(conn: Connection) -> list[str]:
    """What fsar_viewer (or a role it belongs to) could change: tables with a table- or
    column-level write grant, sequences it may advance, functions of ours that write."""
    return (
        [
            r[0]
            for r in conn.execute(
                """SELECT c.relname FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
             AND CASE WHEN c.relkind <> 'S' THEN  -- the planner may test before filtering
                      has_table_privilege('fsar_viewer', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                      OR has_any_column_privilege('fsar_viewer', c.oid, 'INSERT, UPDATE') END
           UNION ALL
           SELECT c.relname || ' (sequence)' FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
             AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege('fsar_viewer', c.oid, 'USAGE, UPDATE') END
           UNION ALL
           SELECT 'fsar_record_reveal()' WHERE has_function_privilege('fsar_viewer',
                                                   'fsar_record_reveal(text, text, text)', 'EXECUTE')
           ORDER BY 1"""
            ).fetchall()
        ]
        if one(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsar_viewer')").fetchone())[0]
        else []
    )


def roles_present(conn: Connection) -> dict[str, bool | None]:
    """role → can it log in (None: missing)."""
    found: dict[str, bool] = dict(
        conn.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)", (list(ROLES),)).fetchall()
    )
    return {r: found.get(r) for r in ROLES}
