"""The demo's two logins, created (idempotently) by `fsar-tui demo` as the database's owner
— the role that ran the migrations and seeds the history, which is right: it owns the
schema (sim/demo.py). The app and the simulator do not connect as it:

- `fsar_demo`, the app's login: LOGIN, granted fsar_admin and nothing else — no
  SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS, and no grant of its own (a
  member of an fsar role holds none: domain/privileges.py). `fsar-tui security-audit`
  passes on it.
- `fsar_demo_fleet`, the simulator's login: a role outside the fsar roles with what the
  integration contract gives the fleet (README, "The executing side") — SELECT on every
  table and view, INSERT and UPDATE on execution_tasks and ledger_entries, USAGE on
  their id sequences — and, because the simulator plays Stripe too (its payment
  intents feed the funnel), what the contract gives the Stripe ingestion: INSERT and
  UPDATE on stripe_events. fsar_admin may not enqueue or claim tasks, and the same grants
  to `fsar_demo` would be grants the audit names.

Roles are cluster-wide and their attributes are set again on every run (a role of that
name left with more is brought back to this); table grants are per database.
"""

from __future__ import annotations

import psycopg
from psycopg import Connection, sql

from fsar_tui.domain.privileges import ADMIN

DEMO_APP_ROLE = "fsar_demo"
DEMO_FLEET_ROLE = "fsar_demo_fleet"
# The integration tables (domain/privileges.INTEGRATION_TABLES) the simulator writes:
# the fleet's, and stripe_events as the Stripe ingestion would (payment intents).
FLEET_WRITES = ("execution_tasks", "ledger_entries", "stripe_events")

# CREATE ROLE's defaults but LOGIN; ALTER ROLE with these needs a superuser, so only a
# role that has more is altered.
LEAST = sql.SQL("LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS INHERIT")
MORE = """SELECT NOT rolcanlogin OR NOT rolinherit OR rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication
                 OR rolbypassrls
          FROM pg_roles WHERE rolname = %s"""

SEQUENCE = """SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = pg_get_serial_sequence(%s, 'id')::regclass"""


def may_create_roles(conn: Connection) -> bool:
    """Whether this session's role may create the logins (a superuser, or CREATEROLE)."""
    row = conn.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def _login(conn: Connection, role: str) -> None:
    name = sql.Identifier(role)
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        try:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
        except psycopg.errors.DuplicateObject:
            pass  # another demo starting at the same moment made it
    row = conn.execute(MORE, (role,)).fetchone()
    if row and row[0]:
        conn.execute(sql.SQL("ALTER ROLE {} {}").format(name, LEAST))


def ensure_demo_logins(conn: Connection) -> None:
    """Create or repair both logins and their grants (conn: autocommit, as the owner)."""
    _login(conn, DEMO_APP_ROLE)
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(ADMIN), sql.Identifier(DEMO_APP_ROLE)))
    _login(conn, DEMO_FLEET_ROLE)
    fleet = sql.Identifier(DEMO_FLEET_ROLE)
    conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(fleet))
    tables = sql.SQL(", ").join(sql.Identifier(t) for t in FLEET_WRITES)
    conn.execute(sql.SQL("GRANT INSERT, UPDATE ON {} TO {}").format(tables, fleet))
    for table in FLEET_WRITES:
        for schema, sequence in conn.execute(SEQUENCE, (f"public.{table}",)).fetchall():
            conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(schema, sequence), fleet))
