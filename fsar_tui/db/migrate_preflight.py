"""Objects of the customer's that a pending revision cannot carry: found before any runs.

Two kinds of revision rewrite a table another party may have built on:
- a column changes type (0003: execution_tasks' id and timestamps; 0024: the costs).
  PostgreSQL refuses the ALTER with a raw dependency error when a view, materialized
  view, rule, trigger (column list or WHEN), policy, SQL-standard function body or
  generated column uses the column, or another relation stores the table's row type;
- the table is replaced by a partitioned one (0029): the old table becomes its partition
  `<table>_p0`, and whatever is bound to it by OID (pg_depend) stays bound to those old
  rows. 0029 carries what it knows (indexes, constraints, row triggers, plain views,
  foreign keys to it by its key, …: REPLACED_DEPENDENTS_SQL); everything else that
  depends on the table or its row type is named — a SQL-standard function body or
  another table's rule reading or writing it, a materialized view, a policy, a view's
  options, a generated column, a foreign key 0029 cannot re-create, … — as are an
  inheritance tree (cannot be attached) and a relation already named `<table>_p0` /
  `<table>_default`.

`dependents(conn, pending)` lists those objects; `fsar-tui migrate` refuses with one line
naming them and what to do (exit 2) before any revision runs, so nothing changes.
Refusing, not dropping and recreating them around the revision: their owner, grants,
comments, options, indexes (a materialized view's), the views built on them and a
materialized view's data would all have to be carried, and a definition can change
meaning silently under the new type (`created_at > '2026-01-01'` compares a timestamptz
in the session's time zone) — the customer decides how to recreate them (README,
"Adopting the legacy database").

fsar-tui's own objects are not listed: their revisions handle them (its trigger
functions are all named `fsar_…`, as is the one function on execution_tasks' row type
0029 re-creates; none of its views reads these tables).
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
    """`revision` replaces `table` by a partitioned table of its name, partitioned by `key`
    (the old one becomes its partition `<table>_p0`)."""

    revision: str
    table: str
    key: str


TYPE_CHANGES: tuple[TypeChange, ...] = (
    TypeChange("0003_task_lifecycle", "execution_tasks", ("id", "created_at", "started_at", "finished_at")),
    TypeChange("0024_exact_cost", "execution_tasks", ("cost_minor", "compute_cost_minor")),
    TypeChange("0024_exact_cost", "task_duration_samples", ("cost_minor", "compute_cost_minor")),
    TypeChange("0024_exact_cost", "cost_rollups", ("model_cost_minor", "compute_cost_minor", "failed_cost_minor")),
)
REPLACED: tuple[Replaced, ...] = (
    Replaced("0029_partitions", "execution_tasks", "id"),
    Replaced("0029_partitions", "task_events", "at"),
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
SELECT (pg_identify_object(deps.classid, deps.objid, 0)).type, deps.objid::regprocedure::text, deps.col
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

# What replacing the table (%(t)s, named %(name)s, partition key %(key)s) by a partitioned
# one would leave behind or stop on, as (kind, qualified name, code: REPLACED_WHY).
#
# Every object pg_depend says depends on the table, a column of it or its row type (and that
# type's array) is judged against what 0029 carries — its indexes, constraints (but an
# exclusion or NO INHERIT one), plain defaults, row triggers, owned sequence, toast table,
# publications, plain views (re-created by definition: without their options), foreign keys
# to it by a key holding the partition key, fsar-tui's functions on its row type — and
# everything else is named. A list of refused kinds is what the attack got past (a BEGIN
# ATOMIC function reading the table, another table's rule writing to it, both left bound
# to the old rows' partition): a kind nobody thought of is refused here, not carried wrong.
# A dependency is by OID: after the rename it points at `<table>_p0`, whatever its text
# said. What references the table only by name (PL/pgSQL bodies, the executor's SQL)
# follows the new table, and has no pg_depend row to find.
# Inheritance and a taken name are no dependency: read from pg_inherits and pg_class.
REPLACED_DEPENDENTS_SQL = f"""
WITH rel AS (
    SELECT c.oid, c.reltype, c.reltoastrelid, ty.typarray,
           (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = %(key)s) AS keynum
    FROM pg_class c JOIN pg_type ty ON ty.oid = c.reltype WHERE c.oid = %(t)s::regclass
), deps AS (
    SELECT DISTINCT d.classid, d.objid, d.objsubid, d.refclassid = 'pg_type'::regclass AS on_type
    FROM pg_depend d, rel
    WHERE (d.refclassid = 'pg_class'::regclass AND d.refobjid = rel.oid)
       OR (d.refclassid = 'pg_type'::regclass AND d.refobjid IN (rel.reltype, rel.typarray))
), judged AS (
    SELECT deps.*, w.rulename, w.ev_class, ad.adrelid, ad.adnum,
        CASE deps.classid
        WHEN 'pg_class'::regclass THEN CASE
            WHEN deps.objsubid <> 0 THEN CASE WHEN deps.on_type THEN 'row type' ELSE 'other' END
            WHEN c.relkind IN ('i', 'I') AND EXISTS (
                SELECT 1 FROM pg_index i WHERE i.indexrelid = c.oid AND i.indrelid = rel.oid) THEN NULL
            WHEN c.oid = rel.reltoastrelid OR c.relkind = 'S' THEN NULL  -- its toast, its sequence
            WHEN EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid AND h.inhparent = rel.oid)
                THEN NULL  -- named below as inheritance
            WHEN deps.on_type THEN 'row type' ELSE 'other' END
        WHEN 'pg_rewrite'::regclass THEN CASE
            WHEN w.rulename <> '_RETURN' THEN CASE WHEN w.ev_class = rel.oid THEN 'rule on it' ELSE 'rule' END
            WHEN v.relkind = 'm' THEN 'materialized view'
            WHEN v.relkind = 'v' AND v.reloptions IS NOT NULL THEN 'view options'
            WHEN v.relkind = 'v' THEN NULL
            ELSE 'other' END
        -- A function can depend on a table only through a SQL-standard (BEGIN ATOMIC) body.
        WHEN 'pg_proc'::regclass THEN CASE
            WHEN NOT deps.on_type THEN 'body'
            WHEN left(p.proname, 5) = 'fsar_'
                 AND (rel.reltype = ANY (p.proargtypes::oid[]) OR p.prorettype = rel.reltype) THEN NULL
            ELSE 'function row type' END
        WHEN 'pg_constraint'::regclass THEN CASE
            WHEN k.conparentid <> 0 THEN NULL  -- a partition's clone: its parent's is judged
            WHEN k.contype = 'f' AND k.confrelid = rel.oid AND NOT EXISTS (
                SELECT 1 FROM pg_index i WHERE i.indexrelid = k.conindid AND rel.keynum = ANY (i.indkey::int2[]))
                THEN 'foreign key'
            WHEN k.conrelid = rel.oid AND k.contype = 'x' THEN 'exclusion'
            WHEN k.conrelid = rel.oid AND k.contype = 'c' AND k.connoinherit THEN 'no inherit'
            WHEN k.conrelid = rel.oid OR (k.contype = 'f' AND k.confrelid = rel.oid) THEN NULL
            WHEN deps.on_type THEN 'row type' ELSE 'other' END
        WHEN 'pg_trigger'::regclass THEN CASE WHEN tg.tgrelid = rel.oid THEN NULL ELSE 'other' END
        WHEN 'pg_policy'::regclass THEN CASE WHEN po.polrelid = rel.oid THEN 'policy on it' ELSE 'policy' END
        WHEN 'pg_attrdef'::regclass THEN CASE
            WHEN ad.adrelid <> rel.oid THEN CASE WHEN deps.on_type THEN 'row type' ELSE 'other' END
            WHEN EXISTS (SELECT 1 FROM pg_attribute a
                         WHERE a.attrelid = ad.adrelid AND a.attnum = ad.adnum AND a.attgenerated <> '')
                THEN 'generated'
            END
        WHEN 'pg_type'::regclass THEN CASE WHEN deps.objid IN (rel.reltype, rel.typarray) THEN NULL ELSE 'row type' END
        WHEN 'pg_publication_rel'::regclass THEN NULL
        ELSE CASE WHEN deps.on_type THEN 'row type' ELSE 'other' END
        END AS code
    FROM deps CROSS JOIN rel
    LEFT JOIN pg_class c ON deps.classid = 'pg_class'::regclass AND c.oid = deps.objid
    LEFT JOIN pg_rewrite w ON deps.classid = 'pg_rewrite'::regclass AND w.oid = deps.objid
    LEFT JOIN pg_class v ON v.oid = w.ev_class
    LEFT JOIN pg_proc p ON deps.classid = 'pg_proc'::regclass AND p.oid = deps.objid
    LEFT JOIN pg_constraint k ON deps.classid = 'pg_constraint'::regclass AND k.oid = deps.objid
    LEFT JOIN pg_trigger tg ON deps.classid = 'pg_trigger'::regclass AND tg.oid = deps.objid
    LEFT JOIN pg_policy po ON deps.classid = 'pg_policy'::regclass AND po.oid = deps.objid
    LEFT JOIN pg_attrdef ad ON deps.classid = 'pg_attrdef'::regclass AND ad.oid = deps.objid
)
-- Named as the other checks name them (a view by its relation, a function by its signature,
-- a generated column by its column), so that one object found by two checks is one.
SELECT DISTINCT
    CASE WHEN j.classid = 'pg_proc'::regclass THEN o.type
         WHEN j.code = 'generated' THEN 'generated column'
         WHEN o.type LIKE '%% column' THEN 'column'
         WHEN o.type = 'table constraint' THEN 'constraint'
         ELSE o.type END,
    CASE WHEN j.classid = 'pg_proc'::regclass THEN j.objid::regprocedure::text ELSE o.identity END,
    j.code
