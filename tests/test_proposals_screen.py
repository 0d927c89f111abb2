"""Pilot and snapshot tests of screen 5 (Proposals) and of what the role lets the app do,
against a real database."""

from __future__ import annotations

import hashlib
import html
import json
from datetime import UTC, datetime

import pytest

from fsar_tui import clock
from fsar_tui.db import proposals
from fsar_tui.db.connect import connect
from fsar_tui.domain.fsar_report import parse_report
from fsar_tui.screens.audit import AuditScreen
from fsar_tui.screens.proposals import ProposalsScreen
from fsar_tui.screens.queue import QueueScreen
from fsar_tui.screens.task_detail import TaskDetailScreen
from fsar_tui.widgets.status_header import StatusHeader
from support.pilot import make_app, until
from support.snapshot import check_snapshot, settled_svg
from support.sql import q, x
from test_proposals import SEED_ID, report, seed_text

FROZEN = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def ingest(dsn, *texts):
    with connect(dsn, autocommit=True) as conn:
        proposals.ingest(conn, [parse_report(t, f"t{i}") for i, t in enumerate(texts)], actor="test")


def hostile_row(dsn):
    """A row written around the parser (another tool, a bad migration): the screen must still be safe."""
    x(
        dsn,
        "INSERT INTO fsar_proposals (id, reported_at, severity, block_execution, task_type, body, risks, "
        "mitigations, source_sha256) VALUES ('fsar_hostile', '2026-11-20 08:00+00', 2, false, 'implement_idea', "
        "%s, %s, '[]', %s)",
        (
            "implement_idea: \x1b]52;c;cGF5bG9hZA==\x07 clipboard \x1b[31mred [bold red]markup[/] call +1 415 555 0100",
            json.dumps(["risk \x1b[2J with escape"]),
            hashlib.sha256(b"h").hexdigest(),
        ),
    )


@pytest.fixture
def proposals_db(db_dsn, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    block = report(
        "fsar_block",
        severity=9,
        block="true",
        task_type="idea_implementation",
        body_extra="\nWrite to jane.doe@example.com before lifting.",
    )
    ingest(db_dsn, seed_text(), block)
    hostile_row(db_dsn)
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model, proposal_id, created_at, queued_at) "
        "SELECT 'self_improvement', 'gpt-4o', %s, timestamptz '2026-11-25 10:00+00' + g * interval '1 minute', "
        "timestamptz '2026-11-25 10:00+00' FROM generate_series(1, 3) g",
        (SEED_ID,),
    )
    return db_dsn


def header(app) -> StatusHeader:
    return app.screen.query_one(StatusHeader)


def list_keys(app):
    return app.screen.query_one("#proposals").keys


def body_source(app) -> str:
    return app.screen.query_one("#body").source


async def reason(pilot, text):
    await pilot.pause(0.3)
    await pilot.press(*text, "enter")


