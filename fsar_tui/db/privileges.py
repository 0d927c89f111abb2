"""What the catalogs say about rights and protections — read, never trusted to a function
of ours: the checks here query pg_proc, pg_trigger and the privilege functions directly,
so replacing one of fsar-tui's functions cannot make them pass.

- `shipped_function_problems`: each shipped function (db/shipped_sql.Fn) exists, has the
  shipped source (sha256 of pg_proc.prosrc), the shipped SECURITY DEFINER/INVOKER and the
  pinned search_path, and PUBLIC may not EXECUTE it.
- `public_executable`: every fsar_* function PUBLIC may EXECUTE (an ACL of NULL is the
  default, which grants EXECUTE to PUBLIC).
- `trigger_problems`: the triggers exist, run the function they should and are enabled.
- `actual_rights`: for the privilege matrix (domain/privileges.py), what each role may do
  to each table and function, from has_table_privilege / has_any_column_privilege /
  has_function_privilege — the same questions PostgreSQL asks when it decides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from psycopg import Connection

from fsar_tui.db.shipped_sql import SEARCH_PATH, Fn

PUBLIC_EXECUTE = """(p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                                          WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))"""

FUNCTION_SQL = f"""
    SELECT p.prosrc, p.prosecdef, coalesce(p.proconfig, '{{}}'), {PUBLIC_EXECUTE}
    FROM pg_proc p WHERE p.oid = to_regprocedure(%s)"""


def shipped_function_problems(conn: Connection, fns: Iterable[Fn]) -> list[str]:
    problems = []
    for fn in fns:
        row = conn.execute(FUNCTION_SQL, (f"public.{fn.signature}",)).fetchone()
        if row is None:
            problems.append(f"function {fn.signature} is missing (schema behind head? fsar-tui migrate)")
            continue
        source, definer, config, public = row
        if hashlib.sha256(source.encode()).hexdigest() != fn.source_sha256:
            problems.append(f"function {fn.signature} is not the shipped one (its source was replaced)")
        if definer != fn.definer:
            shipped = "SECURITY DEFINER" if fn.definer else "SECURITY INVOKER"
            problems.append(f"function {fn.signature} is not {shipped} as shipped")
        if f"search_path={SEARCH_PATH}" not in config:
            problems.append(f"function {fn.signature} has no pinned search_path")
        if public:
            problems.append(f"PUBLIC may EXECUTE {fn.signature}")
    return problems


def public_executable(conn: Connection) -> list[str]:
    """fsar_* functions of the public schema that any login may EXECUTE."""
    return [
        r[0]
        for r in conn.execute(
            f"""SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'fsar\\_%%' AND {PUBLIC_EXECUTE}
                ORDER BY 1"""
        ).fetchall()
    ]


def trigger_problems(conn: Connection, triggers: Iterable[tuple[str, str, str]]) -> list[str]:
    problems = []
    for table, name, function in triggers:
        row = conn.execute(
            """SELECT t.tgenabled, p.proname, p.pronamespace = 'public'::regnamespace
               FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
               WHERE t.tgrelid = to_regclass(%s) AND t.tgname = %s""",
            (f"public.{table}", name),
        ).fetchone()
        if row is None:
            problems.append(f"trigger {name} on {table} is missing")
            continue
        enabled, proname, ours = row
        if proname != function or not ours:
            problems.append(f"trigger {name} on {table} runs {proname}(), not {function}()")
        if enabled not in ("O", "A"):
            problems.append(f"trigger {name} on {table} is disabled (tgenabled = {enabled!r})")
    return problems


RIGHTS_SQL = """
    SELECT c.relname, r.role,
           array_remove(ARRAY[
               CASE WHEN has_table_privilege(r.role, c.oid, 'SELECT') THEN 'SELECT' END,
               CASE WHEN has_table_privilege(r.role, c.oid, 'INSERT') THEN 'INSERT' END,
               CASE WHEN has_table_privilege(r.role, c.oid, 'UPDATE') THEN 'UPDATE' END,
               CASE WHEN has_table_privilege(r.role, c.oid, 'DELETE') THEN 'DELETE' END,
               CASE WHEN has_table_privilege(r.role, c.oid, 'TRUNCATE') THEN 'TRUNCATE' END], NULL),
           ARRAY(SELECT v.verb || ' (' || string_agg(a.attname, ', ' ORDER BY a.attname) || ')'
                 FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) v(verb)
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 WHERE NOT has_table_privilege(r.role, c.oid, v.verb)
                   AND has_column_privilege(r.role, c.oid, a.attnum, v.verb)
                 GROUP BY v.verb)
    FROM pg_class c CROSS JOIN unnest(%(roles)s::text[]) r(role)
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')"""

EXECUTE_SQL = """
    SELECT p.oid::regprocedure::text, r.role, has_function_privilege(r.role, p.oid, 'EXECUTE')
    FROM pg_proc p CROSS JOIN unnest(%(roles)s::text[]) r(role)
    WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'fsar\\_%%'"""


def actual_rights(
    conn: Connection, roles: Iterable[str]
) -> tuple[dict[tuple[str, str], frozenset[str]], dict[tuple[str, str], bool]]:
    """({(table, role): rights}, {(function, role): may EXECUTE}) for the existing roles
    among `roles` ('public' is every login). A right is a verb, or a verb with the columns
    granted when it is not granted on the whole table ("UPDATE (metadata)")."""
    present = [
        r[0]
        for r in conn.execute(
            "SELECT r FROM unnest(%s::text[]) r "
            "WHERE r = 'public' OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)",
            (list(roles),),
        ).fetchall()
    ]
    tables = {
        (table, role): frozenset(whole) | frozenset(columns)
        for table, role, whole, columns in conn.execute(RIGHTS_SQL, {"roles": present}).fetchall()
    }
    functions = {(sig, role): can for sig, role, can in conn.execute(EXECUTE_SQL, {"roles": present}).fetchall()}
    return tables, functions
