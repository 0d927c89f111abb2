"""Partitions of execution_tasks (RANGE on id) and task_events (RANGE on at, one UTC day
each): what exists, and making the ones that should (revision 0029 partitioned them).

The work is done by the database (db/partition_functions.py, created by revision 0029),
so the same rules hold whoever calls: this module only calls and reads.

- `list_partitions(conn, table)`: the partitions of a parent, sorted by lower bound
  (None = MINVALUE first), the DEFAULT partition last. A time bound Python's datetime
  cannot hold (after year 9999, before year 1) never raises: the partition is `opaque`,
  that bound and its upper bound None (open-ended: retention keeps it).
- `ensure_partitions(conn, now=…)`: creates what is missing — every gap in the task ids
  from the TASK_CHUNK of the bulk's highest id (from the sequence: a stray id far above
  drags nothing) to TASK_IDS_AHEAD ids past it, every missing UTC day of task_events
  from `now`'s to EVENT_DAYS_AHEAD days ahead — and a partition for every chunk or day a
  DEFAULT partition caught rows of within the horizons (rows outside stay in DEFAULT),
  moving those rows into it; at most 100 chunks or days a call. Older gaps are
  retention's and are left alone. Returns the names it created. The limits and why:
  db/partition_functions.py, "Limits" (revision 0032). Idempotent; two processes at once take turns
  (the parents locked ONLY in SHARE UPDATE EXCLUSIVE, then a transaction-level advisory
  lock; the second finds nothing to do); gives up after a 3 s lock_timeout (a bulk load
  holds the tasks), to be retried by the next audit pass.
  EXECUTE: fsar_operator and up (the audit pass; SECURITY DEFINER, the partitions are
  owned by the tables' owner); `now` must then be within a day of the database's clock,
  and at most 10 M ids / 60 days ahead (5x and ~4x the defaults below) may be asked.
- `ensure_range(conn, first_id=…, last_id=…, first_day=…, last_day=…)`: partitions for
  the gaps of an id range and a day range (the seeder, before it loads).
- `create_task_partition(conn, lower, upper)` / `create_event_partition(conn, day)`: one
  partition, for `retention restore` to recreate a dropped range (the table's owner only).
  An existing partition with exactly these bounds is returned as is; one that overlaps
  otherwise is an error; rows of the range caught by DEFAULT are moved into the new one.
- `rows_in_default(conn, table)`: rows the DEFAULT partition (the safety net: an insert
  never fails for want of a partition) holds — `ensure_partitions` moves them out.

Moving rows out of DEFAULT happens in one transaction: DEFAULT is detached, the new
partition created and filled from it, the rows deleted from it, both attached again.
No trigger fires (the detached tables have none), so counts, rollups and task_events see
nothing move. A foreign key referencing execution_tasks (ledger_entries.task_id) would
forbid detaching DEFAULT while it holds referenced rows, so such constraints are dropped
for the move and added back, validated, in the same transaction.

For retention (R2) — dropping a task partition and ledger_entries.task_id:
ledger_entries.task_id → execution_tasks(id) ON DELETE SET NULL is a foreign key to the
partitioned table: PostgreSQL refuses to DETACH (or DROP) a task partition while a ledger
entry references one of its rows. Do NOT `UPDATE ledger_entries SET task_id = NULL` to
get past it: ledger entries are money and outlive the raw task rows. Who reads
ledger_entries.task_id: db/stripe.charge_facts hands a refund or dispute the task of the
charge it reverses (attribution to the task that earned the money), db/stripe.
existing_task_id gates a new charge's task hint on the task existing, the seeder and the
simulator write it, and operators join it to tasks and to the archive. NULLing it loses
that attribution for good, and would also fire the ledger triggers. Recommendation: a
revision of retention's own drops `ledger_entries_task_id_fkey` (as revision 0011 did for
task_events, whose reference is also guaranteed by construction: nothing but retention
deletes tasks, and retention archives a range before dropping it), so task_id stays a
historical reference that resolves against the archive once the task's partition is
gone; `ledger_refs(conn, lower, upper)` counts the entries pointing into a range, for
the archive's manifest. Until that revision, a range with referenced tasks cannot be
dropped (and must not be emptied by DELETE either: ON DELETE SET NULL would fire).
(Revision 0030, retention's, does drop it.)

What retention can drop: a day of task_events, a chunk of task ids — and each adopted
first partition (`*_p0`: a legacy table's rows up to the adoption) only as a whole, once
everything in it is past the policy; no partition is split or emptied by DELETE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from psycopg import Connection, sql

from fsar_tui.db.partition_functions import CHUNK
from fsar_tui.db.rows import one

TASKS, EVENTS = "execution_tasks", "task_events"
PARENTS = {TASKS: "bigint", EVENTS: "timestamptz"}  # parent → the partition key's type
TASK_CHUNK = CHUNK  # ids per task partition
# What the audit pass asks for; a non-owner may ask for up to OPERATOR_MAX_* (the headroom).
TASK_IDS_AHEAD = 2 * TASK_CHUNK  # ids beyond the bulk's highest that have a partition
EVENT_DAYS_AHEAD = 14  # UTC days beyond today that have a partition


@dataclass(frozen=True)
class Partition:
    table: str  # "execution_tasks" | "task_events" (the parent)
    name: str  # the partition's relation name
    lower: int | datetime | None  # None = MINVALUE (or opaque)
    upper: int | datetime | None  # None = MAXVALUE (or opaque); both None and is_default for the DEFAULT partition
    is_default: bool
    # A bound Python's datetime cannot hold (past year 9999, before year 1: revision 0032
    # makes none, older functions did): that bound None, and the upper one too — an
    # open-ended range, which retention never drops.
    opaque: bool = False


# The bounds as pg_get_expr prints them ("FOR VALUES FROM ('1') TO ('2')", MINVALUE,
# "DEFAULT"), cast back in the same session: its output is valid input whatever the
# session's TimeZone and DateStyle. Sorted here, in the key's own order (MINVALUE first,
# DEFAULT last), so a bound Python cannot hold still sorts where it belongs. Times come
# back as UTC wall-clock values (tzinfo added below): whether Python can hold one then
# does not depend on the session's TimeZone.
LIST_SQL = """
    WITH parts AS (
        SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS expr
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass(%(parent)s) AND c.relispartition),
    parsed AS (
        SELECT name, expr = 'DEFAULT' AS is_default,
               regexp_match(expr, '^FOR VALUES FROM \\((.*)\\) TO \\((.*)\\)$') AS b
        FROM parts),
    typed AS (
        SELECT name, is_default,
               CASE WHEN b[1] LIKE '''%%' THEN btrim(b[1], '''')::{type} END AS lo,
               CASE WHEN b[2] LIKE '''%%' THEN btrim(b[2], '''')::{type} END AS hi
        FROM parsed),
    held AS (
        SELECT *, {holds_lo} AS lo_ok, {holds_hi} AS hi_ok FROM typed)
    SELECT name, is_default, CASE WHEN lo_ok THEN {out_lo} END,
           CASE WHEN lo_ok AND hi_ok THEN {out_hi} END, NOT (lo_ok AND hi_ok)
    FROM held ORDER BY is_default, lo NULLS FIRST, name"""
# The instants Python's datetime holds in UTC (years 1..9999), and how a time is returned.
_HOLDS = "({v} IS NULL OR ({v} >= '0001-01-01 00:00:00+00' AND {v} < '10000-01-01 00:00:00+00'))"
_LIST = {
    "bigint": {"holds_lo": "true", "holds_hi": "true", "out_lo": "lo", "out_hi": "hi"},
    "timestamptz": {
        "holds_lo": _HOLDS.format(v="lo"),
        "holds_hi": _HOLDS.format(v="hi"),
        "out_lo": "lo AT TIME ZONE 'UTC'",
        "out_hi": "hi AT TIME ZONE 'UTC'",
    },
}


def _parent(table: str) -> str:
    if table not in PARENTS:
        raise ValueError(f"not a partitioned table of fsar-tui: {table!r}")
    return table


def list_partitions(conn: Connection, table: str) -> list[Partition]:
    """The partitions of `table`, by lower bound (MINVALUE first), DEFAULT last; a bound
    Python cannot hold is opaque (see Partition.opaque), never an error."""
    kind = PARENTS[_parent(table)]
    rows = conn.execute(LIST_SQL.format(type=kind, **_LIST[kind]), {"parent": f"public.{table}"}).fetchall()
    return [
        Partition(table, name, _utc(lower), _utc(upper), is_default, opaque)
        for name, is_default, lower, upper, opaque in rows
    ]


def _utc(bound: int | datetime | None) -> int | datetime | None:
    return bound.replace(tzinfo=UTC) if isinstance(bound, datetime) else bound


def ensure_partitions(
    conn: Connection, *, now: datetime, task_ids_ahead: int = TASK_IDS_AHEAD, event_days_ahead: int = EVENT_DAYS_AHEAD
) -> list[str]:
    """Create the missing partitions (see the module docstring); the names created."""
    row = conn.execute(
        "SELECT fsar_ensure_partitions(%s::timestamptz, %s::bigint, %s::integer)",
        (now, task_ids_ahead, event_days_ahead),
    ).fetchone()
    return list(one(row)[0] or [])


def ensure_range(conn: Connection, *, first_id: int, last_id: int, first_day: date, last_day: date) -> list[str]:
    """Partitions for every task id first_id..last_id and every UTC day first_day..last_day
    not in one yet (gaps only: what exists is kept), so that a bulk load about to write them
    lands in no DEFAULT partition (the table's owner only: `fsar-tui seed`)."""
    lower = datetime.combine(first_day, time(), UTC)
    upper = datetime.combine(last_day + timedelta(days=1), time(), UTC)
    created = one(
        conn.execute("SELECT fsar_cover_task_ids(%s::bigint, %s::bigint)", (first_id, last_id + 1)).fetchone()
    )[0]
    created += one(conn.execute("SELECT fsar_cover_event_days(%s, %s)", (lower, upper)).fetchone())[0]
    return list(created)


def create_task_partition(conn: Connection, lower: int | None, upper: int) -> str:
    """The task partition [lower, upper) (lower None: MINVALUE); see the module docstring."""
    name: str = one(
        conn.execute("SELECT fsar_create_task_partition(%s::bigint, %s::bigint)", (lower, upper)).fetchone()
    )[0]
    return name


def create_event_partition(conn: Connection, day: date) -> str:
    """The task_events partition of one UTC day; see the module docstring."""
    lower = datetime.combine(day, time(), UTC)
    name: str = one(
        conn.execute("SELECT fsar_create_event_partition(%s, %s)", (lower, lower + timedelta(days=1))).fetchone()
    )[0]
    return name


def rows_in_default(conn: Connection, table: str) -> int:
    """Rows the DEFAULT partition of `table` holds (0: none, or no DEFAULT partition)."""
    row = conn.execute(
        "SELECT c.relname::text FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partdefid "
        "WHERE p.partrelid = to_regclass(%s)",
        (f"public.{_parent(table)}",),
    ).fetchone()
    if row is None:
        return 0
    query = sql.SQL("SELECT count(*) FROM ONLY public.{}").format(sql.Identifier(row[0]))
    count: int = one(conn.execute(query).fetchone())[0]
    return count


def ledger_refs(conn: Connection, lower: int | None, upper: int | None) -> int:
    """Ledger entries whose task_id lies in [lower, upper) (None: unbounded)."""
    count: int = one(
        conn.execute(
            "SELECT count(*) FROM ledger_entries WHERE task_id IS NOT NULL "
            "AND (%(lower)s::bigint IS NULL OR task_id >= %(lower)s) "
            "AND (%(upper)s::bigint IS NULL OR task_id < %(upper)s)",
            {"lower": lower, "upper": upper},
        ).fetchone()
    )[0]
    return count
