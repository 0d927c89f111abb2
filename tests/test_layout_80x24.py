"""Issue 16 point 6, the remaining screens at 80×24 (Pilot, real PostgreSQL): proposal ids
cut from the middle so their tail shows, every rollout target on screen (or a title that
says how many are hidden), the profile table's fail% and cost/ok at 80 columns, and
panels that fit their rows to their height and say "… n more" when they cut (the rule:
widgets/text_panel.fit_rows). Each test reads what is painted, not the widgets' data."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import psycopg
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text
from textual.widgets import Static

from fsar_tui.db import bulk
from fsar_tui.domain.rollouts import artifact_sha256
from fsar_tui.screens.audit import AuditScreen
from fsar_tui.screens.audit_rows import CAPS, FLOORS, share_heights
from fsar_tui.screens.help import HelpScreen
from fsar_tui.screens.profiles import ProfilesScreen
from fsar_tui.screens.proposals import ProposalsScreen
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.screens.roi import RoiScreen
from fsar_tui.widgets.action_dialog import ActionDialog
from fsar_tui.widgets.text_panel import fit_rows
from support.pilot import make_app, table, until
from support.snapshot import check_snapshot, settled_svg
from test_profiles_screen import profiles_db  # noqa: F401 (fixtures)
from test_proposals import SEED_ID
from test_proposals_screen import proposals_db  # noqa: F401
from test_roi_screen import roi_db  # noqa: F401
from test_snapshots_small import dress


def painted(app) -> str:
    """The screen as the terminal shows it, one line per row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def add_targets(dsn: str, names: list[str]) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in names:
            v1, v2 = {"v": 1, "target": name}, {"v": 2, "target": name}
            bulk.insert_rollout(
                conn, name, "prompt", None, [(v1, artifact_sha256(v1), at, "one"), (v2, artifact_sha256(v2), at, "two")]
            )


async def open_audit(pilot, app) -> None:
    assert await until(pilot, lambda: app.session.ready)
    await pilot.press("4")
    assert await until(pilot, lambda: isinstance(app.screen, AuditScreen) and app.audit_check is not None, tries=400)


# -- the rule, without a terminal ----------------------------------------------------------


@given(
    heads=st.integers(0, 2),
    rows=st.integers(0, 30),
    extra=st.integers(0, 50),
    height=st.integers(1, 40),
    keep=st.sampled_from(["first", "last"]),
)
def test_fit_rows_fills_the_height_and_counts_what_it_cuts(heads, rows, extra, height, keep):
    head = [Text(f"head {i}") for i in range(heads)]
    items = [Text(f"row {i}") for i in range(rows)]
    total = rows + extra
    plain = fit_rows(head, items, height, total=total, what="things", keep=keep).plain
    lines = plain.split("\n") if plain else []
    assert lines[:heads] == [h.plain for h in head]
    body = lines[heads:]
    shown = [line for line in body if line.startswith("row ")]
    notes = [line for line in body if line.startswith("…")]
    if total == len(shown):  # nothing cut: no note, every row
        assert notes == [] and len(shown) == rows
    else:  # a cut says how many: every item not shown, loaded or not
        word = "earlier" if keep == "last" else "more"
        assert notes == [f"… {total - len(shown):,} {word} things"]
        if height > heads:  # the height is used: as many rows as fit beside the note
            assert len(lines) == height or len(shown) == rows
    if keep == "last" and shown:
        assert shown[-1] == f"row {rows - 1}"  # the newest kept


@given(available=st.integers(0, 80), wants=st.lists(st.integers(1, 60), min_size=4, max_size=4))
def test_stacked_tables_share_the_height_and_cut_only_when_short(available, wants):
    heights = share_heights(available, wants, FLOORS, CAPS)
    assert sum(heights) == max(available, sum(FLOORS))  # the whole height, never more unless floors
    assert all(h >= f for h, f in zip(heights, FLOORS, strict=True))
    assert all(h <= max(f, w) for h, f, w in zip(heights[:-1], FLOORS, wants, strict=False))  # no blank
    if available >= sum(max(f, w) for f, w in zip(FLOORS, wants, strict=True)):  # room: nothing cut
        assert heights[:-1] == [max(f, w) for f, w in zip(FLOORS[:-1], wants, strict=False)]


