"""Retention in SQL: the facts that decide whether a partition may go, streaming it out
with COPY, dropping it, and loading an archive back. services/retention.py orchestrates;
domain/retention.py decides. Partitions themselves (what exists, making one) are
db/partitions.py's (revision 0029); the tables this module writes are revision 0030's.

Facts of a task range (domain/retention.decide says what each means): a probe of its
lowest id's created_at first (the primary key: one index probe), so a range whose first
task is within the policy is kept without reading it; otherwise one scan for its rows,
those not finished, the newest instant of any row, and the finished ones the rollups have
not counted (revision 0013's rule, as rollup_state says). Samples not folded yet are
folded before the facts are read (the fold is the rollups' own, fsar_fold_duration_samples);
one still unfolded from the range's time keeps it.

Dropping never blocks the fleet for long. The rows are exported first from a snapshot
(REPEATABLE READ, no lock), with the range's fingerprint: the count and the sum of a hash
of every row version's (ctid, xmin) — any UPDATE or DELETE since gives a row a new
version, so a different fingerprint. The drop transaction then sets a lock_timeout,
DETACHes the partition (ACCESS EXCLUSIVE on the parent, as DROP would take), recomputes
the fingerprint — a scan of (ctid, xmin) only, no column is read: 0.1 s for a 200 k-task
range, 12 ms for a day of 19 k events on this 2-core machine; a whole drop transaction of
a day of events held the lock 24 ms (median of 33, max 36) — and DROPs it only when it
matches the archive's; otherwise the transaction rolls back and the partition stays,
whole. The check runs under the statement timeout: one that takes longer keeps the
partition for the next run rather than hold the lock. DETACH … CONCURRENTLY would not
hold the parent's lock at all, but PostgreSQL refuses it on a table with a DEFAULT
partition, which both tables have (revision 0029), and it cannot run in a transaction, so
a failed check could not roll the detach back.

Restoring an archive is db/retention_restore.py's; the drop logs, as the archive's
sha256, the digest that ties the archive to this drop (domain/retention_manifest.
archive_digest), which restore checks the archive against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from psycopg import AsyncConnection, Connection, sql

from fsar_tui.db import partitions
from fsar_tui.db.rows import one
from fsar_tui.domain.retention import EVENTS, TASKS, TERMINAL, GateReach, PartitionFacts, Restore

RETENTION_LOCK = 727_004  # advisory lock key: one retention run (or restore) per database (727003: partitions)
# The partition key of each table: what COPY orders by and restore checks for overlaps.
KEY = {TASKS: "id", EVENTS: "at"}
ORDER = {TASKS: "id", EVENTS: "at, id"}


def available(conn: Connection) -> bool:
    """True when the schema has retention's tables (revision 0030)."""
    return bool(one(conn.execute("SELECT to_regclass('public.retention_log') IS NOT NULL").fetchone())[0])


def database_identity(conn: Connection) -> tuple[str, str]:
    """("<system identifier>/<database oid>", name): which database wrote an archive."""
    ident, name = one(
        conn.execute(
            "SELECT s.system_identifier::text || '/' || d.oid::text, d.datname::text "
            "FROM pg_control_system() s, pg_database d WHERE d.datname = current_database()"
        ).fetchone()
    )
    return str(ident), str(name)


