"""Partitions: execution_tasks by RANGE (id), task_events by RANGE (at), one UTC day each —
so that retention can drop old rows a partition at a time instead of DELETEing millions.

Adoption, not a copy. Each table (possibly a big legacy one the executing system writes
to meanwhile) becomes the first partition of a new partitioned table of its name:
1. locks: execution_tasks ACCESS EXCLUSIVE (waiting, the migration's lock_timeout), then
   task_events and ledger_entries NOWAIT; if either is busy, everything taken so far is
   released (a savepoint) and tried again until the timeout. A writer holding one of them
   and waiting for another (task → ledger, ledger → task, events → task) would otherwise
   deadlock with us and get an error; this way writers only ever wait.
2. what hangs on the table by OID is read from the catalogs: indexes, row triggers (and
   whether they are enabled), foreign keys both ways, NOT VALID checks, grants (table and
   column), owner, comment, publications, views, functions taking its row type
   (fsar_task_sample), the sequence it owns;
3. the table is renamed `<table>_p0` (its indexes `<table>_p0_…`), its triggers dropped,
   the foreign keys to it dropped; a partitioned table of the old name is created LIKE it
   (columns, defaults — the id default is the same sequence, now OWNED BY the parent —
   CHECKs, NOT VALID ones kept NOT VALID, comments), with the same indexes under the same
   names, foreign keys, triggers (PostgreSQL clones row triggers to every partition and
   fires the partition's: nothing fires twice), owner, grants, publications; the views
   and row-type functions are re-pointed (CREATE OR REPLACE VIEW, the function re-created
   with its grants);
4. `<table>_p0` gets CHECK (key < bound), validated (one scan, no rewrite), so ATTACH …
   FOR VALUES FROM (MINVALUE) TO (bound) needs no second scan; the CHECK is dropped after.
   Its indexes are the parent's (matched by definition: no index is built), its grants
   revoked (roles use the parent; partitions carry none);
5. the foreign keys referencing the table are added back on the parent, validated
   (ledger_entries.task_id: one anti-join over ledger_entries);
6. a DEFAULT partition each (the safety net: an insert never fails for want of a
   partition; maintenance moves what it catches out), holding the outliers (below),
   then the partitions ahead (fsar_cover_task_ids / fsar_cover_event_days,
   db/partition_functions.py: CHUNK ids, EVENT_DAYS_AHEAD days).

Bounds from the bulk, not the extremes (an attack: one id near 2^63 overflowed the bound,
one event in year 5000 made p0 take every new event until then, and retention could never
drop it). Rows at or past a bound are outliers: moved (a DELETE … RETURNING into a temporary
table, then into DEFAULT before it is attached: no trigger fires) — every row is kept;
maintenance gives them partitions within its horizons (db/partition_functions.py, Limits).
execution_tasks: bound = the next multiple of CHUNK above the bulk's highest id
(partition_functions.bulk_high_sql: from the sequence's last value, the ids within one
CHUNK of each other); at most 2^63-1.
task_events: the PRIMARY KEY becomes (id, at) — a unique index on a partitioned table must
hold the partition key. ids still come from one sequence, so they stay unique by
construction; nothing relied on the PK for an ON CONFLICT (readers order by id, poll
`id > last`, look up by task_id — all unchanged). p0's (id) key is dropped and the (id, at)
index built by ATTACH: the one index build of the upgrade (about 1 s per 3 M events).
Bound = tomorrow (UTC): p0 takes today's events too. A task_events with no event before it
is not adopted (a p0 covering all the past would swallow the days a seed then writes): it
is dropped once the parent stands (its outliers kept), and day partitions alone follow.

What retention can then drop: day partitions of task_events and CHUNK-id partitions of
execution_tasks; a p0 only as a whole, once everything in it is past the policy (no
DELETE of millions). See db/partitions.py for ledger_entries.task_id.

Cost, on this 2-core machine (warm cache), 1 M tasks and 2.96 M events (297 MB + 479 MB):
upgrade 2.0 s — the CHECK's scan of execution_tasks, the (id, at) index of task_events,
the ledger key's validation; nothing is rewritten. Downgrade 12.9 s (a copy, see below).

Not carried to the parent (partitioned tables take none, or none is shipped): storage
parameters (autovacuum settings stay on `_p0`), per-column statistics targets, replica
identity, row-level security policies.

Downgrade: each parent's rows are copied (INSERT … SELECT, no trigger fires: the new
table has none yet) into a plain table that then takes the name, indexes (task_events'
key back to (id)), triggers, keys, grants and the rest the same way; the partitioned
table and its partitions are dropped. A copy, so slower than the upgrade; no row is lost.

Revision ID: 0029_partitions
Revises: 0028_cost_integrity
"""

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from alembic import op

