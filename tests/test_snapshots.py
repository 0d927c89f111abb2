"""SVG snapshots of the queue screen at 80×24, 100×30 and 160×48, from frozen data and clock.

Regenerate after an intended change with FSAR_UPDATE_SNAPSHOTS=1 (and look at them:
README.md shows the 160×48 one).
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from fsar_tui import clock
from fsar_tui.app import FsarApp
from fsar_tui.config import Settings
from fsar_tui.widgets.keyed_table import KeyedTable
from support.pilot import live_connected
from support.snapshot import check_snapshot, settled_svg

FROZEN = datetime(2026, 1, 2, 12, 34, 56, tzinfo=UTC)


@pytest.fixture
def frozen_db(db_dsn, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("""
            INSERT INTO execution_tasks (task_type, ai_model, status, attempt, worker_id, created_at, queued_at,
                                         started_at, finished_at, cost_minor, currency, error)
            SELECT (ARRAY['implement_idea', 'idea_implementation', 'self_improvement'])[1 + g % 3],
                   (ARRAY['gpt-4o-mini', 'gpt-4o', 'claude-3-5-sonnet'])[1 + g % 3 * (g % 2)],
                   s.status, CASE WHEN s.status = 'queued' THEN 0 ELSE 1 + g % 2 END,
                   CASE WHEN s.status = 'queued' THEN NULL ELSE 'sim-ops-1-' || g % 4 END,
                   timestamptz '2026-01-02 11:00:00+00' + g * interval '97 seconds',
                   timestamptz '2026-01-02 11:00:00+00' + g * interval '97 seconds',
                   CASE WHEN s.status = 'queued' THEN NULL ELSE timestamptz '2026-01-02 11:00:05+00' + g * interval
                       '97 seconds' END,
                   CASE WHEN s.status IN ('succeeded', 'failed', 'cancelled')
                        THEN timestamptz '2026-01-02 11:00:05+00' + g * interval '97 seconds' + g * interval
                            '3 seconds' END,
                   CASE WHEN s.status IN ('succeeded', 'failed') THEN 40 + g * 7 END,
                   CASE WHEN s.status IN ('succeeded', 'failed') THEN 'USD' END,
                   CASE WHEN s.status = 'failed' THEN (ARRAY['TimeoutError: model call exceeded 120s',
                        '[bold red]x[/] injected markup stays literal', 'card 4242 4242 4242 4242 was declined'])[1 +
                            g % 3] END
            FROM generate_series(1, 40) g
            CROSS JOIN LATERAL (SELECT (ARRAY['succeeded','succeeded','failed','queued','running','cancelled'])[1 + g
                % 6]
                                AS status) s""")
    return db_dsn


async def snapshot(dsn, size):
    app = FsarApp(settings=Settings(dsn=dsn, live="notify"), dsn=dsn)
    async with app.run_test(size=size) as pilot:
        for _ in range(200):
            table = app.screen.query_one(KeyedTable)
            # matching is set last in a refresh: every panel has been drawn by then.
            if len(table.keys) == 40 and live_connected(app) and app.screen.matching is not None:
                break
            await pilot.pause(0.05)
        app.dsn_label = "postgresql://fsar:****@db.example:5432/prod"
        app.server_version = "16.4"
        app.update_headers()
        return await settled_svg(app, pilot)


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 48)])
async def test_queue_screen_snapshot(frozen_db, size):
    svg = await snapshot(frozen_db, size)
    check_snapshot(svg, f"queue_{size[0]}x{size[1]}.svg")