async def test_triage_decide_tick_lift_and_the_banner(proposals_db):
    app = make_app(proposals_db)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        # The blocking proposal is in every screen's header.
        assert await until(pilot, lambda: header(app).blocks == (("fsar_block", "idea_implementation", 9),))
        assert isinstance(app.screen, QueueScreen)
        assert (
            "BLOCKED · 5 Proposals · FSAR proposal fsar_block stops idea_implementation: severity 9"
            in header(app).render().plain
        )
        await pilot.press("5")
        assert isinstance(app.screen, ProposalsScreen)
        assert await until(pilot, lambda: list_keys(app) == ["fsar_block", SEED_ID, "fsar_hostile"])  # by severity
        assert await until(pilot, lambda: "[REDACTED:email]" in body_source(app))
        assert "jane.doe@example.com" not in body_source(app)
        status = app.screen.query_one("#detail-status").content.plain
        assert "fsar_block · severity 9 · new · BLOCKS idea_implementation" in status

        # Hostile text: no escape sequence survives, markup stays literal, the phone is redacted.
        await pilot.press("j", "j")
        assert await until(pilot, lambda: "clipboard" in body_source(app))
        assert "\x1b" not in body_source(app) and "[bold red]markup[/]" in body_source(app)
        assert "[REDACTED:phone]" in body_source(app)
        checklist = app.screen.query_one("#checklist")
        assert "\x1b" not in checklist.get_row("risks/0")[-1].plain
        svg = app.export_screenshot()
        assert "cGF5bG9hZA" not in svg and "\x1b" not in svg
        painted = html.unescape(svg).replace("\xa0", " ")
        assert "[bold red]markup[/]" in painted  # rendered as typed, not as bold red

        # Accept the seed with a reason; its linked tasks are listed and open.
        await pilot.press("k")
        assert await until(pilot, lambda: app.screen.current is not None and app.screen.current.row.id == SEED_ID)
        assert len(app.screen.query_one("#tasks").keys) == 3
        await pilot.press("a")
        await reason(pilot, "sound analysis")
        assert await until(
            pilot,
            lambda: q(proposals_db, "SELECT status FROM fsar_proposals WHERE id = %s", (SEED_ID,)) == [("accepted",)],
        )
        # Tick the first mitigation.
        await pilot.press("tab", "tab")
        assert app.screen.focused is checklist
        await pilot.press("j", "j", "j", "space")
        assert await until(
            pilot,
            lambda: (
                q(proposals_db, "SELECT checklist ? 'mitigations/0' FROM fsar_proposals WHERE id = %s", (SEED_ID,))
                == [(True,)]
            ),
        )
        assert await until(pilot, lambda: checklist.get_row("mitigations/0")[1].plain == "4. [x]")
        await pilot.press("tab", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen))
        await pilot.press("escape")
        assert await until(pilot, lambda: isinstance(app.screen, ProposalsScreen))

        # Lift the block: the banner goes, everywhere.
        await pilot.press("shift+tab", "shift+tab", "g")
        app.screen.query_one("#proposals").focus()
        app.screen.query_one("#proposals").move_cursor(row=0)
        assert await until(pilot, lambda: app.screen.current is not None and app.screen.current.row.id == "fsar_block")
        await pilot.press("L")
        await reason(pilot, "fixed behind a flag")
        assert await until(pilot, lambda: header(app).blocks == ())
        assert "BLOCKED" not in header(app).render().plain
        await pilot.press("1")
        assert header(app).blocks == () and "BLOCKED" not in header(app).render().plain
    assert q(
        proposals_db, "SELECT action, target, reason FROM operator_actions WHERE claimed_os_user <> 'test' ORDER BY seq"
    ) == [
        ("proposal.accept", f"proposal:{SEED_ID}", "sound analysis"),
        ("proposal.tick", f"proposal:{SEED_ID}", "Add scheduled adversarial audits with hard pass/fail gates"),
        ("proposal.lift_block", "proposal:fsar_block", "fixed behind a flag"),
    ]


async def test_a_decision_lost_to_someone_else_changes_nothing(proposals_db):
    app = make_app(proposals_db)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("5")
        assert await until(pilot, lambda: app.screen.current is not None and app.screen.current.row.id == "fsar_block")
        with connect(proposals_db, autocommit=True) as conn:
            proposals.decide(conn, "fsar_block", "reject", actor="mallory", reason="first")
        await pilot.press("a")
        await reason(pilot, "too late")
        assert await until(
            pilot,
            lambda: any("is now rejected, not new" in n.message and "mallory" in n.message for n in app._notifications),
        )
    assert q(proposals_db, "SELECT status FROM fsar_proposals WHERE id = 'fsar_block'") == [("rejected",)]


async def test_a_viewer_sees_no_actions_and_cannot_change_anything(proposals_db, login, mqtt_url):
    viewer = login("fsar_viewer")
    app = make_app(viewer, ingest_live=True, mqtt_url=mqtt_url)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: app.session.privileges is not None)
        assert app.session.read_only and not app.can("act")
        assert await until(pilot, lambda: "READ-ONLY" in header(app).render().plain)
        assert "role: viewer" in header(app).render().plain
        assert await until(pilot, lambda: any("--ingest-live is off" in n.message for n in app._notifications))
        await pilot.press("5")
        assert await until(pilot, lambda: app.screen.current is not None)
        bound = {b.binding.id for b in app.screen.active_bindings.values()}
        assert not bound & {"proposals.accept", "proposals.reject", "proposals.lift", "proposals.tick"}
        await pilot.press("a")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ProposalsScreen)  # no dialog
        for key, screen_type, hidden in (
            ("1", QueueScreen, {"queue.retry", "queue.cancel", "queue.requeue"}),
            ("4", AuditScreen, {"audit.rollback", "audit.override", "audit.ack"}),
        ):
            await pilot.press(key)
            assert await until(pilot, lambda kind=screen_type: isinstance(app.screen, kind))
            await pilot.pause(0.2)
            assert not hidden & {b.binding.id for b in app.screen.active_bindings.values()}
    assert q(proposals_db, "SELECT count(*) FROM fsar_proposals WHERE status <> 'new'") == [(0,)]


