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
  has_function_privilege — the same questions PostgreSQL asks when it decides. Partitions
  are not in the matrix (their parent is); `undeclared_grants` judges grants on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from psycopg import Connection

from fsar_tui.db.shipped_sql import SEARCH_PATH, Fn, Trigger

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


def trigger_problems(conn: Connection, triggers: Iterable[Trigger]) -> list[str]:
    """Each shipped trigger exists, runs its function, fires as shipped (timing, events,
    row or statement: pg_trigger.tgtype; no WHEN, no column list, no arguments) and is
    enabled."""
    problems = []
    for table, name, function, tgtype in triggers:
        row = conn.execute(
            """SELECT t.tgenabled, p.proname, p.pronamespace = 'public'::regnamespace, t.tgtype,
                      t.tgqual IS NULL AND t.tgnargs = 0 AND cardinality(t.tgattr::int2[]) = 0
               FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
               WHERE t.tgrelid = to_regclass(%s) AND t.tgname = %s""",
            (f"public.{table}", name),
        ).fetchone()
        if row is None:
            problems.append(f"trigger {name} on {table} is missing")
            continue
        enabled, proname, ours, actual_type, plain = row
        if proname != function or not ours:
            problems.append(f"trigger {name} on {table} runs {proname}(), not {function}()")
        if actual_type != tgtype or not plain:
            problems.append(f"trigger {name} on {table} does not fire as shipped (other events, a WHEN or columns)")
        if enabled not in ("O", "A"):
            problems.append(f"trigger {name} on {table} is disabled (tgenabled = {enabled!r})")
    return problems


def log_table_problems(conn: Connection, triggers: Iterable[Trigger]) -> list[str]:
    """What else could make the log tables (those `triggers` are on) drop, divert or hide
    rows without touching a shipped trigger or function: a rule (`DO INSTEAD NOTHING`), any
    trigger that is not a shipped one (a BEFORE INSERT trigger returning NULL; enabled or
    not — a disabled one is one ALTER away), row-level security or a policy (rows hidden
    from the verifying role, inserts refused), inheritance (rows read from a child table),
    and an owner other than the migrating role (the owner may disable the triggers)."""
    shipped: dict[str, set[str]] = {}
    for t in triggers:
        shipped.setdefault(t.table, set()).add(t.name)
    problems = []
    for table, names in shipped.items():
        rel = f"public.{table}"
        for (rule,) in conn.execute(
            "SELECT r.rulename FROM pg_rewrite r WHERE r.ev_class = to_regclass(%s) ORDER BY 1", (rel,)
        ).fetchall():
            problems.append(f"rule {rule} on {table}: a rule can divert or drop its rows (there is none shipped)")
        for name, proname, enabled in conn.execute(
            """SELECT t.tgname, t.tgfoid::regproc::text, t.tgenabled FROM pg_trigger t
               WHERE t.tgrelid = to_regclass(%s) AND NOT t.tgisinternal AND t.tgname <> ALL (%s) ORDER BY 1""",
            (rel, sorted(names)),
        ).fetchall():
            state = "disabled" if enabled == "D" else "enabled"
            problems.append(f"trigger {name} on {table} is not a shipped one (runs {proname}(), {state})")
        row = conn.execute(
            """SELECT c.relrowsecurity, c.relforcerowsecurity,
                      ARRAY(SELECT p.polname::text FROM pg_policy p WHERE p.polrelid = c.oid ORDER BY 1),
                      EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid)
               FROM pg_class c WHERE c.oid = to_regclass(%s)""",
            (rel,),
        ).fetchone()
        if row is None:
            problems.append(f"table {table} is missing")
            continue
        rls, forced, policies, inherits = row
        if rls or forced:
            problems.append(f"row-level security is enabled on {table}: rows may be hidden from the verifier")
        if policies:
            problems.append(f"{table} has row-level security policies ({', '.join(policies)})")
        if inherits:
            problems.append(f"{table} has inheritance parents or children: rows may be read from elsewhere")
    problems += owner_problems(conn, tables=list(shipped), functions=False)
    return problems


# -- owners and grantees ---------------------------------------------------------------------

# Every relation of the schema but an extension's, and every fsar function: what the owner
# check and the grantee enumeration cover. Partitions (revision 0029) are their own kind:
# no fsar role may hold a grant on one, another role what it may on the parent
# (domain/privileges.judge_grant).
RELATIONS = """
    SELECT c.oid, c.relname::text AS name,
           CASE WHEN c.relispartition THEN 'partition' WHEN c.relkind = 'S' THEN 'sequence'
                WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END AS kind,
           c.relowner AS owner, c.relacl AS acl,
           (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE c.relispartition AND i.inhrelid = c.oid)
               AS partition_of
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                                 AND d.deptype = 'e')"""
FSAR_PROCS = """
    SELECT p.oid, p.oid::regprocedure::text AS name, 'function' AS kind, p.proowner AS owner, p.proacl AS acl
    FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'fsar\\_%%'"""