from fsar_tui.db import partition_functions as pf

revision = "0029_partitions"
down_revision = "0028_cost_integrity"
branch_labels = None
depends_on = None

log = logging.getLogger("fsar_tui.migration_notes")  # printed by `fsar-tui migrate`

CHUNK = pf.CHUNK
TASK_IDS_AHEAD = 2 * CHUNK
EVENT_DAYS_AHEAD = 14
LOCK_WAIT_S = 10.0  # as the migration's lock_timeout (db/migrations.MIGRATION_LOCK_TIMEOUT)
TABLES = {"execution_tasks": "id", "task_events": "at"}


def _raw() -> Any:
    """The psycopg connection under Alembic's, in the same transaction."""
    return op.get_bind().connection.driver_connection


def _rows(sql: str, *params: object) -> list[tuple[Any, ...]]:
    return list(_raw().execute(sql, params or None).fetchall())


def _value(sql: str, *params: object) -> Any:
    return _raw().execute(sql, params or None).fetchone()[0]


def _run(sql: str, *params: object) -> None:
    _raw().execute(sql, params or None)


def _ident(name: str) -> str:
    return str(_value("SELECT quote_ident(%s)", name))


def _lock_tables() -> None:
    """execution_tasks (waiting), then the others NOWAIT; busy: release all and retry."""
    import psycopg

    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        _run("SAVEPOINT fsar_0029_locks")
        try:
            _run("LOCK TABLE execution_tasks IN ACCESS EXCLUSIVE MODE")
            _run("LOCK TABLE task_events, ledger_entries IN ACCESS EXCLUSIVE MODE NOWAIT")
        except psycopg.errors.LockNotAvailable:
            _run("ROLLBACK TO SAVEPOINT fsar_0029_locks")  # releases what the attempt took
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        _run("RELEASE SAVEPOINT fsar_0029_locks")  # the locks stay with the transaction
        return


@dataclass
class Shape:
    """What hangs on a table by OID (read before it is renamed away)."""

    table: str
    owner: str
    comment: str | None
    indexes: list[tuple[str, str, str | None, str | None, bool]] = field(default_factory=list)
    triggers: list[tuple[str, str, str]] = field(default_factory=list)  # name, def, tgenabled
    fks_out: list[tuple[str, str]] = field(default_factory=list)
    fks_in: list[tuple[str, str, str]] = field(default_factory=list)  # table, name, def
    not_valid: list[tuple[str, str]] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)  # "SELECT", "UPDATE (error)", … TO grantee
    publications: list[str] = field(default_factory=list)
    views: list[tuple[str, str]] = field(default_factory=list)
    functions: list[tuple[int, str, str, list[str]]] = field(default_factory=list)  # oid, signature, def, grantees
    sequences: list[tuple[str, str]] = field(default_factory=list)  # sequence, column