# -- screens at 80×24 ----------------------------------------------------------------------


async def test_proposal_ids_keep_their_tail_at_80_columns(proposals_db):  # noqa: F811
    app = make_app(proposals_db)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("5")
        assert await until(pilot, lambda: isinstance(app.screen, ProposalsScreen) and app.screen.current is not None)
        tail = SEED_ID[-8:]
        assert await until(pilot, lambda: tail in painted(app)), painted(app)
        row = next(line for line in painted(app).splitlines() if tail in line)
        assert "fsar_c0a…" in row and "self_improvement" in row  # cut from the middle, with its row
        # The checklist is as tall as its items when there is room: all three on screen.
        for item in ("a risk", "a mitigation", "another"):
            assert item in painted(app), painted(app)


async def test_every_rollout_target_is_on_screen_at_80x24(rollout_db):
    add_targets(rollout_db, ["prompt/self_improvement", "model/idea_impl"])
    app = make_app(rollout_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_audit(pilot, app)
        names = ("prompt/implement_idea", "prompt/self_improvement", "model/idea_impl")
        assert await until(pilot, lambda: all(name in painted(app) for name in names)), painted(app)
        assert "more (tab, j/k)" not in app.screen.query_one("#targets-status").content.plain


async def test_rollout_targets_that_do_not_fit_are_counted_in_the_title(rollout_db):
    names = [f"prompt/t{i:02d}" for i in range(14)]
    add_targets(rollout_db, names)
    app = make_app(rollout_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_audit(pilot, app)
        assert await until(pilot, lambda: "prompt/t00" in painted(app))

        def hint() -> tuple[int, int] | None:
            shown = sum(1 for name in [*names, "prompt/implement_idea"] if name in painted(app))
            found = re.search(r"15 target\(s\), (\d+) more", painted(app))
            return (shown, int(found.group(1))) if found else None

        # Settled: the title is redrawn after the heights apply (a frame may show the count of
        # the height before); it must come to agree with the rows on screen.
        assert await until(pilot, lambda: (h := hint()) is not None and h[1] == 15 - h[0]), painted(app)
        shown, more = hint() or (0, 0)
        assert 0 < shown < 15 and more == 15 - shown, painted(app)


async def test_profiles_keep_fail_rate_and_cost_at_80_columns(profiles_db):  # noqa: F811
    app = make_app(profiles_db)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("2")
        assert await until(pilot, lambda: isinstance(app.screen, ProfilesScreen) and len(table(app).keys) == 3)
        assert await until(pilot, lambda: "fail%" in painted(app) and "cost/ok" in painted(app)), painted(app)
        row = next(line for line in painted(app).splitlines() if "claude" in line)
        assert "24.7" in row and "0.0796 USD" in row, row  # self_improvement: one in four failed
        await pilot.resize_terminal(160, 48)  # wide: every column again
        assert await until(pilot, lambda: "wait p90" in painted(app) and "max" in painted(app)), painted(app)


# -- panels: "… n more", and more rows given more height ------------------------------------


def running_panel(app) -> list[str]:
    """The running panel's painted lines (its column of the screen)."""
    panel = app.screen.query_one("#running")
    region = panel.content_region
    lines = painted(app).splitlines()[region.y : region.y + region.height]
    return [line[region.x : region.x + region.width].rstrip() for line in lines]


async def test_a_panel_says_how_many_rows_it_cuts_and_shows_more_when_taller(db_dsn):
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO execution_tasks (task_type, status, attempt, worker_id, started_at, lease_expires_at)
               SELECT 'implement_idea', 'running', 1, 'w-' || g, now() - g * interval '1 minute',
                      now() + interval '10 minutes'
               FROM generate_series(1, 20) g"""
        )
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and "running (20)" in painted(app))

        def cut() -> tuple[int, int] | None:
            lines = running_panel(app)
            rows = [line for line in lines[1:] if re.match(r"\s*\d+m\d\ds ", line)]
            more = re.fullmatch(r"… (\d+) more", lines[-1].strip()) if lines else None
            return (len(rows), int(more.group(1))) if more else None

        assert await until(pilot, lambda: cut() is not None), running_panel(app)
        small, more = cut() or (0, 0)
        assert small > 0 and more == 20 - small, running_panel(app)

        await pilot.resize_terminal(160, 48)
        assert await until(pilot, lambda: (cut() or (0, 0))[0] > small), running_panel(app)
        tall, more = cut() or (0, 0)
        assert more == 20 - tall, running_panel(app)


async def test_flag_entries_say_how_many_more_at_80x24(roi_db):  # noqa: F811
    app = make_app(roi_db)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("3")
        assert await until(pilot, lambda: isinstance(app.screen, RoiScreen) and app.screen.flags)
        # The card-testing burst: eight entries behind the flag, not all of them fit.
        assert await until(pilot, lambda: "8 entries; newest:" in painted(app)), painted(app)
        assert await until(pilot, lambda: re.search(r"… \d+ more entries", painted(app))), painted(app)
        shown = len(re.findall(r"#\d+ 01-07 \d\d:\d\d revenue", painted(app)))
        more = int(re.search(r"… (\d+) more entries", painted(app)).group(1))
        assert shown > 0 and more == 8 - shown, painted(app)


# -- snapshots at 80×24 of the dialogs the other tests do not picture ---------------------


async def test_reason_dialog_and_help_at_80x24(proposals_db):  # noqa: F811
    app = make_app(proposals_db)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("5")
        assert await until(pilot, lambda: isinstance(app.screen, ProposalsScreen) and app.screen.current is not None)
        app.live_name = "notify"
        dress(app)
        await pilot.pause(0.3)
        await pilot.press("a")  # accept the highlighted (most severe) proposal: the reason dialog
        assert await until(pilot, lambda: isinstance(app.screen, ActionDialog))
        check_snapshot(await settled_svg(app, pilot), "reason_dialog_80x24.svg")
        await pilot.press("escape")
        assert await until(pilot, lambda: isinstance(app.screen, ProposalsScreen))
        await pilot.press("question_mark")
        assert await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        check_snapshot(await settled_svg(app, pilot), "help_80x24.svg")


async def test_checklist_items_are_numbered_as_proposals_tick_takes_them(proposals_db):  # noqa: F811
    app = make_app(proposals_db)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("5")
        assert await until(pilot, lambda: isinstance(app.screen, ProposalsScreen) and app.screen.current is not None)
        assert await until(pilot, lambda: "a mitigation" in painted(app)), painted(app)
        rows = [
            line for line in painted(app).splitlines() if any(i in line for i in ("a risk", "a mitigation", "another"))
        ]
        # `proposals show` numbers risks then mitigations from 1: the screen shows the same numbers.
        assert [r.split("[")[0].split()[-1] for r in rows] == ["1.", "2.", "3."], rows
        await pilot.press("question_mark")
        assert await until(pilot, lambda: "[keymap]" in painted(app)), painted(app)  # no markup eaten
        notes = [str(getattr(s, "content", None) or s.renderable) for s in app.screen.query(Static)]
        assert any("unique prefix" in n and "tab completes" in n for n in notes), notes


# -- screen 1 at 80×24: workers told apart, priority, the armed filter, the sort ----------


def sql(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


def panel_painted(app, name: str) -> list[str]:
    """A panel's painted lines (its part of the screen)."""
    region = app.screen.query_one(f"#{name}").content_region
    lines = painted(app).splitlines()[region.y : region.y + region.height]
    return [line[region.x : region.x + region.width].rstrip() for line in lines]


def status_line(app) -> str:
    return next(line for line in painted(app).splitlines() if " matching · " in line)


async def test_workers_and_running_tasks_are_told_apart_at_80x24(db_dsn):
    # Three workers whose names differ only at the end, each running one task.
    sql(
        db_dsn,
        """INSERT INTO execution_tasks (task_type, status, attempt, worker_id, started_at, lease_expires_at)
           SELECT 'implement_idea', 'running', 1, 'worker-aaaaaaaaaaaa-bbbbbbbbbbbb-' || g,
                  now() - g * interval '1 minute', now() + interval '10 minutes'
           FROM generate_series(1, 3) g""",
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and "workers (3)" in painted(app))
        assert await until(pilot, lambda: len([r for r in panel_painted(app, "workers") if "▶" in r]) == 3)
        workers = panel_painted(app, "workers")
        # Every worker on its own line, as the part of its name that tells it apart.
        labels = sorted(row.split()[-1] for row in workers if "▶" in row)
        assert labels == ["…-1", "…-2", "…-3"], workers
        # Each running task with its id and its worker, as the workers panel names it.
        running = [row for row in panel_painted(app, "running") if re.match(r"\s*\d+m\d\ds ", row)]
        assert running, panel_painted(app, "running")
        for row in running:
            found = re.match(r"\s*\d+m\d\ds (\d+) …-(\d)\b", row)
            assert found and found.group(1) == found.group(2), running  # task g runs on worker …-g


async def test_priority_is_a_column_at_80_and_100_columns(db_dsn):
    sql(
        db_dsn, "INSERT INTO execution_tasks (task_type, priority) VALUES ('implement_idea', 7), ('implement_idea', -3)"
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 2)
        for width in (80, 100):
            await pilot.resize_terminal(width, 30)
            assert await until(pilot, lambda: re.search(r"\bid +status +pri +type\b", painted(app))), painted(app)
            rows = [line for line in painted(app).splitlines() if "implement_idea" in line and "queued" in line]
            assert [row.split()[2] for row in rows] == ["-3", "7"], rows  # newest (id 2) first


async def test_arming_the_whole_filter_is_said_first_at_80_columns(db_dsn):
    sql(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, status, attempt, started_at, finished_at) "
        "SELECT 'implement_idea', 'succeeded', 1, now(), now() FROM generate_series(1, 5)",
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 5)
        await pilot.press("slash", *"status:succeeded", "enter")
        assert await until(pilot, lambda: app.screen.matching == 5)
        await pilot.press("a")
        assert await until(pilot, lambda: "NEXT ACTION: WHOLE FILTER" in status_line(app)), painted(app)
        assert status_line(app).strip().startswith("NEXT ACTION: WHOLE FILTER"), status_line(app)


async def test_the_filter_bar_hint_is_not_a_filter_and_the_sort_is_said(db_dsn):
    sql(
        db_dsn,
        """INSERT INTO execution_tasks (task_type, status, attempt, started_at, finished_at, error)
           SELECT 'self_improvement', 'failed', 1, now(), now(), 'timeout ' || g FROM generate_series(1, 3) g""",
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(table(app).keys) == 3)
        # No filter: the bar says so in words (grey alone is lost under NO_COLOR).
        assert await until(pilot, lambda: "(no filter) press / to filter" in painted(app)), painted(app)
        await pilot.press("S")  # the operator reverses the sort: oldest first …
        await pilot.press("slash", *"status:failed type:self_improvement since:2h error~timeout", "enter")
        assert await until(pilot, lambda: app.screen.matching == 3 and table(app).keys)
        # … and it persists across filters (as in k9s); the line under the bar says so at 80.
        assert await until(pilot, lambda: "sort id asc · 3 matching" in status_line(app)), painted(app)
        assert table(app).current_key == min(table(app).keys)
