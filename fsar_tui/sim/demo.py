"""The demo's set-up, before the simulator and the app start: 30 days of history on the
first run (an empty queue), and the least-privilege logins the app and the simulator
connect as (db/demo_logins.py) — the app as `fsar_demo` (granted fsar_admin, no
superuser: `fsar-tui security-audit` passes on it), the simulator as `fsar_demo_fleet`.

The migrations (ctx.dsn() migrates the embedded server) and the seeding run as the
owner, which is right: the owner made the schema and the roles, and only it may create
the logins; nothing after that does. The logins have no password: the embedded server
trusts its private socket. On a configured DSN (`logins=False`) the demo creates no
role on someone's server and runs as the DSN's role, and says so.

`prepare_demo(owner_dsn, …)` is what `fsar-tui demo` runs (commands/fleet.py) and what
the tests run against a database of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SEED_DAYS = 30


@dataclass(frozen=True)
class Demo:
    app_dsn: str  # the app's connection
    fleet_dsn: str  # the simulator's connection


DEMO_CANARY_TARGET = "prompt/implement_idea"
# A worse prompt: its attempts fail three times as often (the reference executor honours
# the artifact's `simulate` section), so the judge has something to abort within minutes.
DEMO_CANARY_ARTIFACT = {
    "prompt_version": "v9-rc1",
    "system": "You implement product ideas as small PRs; skip the tests when in a hurry.",
    "simulate": {"failure_rate_multiplier": 3.0},
}


def demo_canary(conn) -> str:
    """Start the demo's canary (10 % → 50 % → 100 %, 10 min a step) on the seeded prompt
    target, as the owner; what it did, in one line."""
    from fsar_tui.db import canaries
    from fsar_tui.domain.rollouts import artifact_sha256

    active, _ = canaries.active_revision(conn, DEMO_CANARY_TARGET)
    done = canaries.deploy(
        conn,
        DEMO_CANARY_TARGET,
        DEMO_CANARY_ARTIFACT,
        artifact_sha256(DEMO_CANARY_ARTIFACT),
        expected_active=active,
        steps=[10, 50, 100],
        interval_s=600,
        manual=False,
        reason="demo: a prompt that skips tests, as a 10 % canary (the judge should abort it)",
        claimed="fsar-tui demo",
    )
    return f"canary {done.canary_id} on {DEMO_CANARY_TARGET}: revision {done.revision} at 10 % (screen 4)"


def prepare_demo(
    owner_dsn: str,
    *,
    tasks: int,
    statement_timeout_ms: int,
    logins: bool = True,
    say: Callable[[str], None] = lambda line: None,
) -> Demo:
    """Seed `tasks` tasks of history when the queue is empty (and `tasks` > 0); with
    `logins`, create or repair the demo's logins. The DSNs to connect with."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from fsar_tui.db.bulk import has_tasks
    from fsar_tui.db.connect import connect
    from fsar_tui.db.demo_logins import DEMO_APP_ROLE, DEMO_FLEET_ROLE, ensure_demo_logins, may_create_roles
    from fsar_tui.dsn import mask_dsn
    from fsar_tui.sim.seed import seed_history

    with connect(owner_dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
        empty = not has_tasks(conn)
    if empty and tasks:
        say(f"first run: seeding {SEED_DAYS} days of history ({tasks:,} tasks)…")
        result = seed_history(owner_dsn, days=SEED_DAYS, tasks=tasks, seed=0)
        say(f"seeded {result.tasks:,} tasks")
        with connect(owner_dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
            say(demo_canary(conn))
    with connect(owner_dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
        owner = conn.info.user
        if not logins or not may_create_roles(conn):
            say(f"the app and the simulator connect as {owner}, the DSN's role")
            return Demo(app_dsn=owner_dsn, fleet_dsn=owner_dsn)
        ensure_demo_logins(conn)
    # The owner's DSN but the user: never the owner's password, if it had one.
    params = {k: v for k, v in conninfo_to_dict(owner_dsn).items() if k not in ("user", "password")}
    demo = Demo(
        app_dsn=make_conninfo("", user=DEMO_APP_ROLE, **params),
        fleet_dsn=make_conninfo("", user=DEMO_FLEET_ROLE, **params),
    )
    say(f"the app connects as {DEMO_APP_ROLE} (fsar_admin, no superuser): {mask_dsn(demo.app_dsn)}")
    return demo
