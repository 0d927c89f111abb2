"""Screen 4's canaries (issue 19), Pilot against real PostgreSQL: a canary started with the
CLI and judged shows in the panel (target, weight and step, the judge's verdict per
metric, why the weight holds); `P` and `A` confirm by the target's name and a reason and
move it in the database under the login's role; an abort is a banner on every screen; a
hostile target renders literally; a move someone else made first is refused, naming who.
The banner's canary line without a terminal, and the toast of the judge's moves."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg

from fsar_tui.db import bulk
from fsar_tui.domain.rollouts import artifact_sha256
from fsar_tui.screens.audit import AuditScreen
from fsar_tui.screens.canary_panel import outcome_toasts
from fsar_tui.services import canary_pass
from fsar_tui.services.audit_pass import CheckResult
from fsar_tui.widgets.canary_dialog import CanaryDialog
from fsar_tui.widgets.status_header import StatusHeader, banner_line, blocks_of
from support.pilot import make_app, until
from support.rollouts import V2
from support.sql import q, x

TARGET = "prompt/implement_idea"
HOSTILE = ("[red]evil\x1b[2J[/red]" + "w" * 300)[:300]


def deploy(run_cli, dsn: str, tmp_path, target: str = TARGET) -> None:
    artifact = tmp_path / "canary.json"
    artifact.write_text(json.dumps({**V2, "prompt_version": "v9"}))
    out = run_cli(
        "rollouts", "deploy", target, "--artifact", str(artifact), "--canary", "20", "--steps", "20,50,100",
        "--interval", "0", "--reason", "try v9", "--yes", "--dsn", dsn,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def judge(dsn: str) -> list[canary_pass.Outcome]:
    """One look of the judge (no tasks yet: inconclusive, the weight holds)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return canary_pass.judge_running(conn)


def canary_state(dsn: str, target: str = TARGET) -> tuple:
    return q(
        dsn,
        """SELECT c.state, c.weight, c.step FROM rollout_canaries c JOIN rollouts r ON r.id = c.rollout_id
           WHERE r.target = %s ORDER BY c.id DESC LIMIT 1""",
        (target,),
    )[0]


def panel_text(app) -> str:
    return app.screen.query_one("#canaries-body").text.plain


def header_text(app) -> str:
    return app.screen.query_one(StatusHeader).render().plain


def notes(app) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


async def open_canaries(pilot, app, needle: str = "canary 1") -> None:
    assert await until(pilot, lambda: app.session.ready)
    await pilot.press("4")
    assert await until(pilot, lambda: isinstance(app.screen, AuditScreen))
    assert await until(pilot, lambda: needle in panel_text(app), tries=400), panel_text(app)


async def test_the_panel_shows_the_judgement_and_p_then_a_move_it(rollout_db, run_cli, tmp_path, login):
    deploy(run_cli, rollout_db, tmp_path)
    (outcome,) = judge(rollout_db)
    assert outcome.verdict == "inconclusive" and outcome.action is None
    dsn = login("fsar_operator")
    role = psycopg.conninfo.conninfo_to_dict(dsn)["user"]
    app = make_app(dsn)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_canaries(pilot, app)
        shown = panel_text(app)
        assert f"{TARGET} · canary 1 running · revision 3 vs stable 2 · 20 % (step 1 of 3: 20 → 50 → 100)" in shown
        assert "judge: inconclusive" in shown and "weight holds: inconclusive" in shown, shown
        assert "weight held at 20 %" in shown
        for metric in ("failure rate", "p90 run time", "cost per success", "median tokens"):
            assert metric in shown, shown
        assert "STALE" not in shown
        title = app.screen.query_one("#canaries-status").text.plain
        assert "canaries · 1 running · P promote · A abort" in title, title

        await pilot.press("P")
        assert await until(pilot, lambda: isinstance(app.screen, CanaryDialog))
        facts = app.screen.query_one("#facts-text").render().plain
        assert "promote: 20 % → 50 % (step 2 of 3)" in facts, facts
        assert "the judge's last verdict is" in facts and "this promote overrides it" in facts, facts
        await pilot.press(*"prompt/impl", "enter")  # not the full name: refused, still open
        await pilot.pause(0.1)
        assert isinstance(app.screen, CanaryDialog) and canary_state(rollout_db) == ("running", 20, 0)
        await pilot.press(*"ement_idea", "enter")
        assert await until(pilot, lambda: app.screen.query_one("#reason").has_focus)
        await pilot.press(*"error rate equal after 1h", "enter")
        assert await until(pilot, lambda: canary_state(rollout_db) == ("running", 50, 1))
        assert await until(pilot, lambda: "promoted to 50 % (step 2)" in notes(app)), notes(app)
        assert await until(pilot, lambda: "50 % (step 2 of 3" in panel_text(app)), panel_text(app)

        await pilot.press("A")
        assert await until(pilot, lambda: isinstance(app.screen, CanaryDialog))
        await pilot.press(*TARGET, "enter")
        assert await until(pilot, lambda: app.screen.query_one("#reason").has_focus)
        await pilot.press(*"p90 doubled", "enter")
        assert await until(pilot, lambda: canary_state(rollout_db) == ("aborted", 0, 1))
        assert await until(pilot, lambda: "ABORTED" in panel_text(app)), panel_text(app)
        assert "ended" in panel_text(app) and "p90 doubled" in panel_text(app)
        await pilot.press("1")  # another screen: the banner
        banner = f"BLOCKED · 4 Audit · canary {TARGET} aborted: p90 doubled"
        assert await until(pilot, lambda: banner in header_text(app), tries=300), header_text(app)
    rows = q(
        rollout_db,
        "SELECT action, actor, target, reason FROM operator_actions "
        "WHERE action IN ('canary.promote', 'canary.abort') ORDER BY seq",
    )
    assert rows == [
        ("canary.promote", role, f"rollout:{TARGET}", "error rate equal after 1h"),
        ("canary.abort", role, f"rollout:{TARGET}", "p90 doubled"),
    ]


