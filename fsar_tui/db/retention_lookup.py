"""Reads of retention_log (revision 0030) for what retention left behind, as the
operator meets it: a task id whose range was archived and dropped (`tasks show`), and
the drops of the recent past (the audit pass's schedule: a run by another panel or by
cron this interval means this panel's is not needed). db/retention.py writes the log;
this module only reads it, and answers "nothing" on a schema without it.

Whether a partition's rows are out now is db/retention.open_drops_cte's answer (drops
paired with the restores that logged their digest). Task ranges are logged with their id
bounds as text (NULL: MINVALUE / MAXVALUE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import Connection

from fsar_tui.db.retention import open_drops_cte
from fsar_tui.db.rows import one

HAS_LOG_SQL = "SELECT to_regclass('public.retention_log') IS NOT NULL"

# The task range holding `id` that is dropped now (its partition's last action). The
# bounds are cast only when they are whole numbers (a CASE: WHERE's AND does not order
# its operands, so a guard beside the cast would not protect it).
ARCHIVED_TASK_SQL = f"""
    WITH {open_drops_cte()}
    SELECT at, partition, lower_bound, upper_bound, rows, manifest FROM open_drops
    WHERE table_name = 'execution_tasks'
      AND (lower_bound IS NULL
           OR CASE WHEN lower_bound ~ '^-?[0-9]+$' THEN lower_bound::numeric <= %(id)s END)
      AND (upper_bound IS NULL
           OR CASE WHEN upper_bound ~ '^-?[0-9]+$' THEN upper_bound::numeric > %(id)s END)
    ORDER BY at DESC LIMIT 1"""

# The drops of the last `within` seconds, by anyone (a panel, cron, an operator):
# how many, how many rows, the newest one's time and its age by the server's clock.
RECENT_DROPS_SQL = """
    SELECT count(*), coalesce(sum(rows), 0), max(at), extract(epoch FROM now() - max(at))::float8
    FROM retention_log WHERE action = 'dropped' AND at > now() - make_interval(secs => %(within)s::float8)"""


@dataclass(frozen=True)
class ArchivedRange:
    """A task range retention archived and dropped, as retention_log recorded it."""

    at: datetime  # when it was dropped
    partition: str
    lower: str | None  # its id bounds as logged (None: unbounded)
    upper: str | None
    rows: int
    manifest: str | None  # the archive's manifest; None: dropped with --no-archive


@dataclass(frozen=True)
class RecentDrops:
    partitions: int
    rows: int
    newest_at: datetime
    age_s: float  # seconds since the newest, by the database server's clock


def _has_log(conn: Connection) -> bool:
    return bool(one(conn.execute(HAS_LOG_SQL).fetchone())[0])


def archived_task(conn: Connection, task_id: int) -> ArchivedRange | None:
    """The dropped (and not restored) range of execution_tasks that held `task_id`, or
    None: retention never dropped it (the task never existed, or was deleted)."""
    if not _has_log(conn):
        return None
    row = conn.execute(ARCHIVED_TASK_SQL, {"id": task_id}).fetchone()
    if row is None:
        return None
    at, partition, lower, upper, rows, manifest = row
    return ArchivedRange(at, str(partition), lower, upper, int(rows), manifest)


def recent_drops(conn: Connection, within_s: float) -> RecentDrops | None:
    """The partitions dropped in the last `within_s` seconds, or None when there were none."""
    if not _has_log(conn):
        return None
    count, rows, newest, age = one(conn.execute(RECENT_DROPS_SQL, {"within": within_s}).fetchone())
    if not count or newest is None:
        return None
    return RecentDrops(int(count), int(rows), newest, max(0.0, float(age)))
