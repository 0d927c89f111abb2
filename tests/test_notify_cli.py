"""Notifications seen from outside: `fsar-tui audit run` notifying, a failed delivery in
`fsar-tui alerts list` (text and JSON) and on screen 4 (Pilot), secrets nowhere in what
is printed or stored, and bad input ([notify] with a bad URL, an SMTP server that does
not answer): one line, exit 2, nothing started."""

from __future__ import annotations

import json
from pathlib import Path

from fsar_tui.domain.notify_config import NotifyConfig
from fsar_tui.services import audit_pass
from support.pilot import make_app, until
from support.sql import q
from test_notify import PROPOSAL, block, free_port, smtp_server  # noqa: F401 - smtp_server: a fixture

NOTIFY_TABLES = ("notify_states", "notify_events", "notify_deliveries", "notify_attempts")


def config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "notify.toml"
    path.write_text(f"[notify]\n{body}\n")
    return str(path)


def stored(dsn: str) -> str:
    """Everything the notification tables hold, as text."""
    return "".join(
        str(q(dsn, f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {t} t")[0][0]) for t in NOTIFY_TABLES
    )


def test_audit_run_notifies_and_alerts_list_shows_the_failed_delivery_masked(
    db_dsn,
    run_cli,
    tmp_path,
    smtp_server,  # noqa: F811 - the fixture imported above
):
    url, box = smtp_server
    down = f"http://127.0.0.1:{free_port()}/hook?channel=ops&token=SECRET"
    cfg = config(tmp_path, f'webhooks = ["{down}"]\nsmtp = "{url}"\nto = ["oncall@example.com"]')
    block(db_dsn)

    ran = run_cli("audit", "run", "--config", cfg, "--dsn", db_dsn)
    assert ran.returncode in (0, 1), ran.stderr
    assert "notifications: 1 change(s) claimed, 1 sent, 1 failed" in ran.stdout, ran.stdout
    assert "failed: webhook http://127.0.0.1:" in ran.stdout and "/*** (#" in ran.stdout
    assert any(PROPOSAL.encode() in e.content for e in box.envelopes)  # the mail went
    again = run_cli("audit", "run", "--config", cfg, "--dsn", db_dsn, "--format", "json")
    sent = json.loads(again.stdout)["notifications"]
    assert sent["claimed"] == 0 and sent["sent"] == 0  # nothing changed; the failed one waits for its retry

    listed = run_cli("alerts", "list", "--config", cfg, "--dsn", db_dsn)
    assert listed.returncode == 0, listed.stderr
    assert "notifications: 1 failed delivery(ies)" in listed.stdout, listed.stdout
    line = next(t for t in listed.stdout.splitlines() if "/*** (#" in t)
    assert f"proposal:{PROPOSAL} firing" in line and "attempt 1 failed" in line and "next retry" in line, line
    assert "Connection refused" in line

    as_json = run_cli("alerts", "list", "--config", cfg, "--dsn", db_dsn, "--format", "json")
    data = json.loads(as_json.stdout)
    assert data["alerts"] == []
    (failure,) = data["notifications"]["failed_deliveries"]
    assert failure["channel"].startswith("webhook http://127.0.0.1:") and "/*** (#" in failure["channel"]
    assert failure["status"] == "pending" and failure["attempts"] == 1 and failure["next_attempt_at"]
    assert failure["event_key"] == f"proposal:{PROPOSAL}"

    for proc in (ran, again, listed, as_json):
        assert "SECRET" not in proc.stdout + proc.stderr
    assert "SECRET" not in stored(db_dsn)


def test_alerts_list_without_notifications(db_dsn, run_cli):
    listed = run_cli("alerts", "list", "--dsn", db_dsn)
    assert listed.returncode == 0 and "notifications: no failed delivery" in listed.stdout, listed.stdout
    data = json.loads(run_cli("alerts", "list", "--dsn", db_dsn, "--format", "json").stdout)
    assert data == {"alerts": [], "notifications": {"failed_deliveries": []}}


async def test_screen_4_shows_a_failed_delivery_without_its_secret(db_dsn):
    cfg = NotifyConfig(webhooks=(f"http://127.0.0.1:{free_port()}/hook?token=SECRET",))
    block(db_dsn)
    assert audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg).notify_failed >= 1
    app = make_app(db_dsn, notify=cfg)

    def line() -> str:
        return app.screen.query_one("#notify-status").content.plain

    async with app.run_test(size=(160, 40)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("4")
        assert await until(pilot, lambda: "FAILED" in line()), line()
        text = line()
        assert "1 FAILED delivery(ies) (1 retried)" in text and "/*** (#" in text, text
        assert f"proposal:{PROPOSAL} firing" in text and "next retry" in text, text
        assert "SECRET" not in app.export_screenshot()


async def test_screen_4_without_notifications_has_no_line_for_them(db_dsn):
    app = make_app(db_dsn)
    async with app.run_test(size=(160, 40)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("4")
        assert await until(pilot, lambda: app.audit_check is not None, tries=400)
        await pilot.pause(0.3)
        assert not app.screen.query_one("#notify-status").display  # screen 4 as it was


async def test_screen_4_with_notifications_and_none_failed(db_dsn):
    app = make_app(db_dsn, notify=NotifyConfig(webhooks=("http://127.0.0.1:9/x",)))
    async with app.run_test(size=(160, 40)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("4")
        line = app.screen.query_one("#notify-status")
        assert await until(pilot, lambda: line.display and "no failed delivery" in line.content.plain)


def test_a_bad_url_is_one_line_and_exit_2(db_dsn, run_cli, tmp_path):
    for body in ('webhooks = ["htp://hooks.example/x?token=SECRET"]', 'smtp = "smtp://u:SECRET@:25"\nto = ["a@b.c"]'):
        proc = run_cli("alerts", "list", "--config", config(tmp_path, body), "--dsn", db_dsn)
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout
        assert len(proc.stderr.strip().splitlines()) == 1 and "bad URL" in proc.stderr, proc.stderr
        assert "SECRET" not in proc.stderr


def test_an_smtp_server_that_does_not_answer_stops_audit_run_before_it_starts(db_dsn, run_cli, tmp_path):
    cfg = config(tmp_path, f'smtp = "smtp://u:SECRET@127.0.0.1:{free_port()}"\nto = ["oncall@example.com"]')
    block(db_dsn)
    before = q(db_dsn, "SELECT count(*) FROM audit_runs")
    proc = run_cli("audit", "run", "--config", cfg, "--dsn", db_dsn)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1 and "does not answer" in proc.stderr, proc.stderr
    assert "smtp://***@127.0.0.1:" in proc.stderr and "SECRET" not in proc.stderr
    assert q(db_dsn, "SELECT count(*) FROM audit_runs") == before  # nothing evaluated
    assert q(db_dsn, "SELECT count(*) FROM notify_events") == [(0,)]