def _shape(table: str) -> Shape:
    oid = _value("SELECT %s::regclass::oid", f"public.{table}")
    owner, comment, rowtype = (
        _raw()
        .execute(
            "SELECT pg_get_userbyid(relowner)::text, obj_description(oid, 'pg_class'), reltype "
            "FROM pg_class WHERE oid = %s",
            (oid,),
        )
        .fetchone()
    )
    s = Shape(table, owner, comment)
    s.indexes = _rows(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname::text,
                  pg_get_constraintdef(c.oid), i.indisunique
           FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
           WHERE i.indrelid = %s ORDER BY 1""",
        oid,
    )
    s.triggers = _rows(
        "SELECT tgname::text, pg_get_triggerdef(oid), tgenabled::text FROM pg_trigger "
        "WHERE tgrelid = %s AND NOT tgisinternal ORDER BY 1",
        oid,
    )
    s.fks_out = _rows(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s AND contype = 'f' AND conparentid = 0 ORDER BY 1",
        oid,
    )
    s.fks_in = _rows(
        "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE confrelid = %s AND contype = 'f' AND conparentid = 0 AND conrelid <> %s ORDER BY 1, 2",
        oid,
        oid,
    )
    s.not_valid = _rows(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s AND contype = 'c' AND NOT convalidated ORDER BY 1",
        oid,
    )
    grantee = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END"
    grant = "CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END"
    s.grants = [
        r[0]
        for r in _rows(
            f"""SELECT a.privilege_type || ' ON ' || '{{t}}' || ' TO ' || {grantee} || {grant}
                FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a WHERE c.oid = %s AND a.grantee <> c.relowner
                UNION ALL
                SELECT a.privilege_type || ' (' || quote_ident(t.attname) || ') ON ' || '{{t}}' || ' TO ' || {grantee}
                       || {grant}
                FROM pg_attribute t CROSS JOIN LATERAL aclexplode(t.attacl) a
                JOIN pg_class c ON c.oid = t.attrelid
                WHERE t.attrelid = %s AND t.attnum > 0 AND NOT t.attisdropped AND a.grantee <> c.relowner
                ORDER BY 1""",
            oid,
            oid,
        )
    ]
    if _value("SELECT to_regclass('pg_catalog.pg_publication_rel') IS NOT NULL"):
        s.publications = [
            r[0]
            for r in _rows(
                "SELECT p.pubname::text FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid "
                "WHERE r.prrelid = %s",
                oid,
            )
        ]
    s.views = _rows(
        """SELECT DISTINCT v.oid::regclass::text, pg_get_viewdef(v.oid)
           FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class v ON v.oid = w.ev_class
           WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = %s
             AND v.oid <> %s AND v.relkind = 'v'""",
        oid,
        oid,
    )
    s.functions = [
        (
            foid,
            signature,
            definition,
            [
                r[0]
                for r in _rows(
                    f"SELECT {grantee} FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a "
                    "WHERE p.oid = %s AND a.grantee <> p.proowner AND a.privilege_type = 'EXECUTE'",
                    foid,
                )
            ],
        )
        for foid, signature, definition in _rows(
            "SELECT oid, oid::regprocedure::text, pg_get_functiondef(oid) FROM pg_proc "
            "WHERE %s = ANY (proargtypes::oid[]) OR prorettype = %s",
            rowtype,
            rowtype,
        )
    ]
    s.sequences = _rows(
        """SELECT d.objid::regclass::text, a.attname::text FROM pg_depend d
           JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
           JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
           WHERE d.classid = 'pg_class'::regclass AND d.refobjid = %s AND d.deptype IN ('a', 'i')""",
        oid,
    )
    return s


def _move_aside(s: Shape, new_name: str) -> None:
    """Rename the table and its indexes out of the way; drop its triggers and the keys to it."""
    t = s.table
    for table, name, _ in s.fks_in:
        _run(f"ALTER TABLE {table} DROP CONSTRAINT {_ident(name)}")
    for name, _, _ in s.triggers:
        _run(f"DROP TRIGGER {_ident(name)} ON {t}")
    _run(f"ALTER TABLE {t} RENAME TO {new_name}")
    for index, *_ in s.indexes:
        renamed = (new_name + index[len(t) :]) if index.startswith(t + "_") else f"{new_name}_{index}"
        _run(f"ALTER INDEX {index} RENAME TO {_ident(renamed[:63])}")


def _create_like(s: Shape, source: str, partition_key: str | None) -> None:
    """`s.table` LIKE `source` (partitioned by `partition_key`, or plain): columns, defaults,
    CHECKs (NOT VALID ones as they were), comments, owner; no grants yet."""
    t = s.table
    partitioned = f" PARTITION BY RANGE ({partition_key})" if partition_key else ""
    _run(
        f"CREATE TABLE {t} (LIKE {source} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE "
        f"INCLUDING COMMENTS INCLUDING COMPRESSION){partitioned}"
    )
    for name, definition in s.not_valid:  # LIKE copies a check as valid: keep it as it was
        _run(f"ALTER TABLE {t} DROP CONSTRAINT {_ident(name)}")
        _run(f"ALTER TABLE {t} ADD CONSTRAINT {_ident(name)} {definition}")
    _strip_grants(t)
    if s.owner != _value("SELECT current_user::text"):
        _run(f"ALTER TABLE {t} OWNER TO {_ident(s.owner)}")
    if s.comment is not None:
        _run(f"COMMENT ON TABLE {t} IS {_value('SELECT quote_literal(%s)', s.comment)}")


def _keys(s: Shape, partition_key: str | None, primary_key: str | None) -> None:
    """The sequence it owns, its foreign keys, keys and indexes, under their names."""
    t = s.table
    for sequence, column in s.sequences:
        _run(f"ALTER SEQUENCE {sequence} OWNED BY {t}.{_ident(column)}")
    for name, definition in s.fks_out:
        _run(f"ALTER TABLE {t} ADD CONSTRAINT {_ident(name)} {definition}")
    for index, definition, conname, condef, unique in s.indexes:
        if condef is not None and condef.startswith("PRIMARY KEY") and primary_key:
            condef = f"PRIMARY KEY ({primary_key})"
        if partition_key and unique and not re.search(rf"\b{partition_key}\b", (condef or definition).split("(", 1)[1]):
            log.info("%s: unique index %s stays on the adopted partition only (it lacks the partition key)", t, index)
        elif conname is not None and condef is not None:
            _run(f"ALTER TABLE {t} ADD CONSTRAINT {_ident(conname)} {condef}")
        else:
            _run(definition.replace(" ON ONLY ", " ON ", 1))


def _finish(s: Shape, *, keys_in: bool = True) -> None:
    """Triggers, keys to it (unless `keys_in` is False: _adopt adds them once DEFAULT holds
    the outliers they may reference), grants, publications, views and row-type functions."""
    t = s.table
    modes = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}
    for name, definition, enabled in s.triggers:
        _run(definition)
        if enabled in modes:
            _run(f"ALTER TABLE {t} {modes[enabled]} TRIGGER {_ident(name)}")
    for table, name, definition in s.fks_in if keys_in else ():
        _run(f"ALTER TABLE {table} ADD CONSTRAINT {_ident(name)} {definition}")
    for grant in s.grants:
        _run(f"GRANT {grant.replace('{t}', t)}")
    for publication in s.publications:
        _run(f"ALTER PUBLICATION {_ident(publication)} ADD TABLE {t}")
    for view, definition in s.views:
        _run(f"CREATE OR REPLACE VIEW {view} AS {definition}")
    for foid, signature, definition, grantees in s.functions:
        # Its argument type followed the renamed table: re-created on the new one's row type.
        _run(f"DROP FUNCTION {_value('SELECT %s::oid::regprocedure::text', foid)}")
        _run(definition)
        _run(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        for grantee in grantees:
            _run(f"GRANT EXECUTE ON FUNCTION {signature} TO {grantee}")


def _strip_grants(relation: str) -> None:
    """Revoke every grant on `relation` (table and columns) but its owner's."""
    for (grantee,) in _rows(
        "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END "
        "FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "WHERE c.oid = %s::regclass AND a.grantee <> c.relowner",
        relation,
    ):
        _run(f"REVOKE ALL ON TABLE {relation} FROM {grantee}")
    for column, grantee in _rows(
        "SELECT DISTINCT quote_ident(t.attname), "
        "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END "
        "FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid CROSS JOIN LATERAL aclexplode(t.attacl) a "
        "WHERE t.attrelid = %s::regclass AND a.grantee <> c.relowner",
        relation,
    ):
        _run(f"REVOKE ALL ({column}) ON TABLE {relation} FROM {grantee}")


def _columns(relation: str) -> str:
    return str(
        _value(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            relation,
        )
    )


def _adopt(table: str, key: str, bound: str, *, primary_key: str | None = None, keep_p0: bool = True) -> int:
    """Adopt `table` as `<table>_p0` [MINVALUE, bound); rows at or past `bound` (outliers)
    go to DEFAULT, moved while neither table has a trigger. Returns how many moved."""
    s = _shape(table)
    p0, held = f"{table}_p0", f"fsar_0029_{table}_held"
    _move_aside(s, p0)
    for publication in s.publications:
        _run(f"ALTER PUBLICATION {_ident(publication)} DROP TABLE {p0}")
    if primary_key:  # the old key (without the partition key) goes; ATTACH builds the new one
        for (conname,) in _rows(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'", p0
        ):
            _run(f"ALTER TABLE {p0} DROP CONSTRAINT {_ident(conname)}")
    _create_like(s, p0, key)
    _keys(s, key, primary_key)
    columns = _columns(table)
    _run(f"CREATE TEMP TABLE {held} (LIKE {p0})")
    _run(
        f"WITH d AS (DELETE FROM {p0} WHERE {key} >= {bound} RETURNING {columns}) "
        f"INSERT INTO {held} ({columns}) SELECT * FROM d"
    )
    moved = int(_value(f"SELECT count(*) FROM {held}"))
    if keep_p0:
        _run(f"ALTER TABLE {p0} ADD CONSTRAINT {p0}_bound CHECK ({key} IS NOT NULL AND {key} < {bound})")
        _run(f"ALTER TABLE {table} ATTACH PARTITION {p0} FOR VALUES FROM (MINVALUE) TO ({bound})")
        _run(f"ALTER TABLE {p0} DROP CONSTRAINT {p0}_bound")
        _strip_grants(p0)
    _finish(s, keys_in=False)
    if not keep_p0:  # once _finish re-pointed the views on it (a view on it stopped the DROP)
        _run(f"DROP TABLE {p0}")
    default = f"{table}_default"
    _run(
        f"CREATE TABLE {default} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE "
        "INCLUDING COMPRESSION)"
    )
    # Its indexes as the partition functions name theirs: after the parent's ("…_failures_idx").
    for index, definition in _rows(
        """SELECT c.relname::text, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
           WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)""",
        table,
    ):
        suffix = index[len(table) + 1 :] if index.startswith(table + "_") else index
        name = _ident((default + "_" + suffix)[:63])
        _run(definition.replace(f" {_ident(index)} ON ONLY public.{table} ", f" {name} ON public.{default} ", 1))
    # The outliers, before the ATTACH gives DEFAULT the parent's triggers: nothing fires.
    _run(f"INSERT INTO {default} ({columns}) SELECT {columns} FROM {held}")
    _run(f"DROP TABLE {held}")
    _run(f"ALTER TABLE {table} ATTACH PARTITION {default} DEFAULT")
    for other, name, definition in s.fks_in:  # validated over p0 and DEFAULT: every row is back
        _run(f"ALTER TABLE {other} ADD CONSTRAINT {_ident(name)} {definition}")
    _strip_grants(default)
    if s.owner != _value("SELECT current_user::text"):
        _run(f"ALTER TABLE {default} OWNER TO {_ident(s.owner)}")
    return moved


def upgrade() -> None:
    _lock_tables()
    started = time.monotonic()
    # p0's bounds come from the bulk, not the extremes: the ids reachable from the sequence
    # in steps of at most BULK_GAP (one id near 2^63 would make p0 cover every id, and
    # overflowed the bound), and tomorrow (one event in year 5000 would make p0 take every
    # new event until then). Outliers move to DEFAULT; maintenance partitions them within
    # its horizons (db/partition_functions.py, Limits).
    sequence = _value("SELECT pg_get_serial_sequence('execution_tasks', 'id')")
    start = _value(f"SELECT last_value FROM {sequence}") if sequence else 0
    high = int(_value(f"SELECT {pf.bulk_high_sql('%s::bigint')}", start))
    task_bound = min((high // CHUNK + 1) * CHUNK, pf.MAX_BIGINT)
    event_bound = _value(
        "SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day', 'YYYY-MM-DD HH24:MI:SS') "
        "|| '+00'"
    )
    events = _value(f"SELECT EXISTS (SELECT 1 FROM task_events WHERE at < '{event_bound}')")
    for fn in pf.FUNCTIONS_0029:
        _run(fn.create_sql())
        _run(f"REVOKE ALL ON FUNCTION {fn.signature} FROM PUBLIC")
    for fn in pf.OPERATOR_FUNCTIONS:
        _run(f"GRANT EXECUTE ON FUNCTION {fn.signature} TO fsar_operator")
    moved = _adopt("execution_tasks", "id", str(task_bound))
    moved += _adopt("task_events", "at", f"'{event_bound}'", primary_key="id, at", keep_p0=events)
    # The windows ahead, as 0029's fsar_ensure_partitions made them, without its sweep of
    # DEFAULT (it overflowed on the outliers): the cover functions, below the top chunk.
    top = (pf.MAX_BIGINT // CHUNK) * CHUNK
    created = _value("SELECT fsar_cover_task_ids(%s, %s)", high // CHUNK * CHUNK, min(high + TASK_IDS_AHEAD + 1, top))
    created += _value(  # in hours: a day of the session's TimeZone may have 23 or 25
        f"SELECT fsar_cover_event_days(d, d + {(EVENT_DAYS_AHEAD + 1) * 24} * interval '1 hour') "
        f"FROM (SELECT '{event_bound}'::timestamptz - interval '24 hours' AS d) today"
    )
    log.info(
        "partitions: execution_tasks_p0 adopted for ids below %s; %s; %d partition(s) created ahead; "
        "%d row(s) past those bounds moved to DEFAULT (%.1f s)",
        f"{task_bound:,}",
        f"task_events_p0 adopted for times before {event_bound}" if events else "task_events had none: days only",
        len(created or []),
        moved,
        time.monotonic() - started,
    )


def _unpartition(table: str, primary_key: str | None) -> None:
    """Copy every row of the partitioned `table` into a plain table that takes its place."""
    s = _shape(table)
    old = f"{table}_partitioned"
    columns = _columns(table)
    _move_aside(s, old)
    _create_like(s, old, None)
    _run(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {old}")  # no trigger on it yet
    _keys(s, None, primary_key)
    _finish(s)  # before the drop: the row-type function moves off the old table's type
    _run(f"DROP TABLE {old}")


def downgrade() -> None:
    _lock_tables()
    for fn in reversed(pf.FUNCTIONS_0029):
        _run(fn.drop_sql())
    _unpartition("execution_tasks", None)
    _unpartition("task_events", "id")
