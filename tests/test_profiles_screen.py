"""Pilot and snapshot tests of the Profiles screen against a real database."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from fsar_tui import clock
from fsar_tui.screens.profiles import ProfilesScreen
from fsar_tui.screens.queue import QueueScreen
from support.pilot import live_connected, make_app, table, until
from support.snapshot import check_snapshot, settled_svg

FROZEN = datetime(2026, 1, 9, 12, 0, 0, tzinfo=UTC)


def add_finished(dsn, task_type, model, n, base_ms, spread_ms, hours_ago=1, fail_every=10, revision=None):
    """n finished tasks of one group, run time base + (i mod 97)·spread ms, ending before FROZEN."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, finished_at,
                                         cost_minor, waste_minor, currency, error, rollout_revision_id)
            SELECT %(type)s, %(model)s, CASE WHEN g %% %(fail)s = 0 THEN 'failed' ELSE 'succeeded' END, 1,
                   %(end)s - make_interval(hours => %(ago)s::int) - interval '10 minutes',
                   %(end)s - make_interval(hours => %(ago)s::int) - interval '9 minutes',
                   %(end)s - make_interval(hours => %(ago)s::int) - interval '9 minutes'
                       + make_interval(secs => (%(base)s + (g %% 97) * %(spread)s) / 1000.0),
                   5 + g %% 3, CASE WHEN g %% %(fail)s = 0 THEN 5 + g %% 3 END, 'USD',
                   CASE WHEN g %% %(fail)s = 0 THEN 'boom' END, %(revision)s
            FROM generate_series(1, %(n)s) g""",
            {
                "type": task_type,
                "model": model,
                "n": n,
                "base": base_ms,
                "spread": spread_ms,
                "end": FROZEN,
                "ago": hours_ago,
                "fail": fail_every,
                "revision": revision,
            },
        )


@pytest.fixture
def profiles_db(db_dsn, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    add_finished(db_dsn, "implement_idea", "gpt-4o-mini", 400, 8_000, 150)
    add_finished(db_dsn, "self_improvement", "claude-3-5-sonnet", 150, 200_000, 4_000, fail_every=4)
    add_finished(db_dsn, "idea_implementation", "gpt-4o", 12, 60_000, 1_000)
    # Last week, implement_idea was faster: compare mode must flag the regression.
    add_finished(db_dsn, "implement_idea", "gpt-4o-mini", 400, 4_000, 80, hours_ago=24 * 8)
    return db_dsn


def cell(app, key, column) -> str:
    names = table(app).column_names
    return table(app).get_row(key)[names.index(column)].plain


async def open_profiles(pilot, app):
    assert await until(pilot, lambda: app.session.ready)
    await pilot.press("2")
    assert isinstance(app.screen, ProfilesScreen)
    assert await until(pilot, lambda: len(table(app).keys) == 3)


async def test_profiles_show_the_same_numbers_as_the_cli_and_drill_down(profiles_db):
    app = make_app(profiles_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_profiles(pilot, app)
        screen = app.screen
        # Sorted by p90, slowest first; the group of 12 says its p99 is thin (dimmed).
        assert table(app).keys[0] == ("self_improvement", "claude-3-5-sonnet")
        p = next(p for p in screen.profiles if p.key == ("implement_idea", "gpt-4o-mini"))
        assert p.samples == 400 and abs(p.failure_rate - 0.1) < 1e-9
        assert cell(app, ("implement_idea", "gpt-4o-mini"), "n") == "400"
        assert await until(
            pilot,
            lambda: (
                "run time, self_improvement × claude-3-5-sonnet (150 runs"
                in screen.query_one("#histogram").content.plain
            ),
        )
        assert "p90 per day" in screen.query_one("#trend").content.plain
        # Window: 7d → 30d brings last week's tasks in.
        await pilot.press("w")
        assert await until(
            pilot, lambda: screen.profiles and cell(app, ("implement_idea", "gpt-4o-mini"), "n") == "800"
        )
        assert "window 30d" in screen.query_one("#profile-status").content.plain
        await pilot.press("w", "w", "w")  # 1h → 24h (1d) → 7d (1w)
        assert await until(
            pilot,
            lambda: (
                "window 1w" in screen.query_one("#profile-status").content.plain
                and cell(app, ("implement_idea", "gpt-4o-mini"), "n") == "400"
            ),
        )
        # Compare with the previous 7 days: implement_idea got ~2× slower, flagged.
        await pilot.press("c")
        assert await until(pilot, lambda: "Δp90" in table(app).column_names)
        assert await until(pilot, lambda: cell(app, ("implement_idea", "gpt-4o-mini"), "Δp90").startswith("+"))
        change = table(app).get_row(("implement_idea", "gpt-4o-mini"))[table(app).column_names.index("Δp90")]
        assert "red" in str(change.style)
        assert "(few)" not in change.plain
        assert cell(app, ("idea_implementation", "gpt-4o"), "Δp90") == "-"  # nothing to compare with
        assert cell(app, ("idea_implementation", "gpt-4o"), "runs now/before") == "12/0"
        # Sort by n: the biggest group first.
        while screen.sort != "n":
            await pilot.press("s")
        assert table(app).keys[0] == ("implement_idea", "gpt-4o-mini")
        # Drill down: the queue screen, filtered to the row's tasks.
        table(app).move_cursor(row=0)
        await pilot.press("enter")
        assert await until(
            pilot,
            lambda: (
                isinstance(app.screen, QueueScreen)
                and app.screen.filter_text.startswith("type:implement_idea model:gpt-4o-mini")
            ),
        )


async def test_compare_two_rollout_revisions_side_by_side(db_dsn, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        rollout = conn.execute(
            "INSERT INTO rollouts (target, kind, task_type) VALUES ('prompt:impl', 'prompt', "
            "'implement_idea') RETURNING id"
        ).fetchone()[0]
        old, new = (
            conn.execute(
                "INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256) "
                "VALUES (%s, %s, '{}', repeat(%s, 64)) RETURNING id",
                (rollout, r, c),
            ).fetchone()[0]
            for r, c in ((1, "a"), (2, "b"))
        )
    add_finished(db_dsn, "implement_idea", "gpt-4o", 150, 4_000, 40, hours_ago=30, revision=old)
    add_finished(db_dsn, "implement_idea", "gpt-4o", 150, 9_000, 40, hours_ago=2, revision=new)
    add_finished(db_dsn, "self_improvement", "gpt-4o", 120, 90_000, 500, revision=None)
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 40)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("2")
        assert await until(pilot, lambda: len(table(app).keys) == 2)
        await pilot.press("c", "c")
        assert await until(pilot, lambda: "revisions" in table(app).column_names)
        assert "compare: newest two revisions" in app.screen.query_one("#profile-status").content.plain
        key = ("implement_idea", "gpt-4o")
        assert await until(pilot, lambda: cell(app, key, "revisions") == f"{new} vs {old}")
        change = table(app).get_row(key)[table(app).column_names.index("Δp90")]
        assert change.plain.startswith("+") and "red" in str(change.style)
        assert cell(app, key, "runs newer/older") == "150/150"
        assert cell(app, ("self_improvement", "gpt-4o"), "revisions") == "one revision"
        await pilot.press("c")
        assert await until(pilot, lambda: "revisions" not in table(app).column_names)


async def test_profiles_follow_live_events(profiles_db):
    app = make_app(profiles_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_profiles(pilot, app)
        assert await until(pilot, lambda: live_connected(app))
        add_finished(profiles_db, "brand_new_type", "gpt-4o", 5, 1_000, 10)
        assert await until(pilot, lambda: ("brand_new_type", "gpt-4o") in table(app).keys)


async def test_profiles_window_from_the_command_line(profiles_db):
    app = make_app(profiles_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_profiles(pilot, app)
        await pilot.press("colon", *"profiles 12d", "enter")
        assert await until(pilot, lambda: "window 12d" in app.screen.query_one("#profile-status").content.plain)
        await pilot.press("colon", *"profiles soon", "enter")
        await pilot.pause(0.2)
        assert "window 12d" in app.screen.query_one("#profile-status").content.plain


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
async def test_profiles_snapshot(profiles_db, size):
    app = make_app(profiles_db)
    async with app.run_test(size=size) as pilot:
        await open_profiles(pilot, app)
        assert await until(pilot, lambda: "p90 per day" in app.screen.query_one("#trend").content.plain)
        app.dsn_label = "postgresql://fsar:****@db.example:5432/prod"
        app.server_version = "16.4"
        app.update_headers()
        svg = await settled_svg(app, pilot)
    check_snapshot(svg, f"profiles_{size[0]}x{size[1]}.svg")