GRANTS_SQL = f"""
    WITH rel AS ({RELATIONS}),
    objects AS (
        SELECT r.kind, r.name, NULL::text AS col, r.owner, r.acl,
               (SELECT t.relname::text FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                WHERE r.kind = 'sequence' AND d.classid = 'pg_class'::regclass AND d.objid = r.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) AS sequence_of,
               r.partition_of
        FROM rel r
        UNION ALL
        SELECT CASE WHEN r.kind = 'partition' THEN 'partition' ELSE 'column' END, r.name, a.attname::text, r.owner,
               a.attacl, NULL, r.partition_of
        FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE a.attacl IS NOT NULL
        UNION ALL
        SELECT f.kind, f.name, NULL, f.owner, f.acl, NULL, NULL FROM ({FSAR_PROCS}) f
        UNION ALL
        SELECT 'schema', n.nspname::text, NULL, n.nspowner, n.nspacl, NULL, NULL
        FROM pg_namespace n WHERE n.nspname = 'public')
    SELECT o.kind, o.name, o.col, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
           a.privilege_type, a.is_grantable, o.sequence_of, o.partition_of
    FROM objects o CROSS JOIN LATERAL aclexplode(o.acl) a
    WHERE a.grantee <> o.owner
    ORDER BY o.name, o.col NULLS FIRST, 4, a.privilege_type"""


def memberships(conn: Connection, roles: Iterable[str], *, usable_only: bool = False) -> dict[str, tuple[str, ...]]:
    """{role: the `roles` it is a member of, directly or through others}. `usable_only`: on
    PostgreSQL 16+, only memberships that inherit or allow SET ROLE (CREATE ROLE gives its
    creator an ADMIN-only one, which grants no rights)."""
    edge = "(a.inherit_option OR a.set_option)" if usable_only and conn.info.server_version >= 160000 else "true"
    rows = conn.execute(
        f"""WITH RECURSIVE m(member, roleid) AS (
                SELECT a.member, a.roleid FROM pg_auth_members a WHERE {edge}
                UNION
                SELECT m.member, a.roleid FROM m JOIN pg_auth_members a ON a.member = m.roleid WHERE {edge})
            SELECT DISTINCT pg_get_userbyid(m.member)::text, pg_get_userbyid(m.roleid)::text
            FROM m WHERE pg_get_userbyid(m.roleid) = ANY (%s::text[]) ORDER BY 1, 2""",
        (list(roles),),
    ).fetchall()
    found: dict[str, tuple[str, ...]] = {}
    for member, role in rows:
        found[member] = (*found.get(member, ()), role)
    return found


def migrating_role(conn: Connection) -> str | None:
    """The role that ran the migrations: the owner of alembic_version (None: no schema)."""
    row = conn.execute(
        "SELECT pg_get_userbyid(c.relowner)::text FROM pg_class c WHERE c.oid = to_regclass('public.alembic_version')"
    ).fetchone()
    return row[0] if row else None


def owner_problems(conn: Connection, *, tables: list[str] | None = None, functions: bool = True) -> list[str]:
    """Every fsar relation (or those of `tables`) and, with `functions`, every fsar function
    owned by the migrating role, and that role no fsar role nor (usably) a member of one:
    an owner may disable triggers, replace functions and grant anything, so the owner must
    not be a role the panel's users log in as."""
    from fsar_tui.domain.privileges import ROLES

    owner = migrating_role(conn)
    if owner is None:
        return ["alembic_version is missing: the schema's owner cannot be told (fsar-tui migrate)"]
    problems = []
    member_of = memberships(conn, ROLES, usable_only=True).get(owner, ())
    if owner in ROLES or member_of:
        what = "an fsar role" if owner in ROLES else f"a member of {', '.join(member_of)}"
        problems.append(
            f"the migrating role {owner} (owner of alembic_version) is {what}: whoever logs in as it may disable "
            "the log's triggers"
        )
    sql = f"SELECT r.kind, r.name, pg_get_userbyid(r.owner)::text FROM ({RELATIONS}) r"
    if functions:
        sql += f" UNION ALL SELECT f.kind, f.name, pg_get_userbyid(f.owner)::text FROM ({FSAR_PROCS}) f"
    for kind, name, actual in conn.execute(f"SELECT * FROM ({sql}) o ORDER BY 2").fetchall():
        if tables is not None and name not in tables:
            continue
        if actual != owner:
            problems.append(
                f"{kind} {name} is owned by {actual}, not by the migrating role {owner} (owner of alembic_version): "
                f"{actual} may disable its triggers and grant anything on it"
            )
    return problems


def undeclared_grants(conn: Connection) -> list[str]:
    """Every grant of every fsar relation, column, sequence and function and of the schema
    to any role (its owner aside), read with aclexplode from pg_class.relacl,
    pg_attribute.attacl, pg_proc.proacl and pg_namespace.nspacl, judged by the declaration
    (domain/privileges.judge_grant); plus every member of pg_write_all_data that may
    connect here, superusers and the migrating role aside."""
    from fsar_tui.domain.privileges import ROLES, WRITE_ALL, Grant, judge_grant

    rows = conn.execute(GRANTS_SQL).fetchall()
    members = memberships(conn, ROLES, usable_only=False)
    problems = []
    for kind, name, col, grantee, privilege, grantable, sequence_of, partition_of in rows:
        found = judge_grant(
            Grant(kind, name, col, grantee, privilege, grantable, sequence_of, members.get(grantee, ()), partition_of)
        )
        if found:
            problems.append(found)
    owner = migrating_role(conn)
    for (member,) in conn.execute(
        """SELECT r.rolname::text FROM pg_roles r
           WHERE to_regrole(%s) IS NOT NULL AND r.rolname <> %s AND NOT r.rolsuper
             AND r.oid <> coalesce(to_regrole(%s), 0) AND pg_has_role(r.oid, to_regrole(%s), 'MEMBER')
             AND has_database_privilege(r.oid, current_database(), 'CONNECT')
           ORDER BY 1""",
        (WRITE_ALL, WRITE_ALL, owner, WRITE_ALL),
    ).fetchall():
        problems.append(f"{member} is a member of {WRITE_ALL}: it may write every table here, whatever the grants")
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
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition"""

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
