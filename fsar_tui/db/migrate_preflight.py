"""Objects of the customer's that a pending revision cannot carry: found before any runs.

Two kinds of revision rewrite a table another party may have built on:
- a column changes type (0003: execution_tasks' id and timestamps; 0024: the costs).
  PostgreSQL refuses the ALTER with a raw dependency error when a view, materialized
  view, rule, trigger (column list or WHEN), policy, SQL-standard function body or
  generated column uses the column, or another relation stores the table's row type;
- the table is replaced by a partitioned one (0029): plain views are re-pointed by the
  revision, but a materialized view would keep reading the old rows only (now the
  partition `<table>_p0`), rules and row-level security policies would stay on that
  partition (the parent would have none), an inheritance tree cannot be attached, and a
  relation already named `<table>_p0` / `<table>_default` stops it.

`dependents(conn, pending)` lists those objects; `fsar-tui migrate` refuses with one line
naming them and what to do (exit 2) before any revision runs, so nothing changes.
Refusing, not dropping and recreating them around the revision: their owner, grants,
comments, options, indexes (a materialized view's), the views built on them and a
materialized view's data would all have to be carried, and a definition can change
meaning silently under the new type (`created_at > '2026-01-01'` compares a timestamptz
in the session's time zone) — the customer decides how to recreate them (README,
"Adopting the legacy database").

fsar-tui's own objects are not listed: their revisions handle them (its trigger
functions are all named `fsar_…`; none of its views reads these tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class TypeChange:
    """`revision` changes the type of `columns` of `table`."""

    revision: str
    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Replaced:
    """`revision` replaces `table` by a partitioned table of its name (old one: `<table>_p0`)."""

    revision: str
    table: str


TYPE_CHANGES: tuple[TypeChange, ...] = (
    TypeChange("0003_task_lifecycle", "execution_tasks", ("id", "created_at", "started_at", "finished_at")),
    TypeChange("0024_exact_cost", "execution_tasks", ("cost_minor", "compute_cost_minor")),
    TypeChange("0024_exact_cost", "task_duration_samples", ("cost_minor", "compute_cost_minor")),
    TypeChange("0024_exact_cost", "cost_rollups", ("model_cost_minor", "compute_cost_minor", "failed_cost_minor")),
)
REPLACED: tuple[Replaced, ...] = (
    Replaced("0029_partitions", "execution_tasks"),
    Replaced("0029_partitions", "task_events"),
)

MAX_NAMED = 10  # the line stays readable; the count says how many more

_QUALIFIED = "quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
_RELKIND = "CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END"

# Everything that depends on one of the columns (%(t)s: the table, %(cols)s: their names),
# as (kind, qualified name, column). What PostgreSQL's ALTER … TYPE refuses on.
COLUMN_DEPENDENTS_SQL = f"""
WITH cols AS (
    SELECT attnum, attname::text AS col FROM pg_attribute
    WHERE attrelid = %(t)s::regclass AND attname = ANY (%(cols)s) AND NOT attisdropped
), deps AS (
    SELECT d.classid, d.objid, cols.col FROM pg_depend d JOIN cols ON cols.attnum = d.refobjsubid
    WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %(t)s::regclass
)
SELECT CASE WHEN c.oid = %(t)s::regclass THEN 'rule' ELSE {_RELKIND} END,
       CASE WHEN c.oid = %(t)s::regclass THEN quote_ident(w.rulename) || ' on ' || {_QUALIFIED}
            ELSE {_QUALIFIED} END, deps.col