def schema_revision(conn: Connection) -> str | None:
    row = conn.execute("SELECT version_num FROM alembic_version LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def owns_tables(conn: Connection) -> bool:
    """True when this login may drop partitions and load archives as the bulk loader:
    a member of the owner of execution_tasks, task_events and ledger_entries."""
    row = conn.execute(
        """SELECT bool_and(pg_has_role(session_user, c.relowner, 'USAGE')
                           AND pg_has_role(current_user, c.relowner, 'USAGE'))
           FROM pg_class c WHERE c.oid IN ('execution_tasks'::regclass, 'task_events'::regclass,
                                           'ledger_entries'::regclass)"""
    ).fetchone()
    return bool(one(row)[0])


def gate_reaches(conn: Connection) -> list[GateReach]:
    """Every gate, enabled or not: a disabled gate enabled later reads its window too, so
    the floors count it now rather than let a policy drop what it will need."""
    rows = conn.execute(
        """SELECT name, metric, extract(epoch FROM time_window)::bigint,
                  extract(epoch FROM baseline_window)::bigint
           FROM audit_gates ORDER BY name"""
    ).fetchall()
    return [GateReach(*row) for row in rows]


# The drops not restored since, each as its own row: a restore logs the digest of the
# drop it answers (services/retention_restore), so per (table, partition, digest) the
# drops outnumbering the restores are out. A partition name alone is not enough: a day
# dropped, made again by a late event and dropped again is two archives, and restoring
# one leaves the other out (so "its last action" would say whole when it is not).
OPEN_DROPS_CTE = """
    open_drops AS (
        SELECT table_name, partition, max(lower_bound) AS lower_bound, max(upper_bound) AS upper_bound,
               max(at) FILTER (WHERE action = 'dropped') AS at, max(rows) AS rows,
               max(manifest) FILTER (WHERE action = 'dropped') AS manifest{extra}
        FROM retention_log GROUP BY table_name, partition, sha256
        HAVING count(*) FILTER (WHERE action = 'dropped') > count(*) FILTER (WHERE action = 'restored'))"""


def open_drops_cte(*, newest: bool = False) -> str:
    """`WITH`-able open_drops (see above); `newest`: with newest (revision 0031's newest_at,
    else the drop's own time — every row of it was older than that, the cautious side)."""
    extra = ",\n               max(coalesce(newest_at, at)) FILTER (WHERE action = 'dropped') AS newest"
    return OPEN_DROPS_CTE.format(extra=extra if newest else "")


# Per table, the newest instant of any row dropped and not restored since.
ARCHIVED_REACH_SQL = f"""
    WITH {open_drops_cte(newest=True)}
    SELECT table_name, max(newest) FROM open_drops GROUP BY table_name"""


def archived_reach(conn: Connection) -> dict[str, datetime]:
    """Per table, how recent the newest raw row archived and dropped (not restored) is;
    a table with nothing dropped is absent. Empty before revision 0031."""
    has_column = conn.execute(
        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('public.retention_log') "
        "AND attname = 'newest_at' AND NOT attisdropped"
    ).fetchone()
    if has_column is None:
        return {}
    return {str(table): at for table, at in conn.execute(ARCHIVED_REACH_SQL).fetchall() if at is not None}


def columns(conn: Connection, table: str) -> list[tuple[str, str]]:
    """The parent's columns in order, with their types as format_type spells them."""
    rows = conn.execute(
        """SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
           WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum""",
        (f"public.{table}",),
    ).fetchall()
    return [(name, kind) for name, kind in rows]


def fold_samples(conn: Connection) -> None:
    """Fold the duration samples the triggers appended (the rollups' own fold)."""
    conn.execute("SELECT fsar_fold_duration_samples()")


def next_task_id(conn: Connection) -> int:
    """The id the next inserted task gets (the sequence, without advancing it)."""
    last, called = one(conn.execute("SELECT last_value, is_called FROM execution_tasks_id_seq").fetchone())
    return int(last) + (1 if called else 0)


def _ident(name: str) -> sql.Composed:
    return sql.SQL("public.{}").format(sql.Identifier(name))


def in_range(table: str, lower: int | datetime | None, upper: int | datetime | None) -> sql.Composed:
    """`<parent> WHERE <key> in [lower, upper)` with the bounds as literals, so the planner
    prunes to the one partition; read through the parent, whose grants every role has
    (partitions carry none of their own, revision 0029)."""
    key = sql.Identifier(KEY[table])
    conds: list[sql.Composable] = [sql.SQL("true")]
    if lower is not None:
        conds.append(sql.SQL("{} >= {}").format(key, sql.Literal(lower)))
    if upper is not None:
        conds.append(sql.SQL("{} < {}").format(key, sql.Literal(upper)))
    return sql.SQL("{} WHERE {}").format(_ident(table), sql.SQL(" AND ").join(conds))


FIRST_CREATED_SQL = "SELECT created_at FROM {} ORDER BY id LIMIT 1"
TASK_FACTS_SQL = f"""
    SELECT count(*),
           count(*) FILTER (WHERE t.status NOT IN {TERMINAL!r}),
           max(greatest(t.created_at, t.queued_at, t.started_at, t.finished_at)),
           count(*) FILTER (WHERE t.status IN {TERMINAL!r}
                              AND NOT (t.id > st.backfill_target OR t.finished_at >= st.epoch
                                       OR t.id <= st.backfilled_upto))
    FROM (SELECT * FROM {{}}) t CROSS JOIN rollup_state st"""
UNFOLDED_SQL = "SELECT EXISTS (SELECT 1 FROM task_duration_samples WHERE finished_at <= %s)"


def task_facts(conn: Connection, part: partitions.Partition, next_id: int, cutoff: datetime) -> PartitionFacts:
    """The facts of one task range; the scan only when its first task is older than `cutoff`."""
    lower, upper = part.lower, part.upper
    receives = (
        not part.is_default
        and (lower is None or (isinstance(lower, int) and lower <= next_id))
        and (upper is None or (isinstance(upper, int) and next_id < upper))
    )
    base = PartitionFacts(TASKS, part.name, lower, upper, part.is_default, receives_new=receives)
    if part.is_default or receives:
        return base
    where = in_range(TASKS, lower, upper)
    first = conn.execute(sql.SQL(FIRST_CREATED_SQL).format(where)).fetchone()
    if first is None:
        return _replace(base, rows=0)
    if first[0] >= cutoff:
        return _replace(base, first_created=first[0])
    rows, unfinished, newest, uncounted = one(conn.execute(sql.SQL(TASK_FACTS_SQL).format(where)).fetchone())
    unfolded = newest is not None and bool(one(conn.execute(UNFOLDED_SQL, (newest,)).fetchone())[0])
    return _replace(
        base,
        rows=rows,
        unfinished=unfinished,
        newest=newest,
        uncounted=uncounted,
        unfolded=unfolded,
        first_created=first[0],
    )


def _replace(facts: PartitionFacts, **changes: object) -> PartitionFacts:
    from dataclasses import replace

    return replace(facts, **changes)  # type: ignore[arg-type]


# Foreign keys from other tables into execution_tasks (or one of its partitions: revision
# 0029 clones a legacy table's keys onto each), the top-level ones only. PostgreSQL refuses
# to DETACH a range such a key may point into; fsar-tui's own keys into it were dropped
# (revisions 0011, 0030), so any left are a customer's.
REFERENCING_KEYS_SQL = """
    WITH tree AS (SELECT relid FROM pg_partition_tree('public.execution_tasks'))
    SELECT c.conrelid::regclass::text, c.conname::text FROM pg_constraint c
    WHERE c.contype = 'f' AND c.conparentid = 0
      AND c.confrelid IN (SELECT relid FROM tree) AND c.conrelid NOT IN (SELECT relid FROM tree)
    ORDER BY 1, 2"""


def referencing_keys(conn: Connection) -> list[tuple[str, str]]:
    """(table, constraint) of every foreign key from another table into execution_tasks."""
    return [(str(t), str(c)) for t, c in conn.execute(REFERENCING_KEYS_SQL).fetchall()]


def restores(conn: Connection) -> list[Restore]:
    """Every `retention restore` logged, with the archive's range (bounds parsed back
    from the log's text: ids for tasks, ISO instants for events); a bound that does not
    parse is read as open, the cautious side (a wider range keeps more)."""
    rows = conn.execute(
        "SELECT table_name, lower_bound, upper_bound, at FROM retention_log WHERE action = 'restored'"
    ).fetchall()
    return [Restore(str(t), _parse_bound(str(t), lo), _parse_bound(str(t), up), at) for t, lo, up, at in rows]


def _parse_bound(table: str, text: str | None) -> int | datetime | None:
    if text is None:
        return None
    try:
        return int(text) if table == TASKS else datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None


def event_facts(part: partitions.Partition) -> PartitionFacts:
    """A day of events is decided by its bounds alone."""
    return PartitionFacts(EVENTS, part.name, part.lower, part.upper, part.is_default)


def count_rows(conn: Connection, part: partitions.Partition | PartitionFacts) -> int:
    """The rows of a partition's range (through the parent: any role)."""
    query = sql.SQL("SELECT count(*) FROM {}").format(in_range(part.table, part.lower, part.upper))
    return int(one(conn.execute(query).fetchone())[0])


FINGERPRINT_SQL = (
    "SELECT count(*), coalesce(sum(hashtextextended(ctid::text || ':' || xmin::text, 0)::numeric), 0)::text "
    "FROM ONLY {}"
)


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    versions: str  # the sum of the row versions' hashes, as text (numeric)


def fingerprint(conn: Connection, name: str) -> Fingerprint:
    rows, versions = one(conn.execute(sql.SQL(FINGERPRINT_SQL).format(_ident(name))).fetchone())
    return Fingerprint(int(rows), str(versions))


# Per idea and UTC day, the range's last successful implementing task (revision 0030):
# what db/idea_completions reads once the range is gone. The WHERE repeats revision
# 0025's index predicate, so the partition's copy of that index serves it.
COMPLETION_DAYS_SQL = """
    SELECT DISTINCT ON (t.idea_id, (t.finished_at AT TIME ZONE 'UTC')::date)
           t.idea_id, (t.finished_at AT TIME ZONE 'UTC')::date, t.finished_at, t.id, t.task_type, t.ai_model,
           t.rollout_revision_id
    FROM ONLY {} t
    WHERE t.status = 'succeeded' AND t.task_type IN ('idea_implementation', 'implement_idea')
      AND t.idea_id IS NOT NULL AND t.finished_at IS NOT NULL
    ORDER BY t.idea_id, (t.finished_at AT TIME ZONE 'UTC')::date, t.finished_at DESC, t.id DESC"""
KEEP_COMPLETIONS_SQL = """
    INSERT INTO idea_completion_days AS d (idea_id, day, finished_at, task_id, task_type, ai_model,
                                           rollout_revision_id)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (idea_id, day) DO UPDATE SET
        finished_at = EXCLUDED.finished_at, task_id = EXCLUDED.task_id, task_type = EXCLUDED.task_type,
        ai_model = EXCLUDED.ai_model, rollout_revision_id = EXCLUDED.rollout_revision_id
    WHERE (EXCLUDED.finished_at, EXCLUDED.task_id) > (d.finished_at, d.task_id)"""

CompletionDay = tuple[str, date, datetime, int, str, str | None, int | None]


@dataclass
class Export:
    """A partition as read from one snapshot: its fingerprint and, for a task range, the
    idea completions to keep; the rows themselves went to `sink`."""

    fingerprint: Fingerprint
    completions: list[CompletionDay]


def export_partition(
    conn: Connection, table: str, name: str, cols: list[str], write: Callable[[bytes], None] | None
) -> Export:
    """Stream the partition's rows (COPY text, ordered by its key) to `write(bytes)` (None:
    no rows wanted), all from one snapshot with its fingerprint and (task ranges) its
    completions. `conn` is in autocommit; no statement timeout applies (a range is
    millions of rows)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SET LOCAL statement_timeout = 0")
        prints = fingerprint(conn, name)
        completions: list[CompletionDay] = []
        if table == TASKS:
            completions = conn.execute(sql.SQL(COMPLETION_DAYS_SQL).format(_ident(name))).fetchall()
        if write is not None:
            query = sql.SQL("COPY (SELECT {} FROM ONLY {} ORDER BY {}) TO STDOUT").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in cols), _ident(name), sql.SQL(ORDER[table])
            )
            with conn.cursor().copy(query) as copy:
                for data in copy:
                    write(bytes(data))
    return Export(prints, completions)


class Refused(Exception):
    """A restore (or drop) that must not happen: one line saying why; nothing was written."""


def _bound_text(bound: int | datetime | None) -> str | None:
    return None if bound is None else (bound.isoformat() if isinstance(bound, datetime) else str(bound))


def log_action(
    conn: Connection,
    action: str,
    part: partitions.Partition,
    rows: int,
    manifest: str | None,
    sha256: str | None,
    newest: datetime | None = None,
) -> None:
    """One row of retention_log; `newest`: the newest instant of the rows dropped."""
    conn.execute(
        "INSERT INTO retention_log (action, table_name, partition, lower_bound, upper_bound, rows, manifest, sha256, "
        "newest_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            action,
            part.table,
            part.name,
            _bound_text(part.lower),
            _bound_text(part.upper),
            rows,
            manifest,
            sha256,
            newest,
        ),
    )


def _lock_timeout(conn: Connection, ms: int) -> None:
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{int(ms)}ms")))


def drop_partition(
    conn: Connection,
    part: partitions.Partition,
    expected: Fingerprint,
    completions: list[CompletionDay],
    *,
    manifest: str | None,
    sha256: str | None,
    newest: datetime | None,
    lock_timeout_ms: int,
) -> None:
    """DETACH and DROP `part` in one transaction if it is still exactly what was archived;
    the completions and the log row go in with it. Raises Refused (rolled back, the
    partition whole) when it changed; psycopg's LockNotAvailable / QueryCanceled when the
    lock or the check under it took too long (the statement timeout bounds the check)."""
    with conn.transaction():
        _lock_timeout(conn, lock_timeout_ms)
        conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(_ident(part.table), _ident(part.name)))
        if fingerprint(conn, part.name) != expected:
            raise Refused("changed since it was archived (a row was updated or deleted): kept, archived again next run")
        if completions:
            conn.cursor().executemany(KEEP_COMPLETIONS_SQL, completions)
        conn.execute(sql.SQL("DROP TABLE {}").format(_ident(part.name)))
        log_action(conn, "dropped", part, expected.rows, manifest, sha256, newest)


# The days of events dropped and not restored since.
ARCHIVED_EVENTS_SQL = f"""
    WITH {open_drops_cte()}
    SELECT max(upper_bound::timestamptz) FROM open_drops
    WHERE table_name = 'task_events' AND lower_bound IS NOT NULL AND upper_bound IS NOT NULL
      AND lower_bound::timestamptz < %(end)s AND upper_bound::timestamptz > %(start)s"""


HAS_LOG_SQL = "SELECT to_regclass('public.retention_log') IS NOT NULL"


def _life(task: dict[str, Any]) -> dict[str, Any]:
    start = task.get("created_at") or task.get("queued_at")
    return {"start": start, "end": task.get("finished_at") or datetime.now(UTC)}


def events_archived_before(conn: Connection, task: dict[str, Any]) -> datetime | None:
    """For a task's detail: the end of the latest archived (dropped, not restored) day of
    events within its life (created → finished, or now), or None: its trail is whole."""
    if _life(task)["start"] is None or not one(conn.execute(HAS_LOG_SQL).fetchone())[0]:
        return None
    row = conn.execute(ARCHIVED_EVENTS_SQL, _life(task)).fetchone()
    return None if row is None else row[0]


async def events_archived_before_async(conn: AsyncConnection, task: dict[str, Any]) -> datetime | None:
    if _life(task)["start"] is None or not one(await (await conn.execute(HAS_LOG_SQL)).fetchone())[0]:
        return None
    row = await (await conn.execute(ARCHIVED_EVENTS_SQL, _life(task))).fetchone()
    return None if row is None else row[0]
