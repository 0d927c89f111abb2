"""`fsar-tui report` end to end: the same numbers as `fsar-tui roi`, Markdown/JSON/CSV, and
delivery to a real local SMTP server (aiosmtpd) and a real local HTTP receiver; a failed
delivery exits 1 and keeps the file."""

from __future__ import annotations

import email
import json
import socket
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from support.sql import x
from test_roi import load_fixture


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", inbox
    finally:
        controller.stop()


@pytest.fixture
def http_receiver():
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], body))
            self.send_response(500 if self.path == "/broken" else 204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def seeded(db_dsn):
    load_fixture(db_dsn)
    x(
        db_dsn,
        "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold, hard) "
        "VALUES ('failure rate < 20%', 'failure_rate', '1 day', '<', 0.2, true)",
    )
    x(
        db_dsn,
        "INSERT INTO drift_alerts (indicator, scope, baseline, current) "
        "VALUES ('p90_run_time', '{\"task_type\": \"implement_idea\"}', 12.5, 19.25)",
    )
    return db_dsn


def test_report_numbers_are_the_roi_commands_numbers_in_every_format(db_dsn, run_cli, tmp_path):
    from test_proposals import report as fsar_report
    from test_proposals import write

    seeded(db_dsn)
    for name, text in (
        ("a", fsar_report("fsar_minor", severity=2)),
        ("b", fsar_report("fsar_stop", severity=9, block="true", task_type="self_improvement")),
    ):
        assert run_cli("ingest-fsar", str(write(tmp_path, name, text)), "--dsn", db_dsn).returncode == 0
    rep = run_cli("report", "--dsn", db_dsn, "--period", "30d", "--format", "json")
    assert rep.returncode == 0, rep.stderr
    report = json.loads(rep.stdout)
    roi = json.loads(run_cli("roi", "--dsn", db_dsn, "--window", "30d", "--format", "json").stdout)
    assert report["roi"]["summary"] == roi["summary"]
    assert {s["currency"] for s in report["roi"]["summary"]} == {"EUR", "GBP", "JPY", "USD"}
    assert report["audit_gates"][0]["verdict"] is None and report["audit_gates"][0]["hard"] is True
    assert report["open_alerts"][0]["indicator"] == "p90_run_time"
    assert {(p["type"], p["model"]) for p in report["profiles"]} >= {("implement_idea", "gpt-4o")}
    assert [(p["id"], p["blocking"]) for p in report["open_proposals"]] == [("fsar_stop", True), ("fsar_minor", False)]
    md = run_cli("report", "--dsn", db_dsn, "--period", "30d").stdout
    assert "| USD | " in md and "321.37 USD" in md and "never run" in md and "p90_run_time" in md
    assert "- **BLOCKING** severity 9, new: fsar\\_stop (self\\_improvement" in md  # names Markdown-escaped
    csv_text = run_cli("report", "--dsn", db_dsn, "--format", "csv").stdout
    usd_net = [line for line in csv_text.splitlines() if line.startswith("roi,total,USD,net_revenue_minor,")]
    assert usd_net == ["roi,total,USD,net_revenue_minor,32137"]


def test_report_is_mailed_and_posted(db_dsn, run_cli, smtp_server, http_receiver, tmp_path):
    seeded(db_dsn)
    smtp_url, inbox = smtp_server
    hook_url, received = http_receiver
    out = tmp_path / "weekly.json"
    rep = run_cli(
        "report",
        "--dsn",
        db_dsn,
        "--format",
        "json",
        "--out",
        str(out),
        "--smtp",
        smtp_url,
        "--to",
        "ops@example.com",
        "--to",
        "cfo@example.com",
        "--webhook",
        hook_url + "/hook",
    )
    assert rep.returncode == 0, rep.stderr
    ((rcpts, msg),) = inbox.messages
    assert rcpts == ["ops@example.com", "cfo@example.com"]
    assert msg["Subject"].startswith("fsar-tui report ")
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert "# fsar-tui report" in body and "321.37 USD" in body
    (attachment,) = list(msg.iter_attachments())
    assert json.loads(attachment.get_content()) == json.loads(out.read_text())
    ((content_type, posted),) = received
    assert content_type == "application/json" and json.loads(posted) == json.loads(out.read_text())


def test_a_failed_delivery_exits_1_and_keeps_the_file(db_dsn, run_cli, http_receiver, tmp_path):
    seeded(db_dsn)
    hook_url, _ = http_receiver
    closed = f"smtp://ops:hunter2@127.0.0.1:{free_port()}"
    rep = run_cli(
        "report", "--dsn", db_dsn, "--smtp", closed, "--to", "ops@example.com", "--webhook", hook_url + "/broken"
    )
    assert rep.returncode == 1
    kept = list(tmp_path.glob("fsar-report-*.md"))
    assert len(kept) == 1 and "# fsar-tui report" in kept[0].read_text()
    assert "hunter2" not in rep.stderr and "Traceback" not in rep.stderr
    assert "SMTP delivery to smtp://ops:***@" in rep.stderr and "HTTP 500" in rep.stderr
    assert f"kept at {kept[0].name}" in rep.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--period", "fortnight"], "--period"),
        (["--smtp", "smtp://127.0.0.1:25"], "--to"),
        (["--to", "ops@example.com"], "--smtp"),
        (["--smtp", "http://x", "--to", "a@b"], "smtp"),
    ],
)
def test_bad_report_options_are_usage_errors(db_dsn, run_cli, args, message):
    rep = run_cli("report", "--dsn", db_dsn, *args)
    assert rep.returncode == 2 and message in rep.stderr and rep.stderr.count("\n") == 1