FROM deps JOIN pg_rewrite w ON w.oid = deps.objid JOIN pg_class c ON c.oid = w.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE deps.classid = 'pg_rewrite'::regclass
UNION
SELECT 'trigger', quote_ident(t.tgname) || ' on ' || {_QUALIFIED}, deps.col
FROM deps JOIN pg_trigger t ON t.oid = deps.objid JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE deps.classid = 'pg_trigger'::regclass AND NOT t.tgisinternal AND left(p.proname, 5) <> 'fsar_'
UNION
SELECT 'policy', quote_ident(p.polname) || ' on ' || {_QUALIFIED}, deps.col
FROM deps JOIN pg_policy p ON p.oid = deps.objid
JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE deps.classid = 'pg_policy'::regclass
UNION
SELECT 'function', deps.objid::regprocedure::text, deps.col
FROM deps WHERE deps.classid = 'pg_proc'::regclass
UNION
SELECT 'generated column', {_QUALIFIED} || '.' || quote_ident(a.attname), deps.col
FROM deps JOIN pg_attrdef ad ON ad.oid = deps.objid
JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum AND a.attgenerated <> ''
JOIN pg_class c ON c.oid = ad.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE deps.classid = 'pg_attrdef'::regclass
UNION
SELECT 'column', {_QUALIFIED} || '.' || quote_ident(a.attname), 'its row type'
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type rt ON rt.typrelid = %(t)s::regclass
WHERE a.atttypid IN (rt.oid, rt.typarray) AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'm', 'f', 'c')
ORDER BY 1, 2, 3
"""

# What replacing the table (%(t)s, named %(name)s) by a partitioned one would leave behind or stop on,
# as (kind, qualified name, why).
REPLACED_DEPENDENTS_SQL = f"""
SELECT DISTINCT 'materialized view', {_QUALIFIED}, 'would keep reading only the old rows'
FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class c ON c.oid = w.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = %(t)s::regclass AND c.relkind = 'm'
UNION
SELECT 'rule', quote_ident(w.rulename) || ' on ' || {_QUALIFIED}, 'would stay on the old rows'' partition'
FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE w.ev_class = %(t)s::regclass AND w.rulename <> '_RETURN'
UNION
SELECT 'policy', quote_ident(p.polname) || ' on ' || {_QUALIFIED}, 'would stay on the old rows'' partition'
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.polrelid = %(t)s::regclass
UNION
SELECT 'inheritance', {_QUALIFIED}, 'a table in an inheritance tree cannot become a partition'
FROM pg_inherits i JOIN pg_class c ON c.oid IN (i.inhrelid, i.inhparent) AND c.oid <> %(t)s::regclass
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE %(t)s::regclass IN (i.inhrelid, i.inhparent)
UNION
SELECT {_RELKIND}, {_QUALIFIED}, 'its name is the one the partition takes'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname IN (%(name)s || '_p0', %(name)s || '_default')
ORDER BY 1, 2, 3
"""


@dataclass(frozen=True)
class Dependent:
    kind: str  # view, materialized view, rule, trigger, policy, function, column, …
    name: str  # schema-qualified
    why: str  # "execution_tasks.created_at (type changes in 0003_task_lifecycle)", …

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.why})"


def _exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)).fetchone()
    return bool(row and row[0])


def dependents(conn: psycopg.Connection, pending: list[str]) -> list[Dependent]:
    """Objects that would make a pending revision fail or silently leave them behind, first
    reason each. A table that does not exist yet has nothing built on it."""
    found: dict[tuple[str, str], Dependent] = {}
    todo = set(pending)
    for change in TYPE_CHANGES:
        if change.revision not in todo or not _exists(conn, change.table):
            continue
        params = {"t": f"public.{change.table}", "cols": list(change.columns)}
        for kind, name, column in conn.execute(COLUMN_DEPENDENTS_SQL, params).fetchall():
            why = (
                f"stores rows of {change.table}, whose column types {change.revision} changes"
                if column == "its row type"
                else f"uses {change.table}.{column}, whose type {change.revision} changes"
            )
            found.setdefault((kind, name), Dependent(kind, name, why))
    for replaced in REPLACED:
        if replaced.revision not in todo or not _exists(conn, replaced.table):
            continue
        params = {"t": f"public.{replaced.table}", "name": replaced.table}
        for kind, name, why in conn.execute(REPLACED_DEPENDENTS_SQL, params).fetchall():
            found.setdefault(
                (kind, name),
                Dependent(kind, name, f"on {replaced.table}, which {replaced.revision} partitions: {why}"),
            )
    return list(found.values())


def refusal(found: list[Dependent]) -> str:
    """The one line `fsar-tui migrate` refuses with (exit 2)."""
    named = "; ".join(str(d) for d in found[:MAX_NAMED])
    more = f"; and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
    return (
        f"refusing to migrate: {len(found)} object(s) not fsar-tui's stand in the way: {named}{more} — "
        "drop (or rename) them before `fsar-tui migrate` and recreate them after, keeping their definitions "
        "first (pg_get_viewdef, pg_get_triggerdef, pg_get_functiondef; README: Adopting the legacy database); "
        "nothing changed"
    )
