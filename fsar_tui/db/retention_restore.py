"""Restoring an archive in SQL: the retention_log entries an archive is checked against,
where its rows go, whether any of them is in the table already, and the load itself.
services/retention_restore.py orchestrates; domain/retention_manifest.py decides what
matches; db/retention.py writes the log and drops.

Where the rows go: into whatever partition(s) cover the archive's range now — after a
downgrade below revision 0029 and an upgrade again, the re-adopted `*_p0` covers every
id and every past day, and a late row may have made a dropped day's partition again —
and only when nothing covers it into a partition made for its bounds
(db/partitions.create_*; a range partly covered is refused: the rest would land in
DEFAULT). Whether rows exist already is asked by primary key (execution_tasks: id;
task_events: (id, at)), for the archive's own keys, not by range: other rows of the
range are no reason to refuse. The unique indexes say it again during the load.

The load is COPY … FROM STDIN into the parent, routed to the partitions, under
`fsar.bulk_load = on` (revision 0004), which the row triggers honour only for the tables'
owner (fsar_bulk_loader(), revision 0028; other roles may not even call it): the
counters, the rollups, task_events and the price trigger skip the rows, which they
counted when the rows were first written; a row outside the archive's range (the parent
routes every row) rolls it back. One transaction with its 'restored' log row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from psycopg import Connection, sql

from fsar_tui.db import partitions
from fsar_tui.db.retention import Refused, count_rows, in_range, log_action
from fsar_tui.db.rows import one
from fsar_tui.domain.retention import EVENTS, TASKS
from fsar_tui.domain.retention_manifest import LogEntry, range_cover

# Each parent's primary key: the columns a restored row is checked by.
PRIMARY_KEY = {TASKS: ("id",), EVENTS: ("id", "at")}
KEYS_PRESENT_SQL = {
    TASKS: "SELECT count(*) FROM {} AND id = ANY(%s::bigint[])",
    EVENTS: "SELECT count(*) FROM {} AND (id, at) IN (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]))",
}
KEY_BATCH = 10_000


class NotOwner(Refused):
    """This login may not load rows past the triggers: not a member of the tables' owner."""


def log_entries(conn: Connection, table: str, partition: str) -> list[LogEntry]:
    """Every retention_log row of `partition` of `table`, in the order written."""
    rows = conn.execute(
        "SELECT id, action, lower_bound, upper_bound, rows, sha256 FROM retention_log "
        "WHERE table_name = %s AND partition = %s ORDER BY id",
        (table, partition),
    ).fetchall()
    return [LogEntry(int(i), str(a), lo, up, int(n), sha) for i, a, lo, up, n, sha in rows]


def _batches(keys: Iterable[tuple[str, ...]]) -> Iterator[list[tuple[str, ...]]]:
    it = iter(keys)
    while batch := list(islice(it, KEY_BATCH)):
        yield batch


def keys_present(conn: Connection, part: partitions.Partition, keys: Iterable[tuple[str, ...]]) -> int:
    """How many of `keys` (the archive's primary keys, as COPY text) are rows of the table."""
    query = sql.SQL(KEYS_PRESENT_SQL[part.table]).format(in_range(part.table, part.lower, part.upper))
    found = 0
    for batch in _batches(keys):
        found += int(one(conn.execute(query, [list(column) for column in zip(*batch, strict=True)]).fetchone())[0])
    return found


def range_has_rows(conn: Connection, part: partitions.Partition) -> bool:
    """True when the parent holds any row of the partition's range (in any partition)."""
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(in_range(part.table, part.lower, part.upper))
    return bool(one(conn.execute(query).fetchone())[0])


def covering(conn: Connection, part: partitions.Partition) -> tuple[str, list[str]]:
    """("none" | "whole", the partitions covering the range now); Refused when partly."""
    parts = [p for p in partitions.list_partitions(conn, part.table) if not p.is_default]
    cover = range_cover([(p.lower, p.upper) for p in parts], part.lower, part.upper)
    if cover == "part":
        raise Refused(
            f"the range of {part.name} is only partly covered by the partitions of {part.table} "
            "(the rest would land in DEFAULT): nothing written"
        )
    names = [p.name for p in parts if range_cover([(p.lower, p.upper)], part.lower, part.upper) != "none"]
    return cover, names


def check_keys(conn: Connection, part: partitions.Partition, keys: Callable[[], Iterable[tuple[str, ...]]]) -> None:
    """Refused when any of the archive's rows is in the table already (by primary key)."""
    if not range_has_rows(conn, part):
        return  # nothing of the range at all: no key to probe
    present = keys_present(conn, part, keys())
    if present:
        raise Refused(
            f"{present:,} of the archive's rows are in {part.table} already, by primary key "
            "(restored before?): nothing written"
        )


def _make_partition(conn: Connection, part: partitions.Partition) -> str:
    if part.table == TASKS:
        if not isinstance(part.upper, int) or not (part.lower is None or isinstance(part.lower, int)):
            raise Refused("a task range needs whole-number bounds")
        name = partitions.create_task_partition(conn, part.lower, part.upper)
    else:
        if part.lower is None or isinstance(part.lower, int):
            raise Refused("a day of events needs a lower bound")
        name = partitions.create_event_partition(conn, part.lower.date())
    made = [p for p in partitions.list_partitions(conn, part.table) if p.name == name]
    if not made or (made[0].lower, made[0].upper) != (part.lower, part.upper):
        raise Refused(f"the partition made for the range ({name}) has other bounds: nothing written")
    return name


def restore_partition(
    conn: Connection,
    part: partitions.Partition,
    cols: list[str],
    chunks: Iterable[bytes],
    check: Callable[[int], str | None],
    keys: Callable[[], Iterable[tuple[str, ...]]],
    *,
    manifest: str,
    sha256: str,
    lock_timeout_ms: int,
) -> tuple[int, list[str]]:
    """Load the archive's rows (`chunks`, COPY text of `cols`) as the bulk loader in one
    transaction, into the partitions covering `part`'s range or one made for it;
    `check(rows copied)` returns a problem to roll it all back. (rows, the partitions
    the rows went into). Raises NotOwner, or Refused when rows exist already (`keys()`:
    the archive's primary keys) or the range is partly covered."""
    with conn.transaction():
        conn.execute("SET LOCAL fsar.bulk_load = 'on'")
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{int(lock_timeout_ms)}ms")))
        if not one(conn.execute("SELECT fsar_bulk_loader()").fetchone())[0]:
            raise NotOwner("only the tables' owner loads rows past the triggers")
        cover, into = covering(conn, part)
        if cover == "none":
            into = [_make_partition(conn, part)]
        check_keys(conn, part, keys)  # a new partition may hold rows DEFAULT had caught
        before = count_rows(conn, part)
        query = sql.SQL("COPY public.{} ({}) FROM STDIN").format(
            sql.Identifier(part.table), sql.SQL(", ").join(sql.Identifier(c) for c in cols)
        )
        cur = conn.cursor()
        with cur.copy(query) as copy:
            for chunk in chunks:
                copy.write(chunk)
        rows = cur.rowcount
        outside = rows - (count_rows(conn, part) - before)
        if outside:  # routed by the parent, they went to other partitions: not this range's rows
            raise Refused(f"{outside:,} of the archive's rows lie outside its range: nothing written")
        problem = check(rows)
        if problem:
            raise Refused(f"{problem}: nothing written")
        log_action(conn, "restored", part, rows, manifest, sha256)
    return rows, into