async def test_a_move_someone_made_first_is_refused_naming_who(rollout_db, run_cli, tmp_path, login, isolated_env):
    deploy(run_cli, rollout_db, tmp_path)
    app = make_app(rollout_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_canaries(pilot, app)
        await pilot.press("P")
        assert await until(pilot, lambda: isinstance(app.screen, CanaryDialog))
        other = login("fsar_operator")  # another operator, from the CLI, first
        aborted = run_cli(
            "rollouts", "canary", "abort", TARGET, "--reason", "mine first", "--yes", "--dsn", other,
            env={**isolated_env, "USER": "alice", "LOGNAME": "alice"},
        )  # fmt: skip
        assert aborted.returncode == 0, aborted.stderr
        await pilot.press(*TARGET, "enter")
        assert await until(pilot, lambda: app.screen.query_one("#reason").has_focus)
        await pilot.press(*"go on", "enter")
        assert await until(pilot, lambda: "changed while you decided" in notes(app)), notes(app)
        who = psycopg.conninfo.conninfo_to_dict(other)["user"]
        assert f"by {who} (OS user alice" in notes(app) and "it is aborted now" in notes(app), notes(app)
        assert await until(pilot, lambda: "ABORTED" in panel_text(app))
    assert canary_state(rollout_db) == ("aborted", 0, 0)
    assert q(rollout_db, "SELECT action, claimed_os_user FROM operator_actions WHERE action = 'canary.abort'") == [
        ("canary.abort", "alice")
    ]


async def test_a_hostile_target_renders_literally(rollout_db, run_cli, tmp_path):
    at = datetime(2026, 1, 1, tzinfo=UTC)
    v1, v2 = {"v": 1}, {"v": 2}
    with psycopg.connect(rollout_db, autocommit=True) as conn:
        bulk.insert_rollout(
            conn,
            HOSTILE,
            "prompt",
            "self_improvement",  # a type of its own: a second target of a type routes nothing (deploy refuses)
            [(v1, artifact_sha256(v1), at, "1"), (v2, artifact_sha256(v2), at, "2")],
        )
    deploy(run_cli, rollout_db, tmp_path, HOSTILE)
    app = make_app(rollout_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_canaries(pilot, app, "[red]evil[/red]www")
        shown = panel_text(app)
        assert "\x1b" not in shown and "[red]evil[/red]wwww" in shown, shown
        from test_layout_80x24 import painted

        assert await until(pilot, lambda: "[red]evil[/red]www" in painted(app)), painted(app)
        await pilot.press("A")  # the dialog names it literally too
        assert await until(pilot, lambda: isinstance(app.screen, CanaryDialog))
        labels = " ".join(str(label.render()) for label in app.screen.query("Label"))
        assert "[red]evil[/red]wwww" in labels and "\x1b" not in labels
        await pilot.resize_terminal(80, 24)  # the name's label wraps to 5 rows: the facts give way
        reason = app.screen.query_one("#reason")
        assert await until(pilot, lambda: 0 < reason.region.bottom <= 23 and "why" in painted(app)), painted(app)
        await pilot.press("escape")
        assert await until(pilot, lambda: isinstance(app.screen, AuditScreen))
        await pilot.resize_terminal(120, 40)
        out = run_cli("rollouts", "canary", "abort", HOSTILE, "--reason", "[bold]no[/bold]\x1b[31m", "--yes",
                      "--dsn", rollout_db)  # fmt: skip
        assert out.returncode == 0, out.stderr
        app.read_alert_counts()
        # 300 characters of target leave the reason its floor (cut from the middle): literal all the same.
        assert await until(pilot, lambda: "aborted: [bold]" in header_text(app), tries=300), header_text(app)
        banner = header_text(app).split("\n")[1]
        assert "\x1b" not in banner and banner.startswith("BLOCKED · 4 Audit · canary [red]evil[/red]www"), banner
        assert banner.endswith("bold]") and len(banner) <= 118  # nothing wrapped (120 columns, the padding)


def test_the_banner_names_an_aborted_canary_and_keeps_the_key():
    blocks = blocks_of((), (), ((TARGET, "canary judge: failure rate ×3.2 over 400 attempts " + "x" * 200),))
    line = banner_line(blocks, 80)
    assert len(line) == 80 and line.startswith(f"BLOCKED · 4 Audit · canary {TARGET} aborted: canary judg…")
    assert line.endswith("xxx")  # the reason cut from its middle; the target whole
    wide = blocks_of((("g", "all"),), (), (("t", "why"),))
    assert banner_line(wide, 120) == "BLOCKED ×2 · 4 Audit · hard gate g stops all tasks: failed"
    assert banner_line(blocks_of((), (), (("t", "why"),)), 100) == "BLOCKED · 4 Audit · canary t aborted: why"


def test_the_judges_moves_are_toasted_and_holds_are_not():
    def outcome(action, state, weight, detail=""):
        return canary_pass.Outcome("t\x1b[2J", 7, "pass", action, detail, weight, state)

    toasts = outcome_toasts(
        [outcome(None, "running", 20), outcome("promote", "running", 50), outcome("abort", "aborted", 0, "p90 ×3")]
    )
    assert toasts == [
        ("t: canary 7 promoted to 50 % (the judge)", "canary promoted", "information"),
        ("t: canary 7 aborted: p90 ×3", "canary aborted", "error"),
    ]


async def test_at_80x24_the_panel_fits_beside_the_four_tables(rollout_db, run_cli, tmp_path):
    deploy(run_cli, rollout_db, tmp_path)
    judge(rollout_db)
    app = make_app(rollout_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_canaries(pilot, app)
        from test_layout_80x24 import painted

        def fits() -> bool:
            rows = painted(app).splitlines()
            wanted = ("canaries · 1 running", f"{TARGET} · canary 1 running", "weight holds", "… 2 more lines")
            others = ("audit gates ·", "drift alerts ·", "operator log ·", "retention ·")
            return (
                len(rows) == 24
                and rows[-1].startswith(" q  Quit")
                and all(any(w in row for row in rows) for w in wanted + others)
            )

        # Capped (a quarter of the height: the verdict and the hold first, the rest counted);
        # every table's title, the retention line and the key bar stay on screen.
        assert await until(pilot, fits), painted(app)


async def test_a_stale_judgement_says_so_read_only_has_no_p_or_a_and_moves_toast(rollout_db, run_cli, tmp_path):
    deploy(run_cli, rollout_db, tmp_path)
    judge(rollout_db)
    # The judge last looked 10 minutes ago (as if no audit pass ran since).
    x(
        rollout_db,
        "UPDATE rollout_canaries SET judged_at = now() - interval '10 minutes', "
        "step_started_at = now() - interval '11 minutes'",
    )
    app = make_app(rollout_db, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_canaries(pilot, app)
        assert await until(pilot, lambda: "STALE: the last analysis or audit pass was 10 min ago" in panel_text(app)), (
            panel_text(app)
        )
        assert "P promote" not in app.screen.query_one("#canaries-status").text.plain
        bound = {b.binding.id for b in app.screen.active_bindings.values()}
        assert not {"audit.canary_promote", "audit.canary_abort"} & bound
        await pilot.press("A")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, CanaryDialog) and "read-only" in notes(app)
        # An audit pass whose judge aborted a canary (the evaluating panel's): one toast.
        moved = canary_pass.Outcome(TARGET, 1, "fail", "abort", "canary judge: p90 ×3.1", 0, "aborted")
        app.audit_checked(CheckResult(at=datetime.now(UTC), canaries=[moved]))
        assert await until(pilot, lambda: f"{TARGET}: canary 1 aborted: canary judge: p90 ×3.1" in notes(app))
        await pilot.pause(0.3)
        assert notes(app).count("canary 1 aborted") == 1, notes(app)
    assert canary_state(rollout_db) == ("running", 20, 0)
