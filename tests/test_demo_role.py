"""`fsar-tui demo` runs the app as a least-privilege login (issue 16 point 9): the demo's
set-up (sim/demo.prepare_demo, run against a database of this test's own) hands
the app a LOGIN granted fsar_admin — no superuser, CREATEROLE or BYPASSRLS — on which
`fsar-tui security-audit` passes, and the simulator a fleet login outside the fsar
roles that may run the fleet (the integration contract's grants). Migrations and
seeding stay with the owner.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from fsar_tui.db.executor import fleet_privileges_sync
from fsar_tui.sim.demo import prepare_demo
from support.sql import q, x

pytestmark = pytest.mark.services

ROLE_FACTS = """SELECT session_user, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
                       ARRAY(SELECT f FROM unnest(ARRAY['fsar_viewer', 'fsar_operator', 'fsar_admin']) f
                             WHERE pg_has_role(session_user, f, 'MEMBER') ORDER BY 1)
                FROM pg_roles r WHERE r.rolname = session_user"""


@pytest.fixture
def demo_db(db_dsn):
    """db_dsn; the demo's logins (cluster-wide) dropped afterwards."""
    yield db_dsn
    for (role,) in q(db_dsn, "SELECT rolname FROM pg_roles WHERE rolname IN ('fsar_demo', 'fsar_demo_fleet')"):
        x(db_dsn, f"DROP OWNED BY {role}")  # its grants here (this database is dropped next)
        x(db_dsn, f"DROP ROLE {role}")


def test_the_demo_app_login_is_no_superuser_and_passes_the_security_audit(demo_db, run_cli):
    demo = prepare_demo(demo_db, tasks=300, statement_timeout_ms=10_000)
    assert prepare_demo(demo_db, tasks=300, statement_timeout_ms=10_000) == demo  # idempotent, no second seed
    assert q(demo_db, "SELECT count(*) FROM execution_tasks")[0][0] == 300
    # The demo's canary (screen 4), started once: a worse prompt at 10 % for the judge to abort.
    assert q(demo_db, "SELECT state, weight, steps FROM rollout_canaries") == [("running", 10, [10, 50, 100])]

    ((user, superuser, createrole, createdb, bypassrls, fsar_roles),) = q(demo.app_dsn, ROLE_FACTS)
    assert (superuser, createrole, createdb, bypassrls) == (False, False, False, False), user
    assert "fsar_admin" in fsar_roles, (user, fsar_roles)

    audit = run_cli("security-audit", "--dsn", demo.app_dsn, "--format", "json")
    failed = [c for c in json.loads(audit.stdout or "[]") if not c["ok"]]
    assert audit.returncode == 0, failed or audit.stderr

    # The simulator's login: not the owner nor an fsar role, and enough to run the fleet.
    ((fleet, superuser, createrole, createdb, bypassrls, fsar_roles),) = q(demo.fleet_dsn, ROLE_FACTS)
    assert (superuser, createrole, createdb, bypassrls, fsar_roles) == (False, False, False, False, []), fleet
    with psycopg.connect(demo.fleet_dsn) as conn:
        assert fleet_privileges_sync(conn, enqueue=True) == []
    run = run_cli(
        "simulate", "--dsn", demo.fleet_dsn, "--workers", "2", "--tasks", "5", "--rate", "0",
        "--time-scale", "0", "--until-idle",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert q(demo_db, "SELECT count(*) FROM execution_tasks WHERE status IN ('queued', 'running')") == [(0,)]
    # …and what the fleet wrote leaves the audit passing.
    assert run_cli("security-audit", "--dsn", demo.app_dsn).returncode == 0