FROM judged j CROSS JOIN LATERAL pg_identify_object(
    CASE WHEN j.rulename = '_RETURN' OR j.adrelid IS NOT NULL THEN 'pg_class'::regclass ELSE j.classid END,
    coalesce(CASE WHEN j.rulename = '_RETURN' THEN j.ev_class END, j.adrelid, j.objid),
    coalesce(j.adnum::int, j.objsubid)) o
WHERE j.code IS NOT NULL
UNION
SELECT 'inheritance', {_QUALIFIED}, 'inheritance'
FROM pg_inherits i JOIN pg_class c ON c.oid IN (i.inhrelid, i.inhparent) AND c.oid <> %(t)s::regclass
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE %(t)s::regclass IN (i.inhrelid, i.inhparent)
UNION
SELECT {_RELKIND}, {_QUALIFIED}, 'name taken'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname IN (%(name)s || '_p0', %(name)s || '_default')
ORDER BY 1, 2, 3
"""

# Why each code stands in the way ({p0}: the partition the old rows become, {key}: the
# partition key), and what to do where "drop, migrate, recreate" is not the whole answer.
REPLACED_WHY = {
    "body": "its SQL-standard body (BEGIN ATOMIC) is bound to the table itself and would read only the old "
    "rows' partition {p0}",
    "rule": "its action is bound to the table itself and would act on the old rows' partition {p0} only",
    "rule on it": "would stay on the old rows' partition",
    "policy": "its expression is bound to the table itself and would read only the old rows' partition {p0}",
    "policy on it": "would stay on the old rows' partition",
    "materialized view": "would keep reading only the old rows",
    "view options": "0029 re-creates the view by its definition, without its options (security_barrier, "
    "check_option, security_invoker): recreate it with them after",
    "foreign key": "references a key without {key}, which the partitioned table cannot hold unique: recreate "
    "it after by a key that includes {key}, or not at all",
    "exclusion": "a partitioned table takes no exclusion constraint (PostgreSQL 15): a trigger can check instead",
    "no inherit": "a partitioned table takes no NO INHERIT check: recreate it after without NO INHERIT",
    "generated": "the partitioned table would hold it as a plain column that new rows leave empty: re-add it "
    "after (ALTER TABLE … ADD COLUMN … GENERATED ALWAYS AS …)",
    "row type": "uses its row type, which would stay the old rows' partition's ({p0})",
    "function row type": "uses its row type, which would stay the old rows' partition's ({p0}); 0029 "
    "re-creates only fsar-tui's own functions on it",
    "other": "bound to the table itself, it would stay with the old rows' partition {p0}",
    "inheritance": "a table in an inheritance tree cannot become a partition",
    "name taken": "its name is the one the partition takes",
}


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
        params = {"t": f"public.{replaced.table}", "name": replaced.table, "key": replaced.key}
        for kind, name, code in conn.execute(REPLACED_DEPENDENTS_SQL, params).fetchall():
            why = REPLACED_WHY[code].format(p0=f"{replaced.table}_p0", key=replaced.key)
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
        "first (pg_get_viewdef, pg_get_triggerdef, pg_get_functiondef, pg_get_ruledef, pg_get_constraintdef; "
        "README: Adopting the legacy database); "
        "nothing changed"
    )