async def test_an_operator_acts_but_cannot_override_or_reveal(proposals_db, login):
    operator = login("fsar_operator")
    app = make_app(operator, reveal=True)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: app.session.privileges is not None)
        assert app.can("act") and not app.can("override") and not app.revealed
        assert await until(pilot, lambda: any("--reveal refused" in n.message for n in app._notifications))
        assert "role: operator" in header(app).render().plain and "REVEALED" not in header(app).render().plain
        await pilot.press("4")
        assert isinstance(app.screen, AuditScreen)
        bound = {b.binding.id for b in app.screen.active_bindings.values()}
        assert "audit.rollback" in bound and "audit.override" not in bound
        await pilot.press("5")
        assert await until(pilot, lambda: "[REDACTED:email]" in body_source(app))
    assert q(proposals_db, "SELECT count(*) FROM operator_actions WHERE action = 'reveal'") == [(0,)]


async def test_an_admin_reveal_is_logged_and_shown(proposals_db, login):
    admin = login("fsar_admin")
    app = make_app(admin, reveal=True)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(pilot, lambda: app.revealed)
        assert await until(pilot, lambda: "RAW DATA REVEALED" in header(app).render().plain)
        await pilot.press("5")
        assert await until(pilot, lambda: "jane.doe@example.com" in body_source(app))
    assert q(proposals_db, "SELECT target FROM operator_actions WHERE action = 'reveal'") == [("app session",)]


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_proposals_screen_snapshot(proposals_db, size):
    app = make_app(proposals_db)
    async with app.run_test(size=size) as pilot:
        assert await until(pilot, lambda: app.session.ready and header(app).blocks)
        await pilot.press("5")
        assert await until(pilot, lambda: app.screen.current is not None and "[REDACTED:email]" in body_source(app))
        app.dsn_label = "postgresql://fsar:****@db.example:5432/prod"
        app.server_version = "16.4"
        app.live_name = "notify"
        app.update_headers()
        svg = await settled_svg(app, pilot)
    check_snapshot(svg, f"proposals_{size[0]}x{size[1]}.svg")


async def test_the_app_ingests_live_reports_and_raises_the_banner(db_dsn, mqtt_url):
    import aiomqtt

    from fsar_tui.live.mqtt import parse_mqtt_url
    from fsar_tui.live.proposal_feed import PROPOSALS_TOPIC

    app = make_app(db_dsn, mqtt_url=mqtt_url, ingest_live=True)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:  # toasts painted, as in real use
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("5")
        text = report("fsar_live", severity=10, block="true", task_type="self_improvement").encode()
        for _ in range(100):  # the app's subscription starts after connecting: publish until it is heard
            try:
                async with parse_mqtt_url(mqtt_url).client() as client:
                    await client.publish(PROPOSALS_TOPIC, text, qos=1)
            except aiomqtt.MqttError:
                pass
            if await until(pilot, lambda: q(db_dsn, "SELECT id FROM fsar_proposals") != [], tries=10):
                break
        assert q(db_dsn, "SELECT id, severity, block_execution FROM fsar_proposals") == [("fsar_live", 10, True)]
        assert await until(pilot, lambda: header(app).blocks == (("fsar_live", "self_improvement", 10),))
        assert await until(pilot, lambda: list_keys(app) == ["fsar_live"])
        assert any("ingested fsar_live (severity 10, BLOCKS self_improvement)" in n.message for n in app._notifications)
        # A hostile publication: refused with its line, shown literally, the app carries on.
        async with parse_mqtt_url(mqtt_url).client() as client:
            await client.publish(PROPOSALS_TOPIC, b"[/x] [@click=app.quit]boom[/]", qos=1)
        assert await until(
            pilot, lambda: any("rejected: mqtt:fsar/v1/proposals:1:" in n.message for n in app._notifications)
        )
        await pilot.pause(0.5)
        assert app.is_running and isinstance(app.screen, ProposalsScreen)
        toasts = [t.render().plain for t in app.screen.query("Toast")]  # as painted: never markup
        assert any("found '[/x] [@click=app.quit]boom[/]'" in t for t in toasts), toasts


async def test_a_body_of_sixteen_thousand_list_items_does_not_freeze_the_screen(db_dsn):
    """An accepted report whose body is 16,000 one-word list items (64 KiB): Textual builds a
    widget per Markdown block, which took minutes with no key handled. The screen renders
    the first lines, says the body is cut, and the next key is handled."""
    body = "self_improvement: x\n\n" + "- a\n" * 16_000
    x(
        db_dsn,
        "INSERT INTO fsar_proposals (id, reported_at, severity, task_type, body, source_sha256) "
        "VALUES ('FSAR-BOMB', now(), 10, 'self_improvement', %s, %s)",
        (body, "0" * 64),
    )
    app = make_app(db_dsn)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("5")
        shown = app.screen.query_one("#body")
        assert await until(pilot, lambda: "the first 300 lines are shown" in shown.source), shown.source[-200:]
        await pilot.press("1")
        assert await until(pilot, lambda: isinstance(app.screen, QueueScreen))
