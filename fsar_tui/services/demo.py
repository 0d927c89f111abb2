"""The demo's set-up, before the simulator and the app start: 30 days of history on the
first run (an empty queue), and the DSNs the app and the simulator connect with.

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


def prepare_demo(
    owner_dsn: str,
    *,
    tasks: int,
    statement_timeout_ms: int,
    say: Callable[[str], None] = lambda line: None,
) -> Demo:
    """Seed `tasks` tasks of history when the queue is empty (and `tasks` > 0); the DSNs."""
    from fsar_tui.db.bulk import has_tasks
    from fsar_tui.db.connect import connect
    from fsar_tui.sim.seed import seed_history

    with connect(owner_dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
        empty = not has_tasks(conn)
    if empty and tasks:
        say(f"first run: seeding {SEED_DAYS} days of history ({tasks:,} tasks)…")
        result = seed_history(owner_dsn, days=SEED_DAYS, tasks=tasks, seed=0)
        say(f"seeded {result.tasks:,} tasks")
    return Demo(app_dsn=owner_dsn, fleet_dsn=owner_dsn)
