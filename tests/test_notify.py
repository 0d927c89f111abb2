"""Notifications against a real database, a real HTTP receiver (http.server in a thread)
and a real SMTP server (aiosmtpd): one notification per state change however many panels
run their audit passes, retries with backoff, every attempt recorded, mail.

The receivers are fixtures here; tests/test_notify_cli.py imports them."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from psycopg.types.json import Jsonb

from fsar_tui.config import load_settings
from fsar_tui.db.connect import connect
from fsar_tui.domain import notify as rules
from fsar_tui.domain.notify_config import NotifyConfig
from fsar_tui.services import audit_pass
from fsar_tui.services import notify as notifier
from support.sql import q, x
from test_notify_domain import alertmanager_problems

PROPOSAL = "fsar_notify_1"


class Receiver:
    """An HTTP receiver: answers each POST about alert `only` (any, when None) with the
    next status of `script` (then 200), and keeps every body it was sent."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.only: str | None = None
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(body)
                receiver.bodies.append(payload)
                receiver.paths.append(self.path)
                ours = receiver.only in (None, payload["alerts"][0]["labels"]["alertname"])
                status = receiver.script.pop(0) if receiver.script and ours else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alertmanager?token=SECRET"

    def about(self, key_label: str, value: str) -> list[dict]:
        return [b for b in self.bodies if b["alerts"][0]["labels"].get(key_label) == value]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    def __init__(self) -> None:
        self.envelopes: list = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    """aiosmtpd on a free port, AUTH allowed without TLS (u / SECRET); yields (url, mailbox)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    box = Mailbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            box.logins.append((auth_data.login, auth_data.password))
            return AuthResult(success=auth_data.login == b"u" and auth_data.password == b"SECRET")
        return AuthResult(success=False)

    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False)
    controller.start()
    try:
        yield f"smtp://u:SECRET@127.0.0.1:{port}", box
    finally:
        controller.stop()


def block(dsn: str, pid: str = PROPOSAL) -> None:
    """A blocking FSAR proposal, as `ingest-fsar` leaves one."""
    x(
        dsn,
        "INSERT INTO fsar_proposals (id, reported_at, severity, block_execution, task_type, body, source_sha256) "
        "VALUES (%s, now(), 9, true, 'implement_idea', 'Stop implement_idea: it leaks keys', repeat('a', 64))",
        (pid,),
    )


def lift(dsn: str, pid: str = PROPOSAL) -> None:
    x(dsn, "UPDATE fsar_proposals SET block_lifted_at = now() WHERE id = %s", (pid,))


def passes(dsn: str, cfg: NotifyConfig, panels: int = 3) -> list[audit_pass.CheckResult]:
    """`panels` audit passes at once, each on its thread, as that many open panels run them."""
    results: list = [None] * panels
    start = threading.Barrier(panels)

    def panel(i: int) -> None:
        start.wait()
        results[i] = audit_pass.scheduled_check(dsn, read_only=False, notify=cfg)

    threads = [threading.Thread(target=panel, args=(i,)) for i in range(panels)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in results)
    return results


def attempts(dsn: str, key: str) -> list[tuple]:
    return q(
        dsn,
        "SELECT a.attempt, a.outcome, a.http_status, a.next_retry_at IS NOT NULL FROM notify_attempts a "
        "JOIN notify_deliveries d ON d.id = a.delivery_id JOIN notify_events e ON e.id = d.event_id "
        "WHERE e.event_key = %s ORDER BY a.id",
        (key,),
    )


def test_three_panels_send_one_notification_per_state_change(db_dsn, receiver, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[notify]\nwebhooks = ["{receiver.url}"]\n')
    cfg = load_settings(config_path=config, env={}).notify
    assert cfg is not None
    key = f"proposal:{PROPOSAL}"
    block(db_dsn)
    results = passes(db_dsn, cfg)
    assert sum(r.notify_events for r in results) >= 1
    assert sum(r.notify_problem is not None for r in results) == 0, [r.notify_problem for r in results]
    fired = receiver.about("proposal", PROPOSAL)
    assert len(fired) == 1, receiver.bodies
    assert alertmanager_problems(fired[0]) == [] and fired[0]["status"] == "firing"
    alert = fired[0]["alerts"][0]
    assert alert["labels"]["alertname"] == "FsarBlockingProposal" and alert["labels"]["task_type"] == "implement_idea"
    assert (
        alert["endsAt"] == rules.ZERO_TIME and "blocks execution of implement_idea" in alert["annotations"]["summary"]
    )
    assert receiver.paths[0] == "/alertmanager?token=SECRET"  # the token reaches the receiver, and only it
    assert q(db_dsn, "SELECT count(*) FROM notify_events WHERE event_key = %s", (key,)) == [(1,)]
    assert attempts(db_dsn, key) == [(1, "ok", 200, False)]

    passes(db_dsn, cfg)  # nothing changed: nothing sent
    assert len(receiver.about("proposal", PROPOSAL)) == 1

    lift(db_dsn)  # the block is lifted: one "resolved", with the same labels (receivers pair them)
    passes(db_dsn, cfg)
    passes(db_dsn, cfg)
    sent = receiver.about("proposal", PROPOSAL)
    assert [b["status"] for b in sent] == ["firing", "resolved"]
    assert alertmanager_problems(sent[1]) == []
    assert sent[1]["groupKey"] == sent[0]["groupKey"]
    assert sent[1]["alerts"][0]["fingerprint"] == sent[0]["alerts"][0]["fingerprint"]
    assert sent[1]["alerts"][0]["endsAt"] != rules.ZERO_TIME
    assert q(db_dsn, "SELECT state FROM notify_states WHERE event_key = %s", (key,)) == [("resolved",)]
    stored = q(db_dsn, "SELECT channel FROM notify_deliveries")[0][0]
    assert "SECRET" not in stored and "/*** (#" in stored


def test_two_claims_of_one_change_racing_make_one_event(db_dsn):
    """`audit run` holds no advisory lock: the row lock of the claim is what orders it
    against a panel's pass. Two transactions claim the same change; one wins."""
    block(db_dsn)
    args = {
        "key": f"proposal:{PROPOSAL}",
        "kind": "proposal",
        "state": "firing",
        "labels": {"alertname": "FsarBlockingProposal", "severity": "critical"},
        "annotations": {"summary": "s"},
        "channels": [("webhook:0123456789abcdef", "webhook http://h/x")],
    }
    from fsar_tui.db import notifications

    with connect(db_dsn) as first, connect(db_dsn) as second:
        assert notifications.claim(first, **args) is not None  # first holds the row, uncommitted
        outcome: list = []
        waiting = threading.Thread(target=lambda: outcome.append(notifications.claim(second, **args)))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # blocked on first's row
        first.commit()
        waiting.join(10)
        second.commit()
    assert outcome == [None]
    assert q(db_dsn, "SELECT count(*) FROM notify_events") == [(1,)]
    assert q(db_dsn, "SELECT count(*) FROM notify_deliveries") == [(1,)]


def due_now(dsn: str) -> None:
    """The wait of every pending delivery over (the database plans retries by its own
    clock: the test moves the plan, not the clock)."""
    x(dsn, "UPDATE notify_deliveries SET next_attempt_at = now() WHERE status = 'pending'")


def waits(dsn: str) -> list[int]:
    """Each failed attempt's planned wait before its retry, in seconds."""
    rows = q(
        dsn,
        "SELECT extract(epoch FROM next_retry_at - at)::int FROM notify_attempts WHERE next_retry_at IS NOT NULL "
        "ORDER BY id",
    )
    return [r[0] for r in rows]


def test_a_receiver_failing_twice_then_accepting_gets_it_once(db_dsn, receiver):
    cfg = NotifyConfig(webhooks=(receiver.url,))
    key = f"proposal:{PROPOSAL}"
    receiver.script, receiver.only = [500, 500], "FsarBlockingProposal"
    block(db_dsn)

    first = audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)
    assert first.notify_events >= 1 and first.notify_failed >= 1
    assert attempts(db_dsn, key) == [(1, "failed", 500, True)]
    audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)  # not due yet: no attempt
    assert len(attempts(db_dsn, key)) == 1 and waits(db_dsn) == [rules.RETRY_BASE_S]
    due_now(db_dsn)
    audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)
    assert attempts(db_dsn, key) == [(1, "failed", 500, True), (2, "failed", 500, True)]
    assert waits(db_dsn) == [rules.RETRY_BASE_S, rules.RETRY_BASE_S * 2]  # the second wait: 2 min
    audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)
    assert len(attempts(db_dsn, key)) == 2
    due_now(db_dsn)
    audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)
    assert attempts(db_dsn, key) == [(1, "failed", 500, True), (2, "failed", 500, True), (3, "ok", 200, False)]
    bodies = receiver.about("proposal", PROPOSAL)
    assert len(bodies) == 3 and bodies[0] == bodies[2]  # the same notification each time
    assert q(db_dsn, "SELECT status, attempts FROM notify_deliveries") == [("ok", 3)]
    due_now(db_dsn)
    audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)
    assert len(receiver.about("proposal", PROPOSAL)) == 3  # delivered: never again


def test_a_receiver_down_for_good_is_retried_with_backoff_then_given_up(db_dsn):
    cfg = NotifyConfig(webhooks=(f"http://127.0.0.1:{free_port()}/hook?token=SECRET",))
    block(db_dsn)
    result = audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)  # a failure is recorded, not raised
    assert result.notify_failed >= 1 and result.notify_problem is None
    with connect(db_dsn, autocommit=True) as conn:
        for _ in range(2, rules.MAX_ATTEMPTS + 2):
            due_now(db_dsn)
            notifier.deliver_due(conn, cfg)
    rows = attempts(db_dsn, f"proposal:{PROPOSAL}")
    assert [r[0] for r in rows] == list(range(1, rules.MAX_ATTEMPTS + 1))
    assert {r[1] for r in rows} == {"failed"} and rows[-1][3] is False  # no retry after the last
    assert waits(db_dsn) == [min(3600, 60 * 2**i) for i in range(rules.MAX_ATTEMPTS - 1)]
    delivery = q(db_dsn, "SELECT status, last_error FROM notify_deliveries")[0]
    assert delivery[0] == "failed" and "refused" in delivery[1].lower() and "SECRET" not in delivery[1]


def test_mail_arrives_with_the_right_subject_and_recipients(db_dsn, smtp_server):
    url, box = smtp_server
    cfg = NotifyConfig(smtp=url, to=("oncall@example.com", "lead@example.com"), sender="fsar@example.com")
    notifier.preflight(cfg)  # answers
    block(db_dsn)
    result = audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)
    assert result.notify_problem is None and result.notify_failed == 0, result
    mails = [message_from_bytes(e.content, policy=policy.default) for e in box.envelopes]
    ours = [m for m in mails if PROPOSAL in m["Subject"]]
    assert len(ours) == 1, [m["Subject"] for m in mails]
    mail = ours[0]
    assert mail["Subject"].startswith("[FSAR FIRING] FSAR proposal fsar_notify_1 blocks execution of implement_idea")
    assert mail["To"] == "oncall@example.com, lead@example.com" and mail["From"] == "fsar@example.com"
    envelope = next(e for e in box.envelopes if PROPOSAL.encode() in e.content)
    assert envelope.rcpt_tos == ["oncall@example.com", "lead@example.com"]
    assert "alertname = FsarBlockingProposal" in mail.get_content()
    assert box.logins[-1] == (b"u", b"SECRET")
    channel = q(db_dsn, "SELECT channel FROM notify_deliveries")[0][0]
    assert channel.startswith("smtp smtp://***@127.0.0.1:") and "SECRET" not in channel


def test_without_notify_the_pass_claims_nothing(db_dsn):
    block(db_dsn)
    result = audit_pass.scheduled_check(db_dsn, read_only=False)
    assert result.notify_events == 0 and q(db_dsn, "SELECT count(*) FROM notify_states") == [(0,)]


def test_rollback_readiness_lost_and_regained(rollout_db, receiver):
    cfg = NotifyConfig(webhooks=(receiver.url,))

    def told() -> list[tuple[str, str]]:
        return [
            (b["status"], b["alerts"][0]["annotations"]["description"])
            for b in receiver.bodies
            if b["alerts"][0]["labels"]["alertname"] == "FsarRollbackNotReady"
        ]

    def artifact(value) -> None:
        x(rollout_db, "ALTER TABLE rollout_revisions DISABLE TRIGGER rollout_revisions_append_only")
        x(rollout_db, "UPDATE rollout_revisions SET artifact = %s WHERE revision = 1", (Jsonb(value),))
        x(rollout_db, "ALTER TABLE rollout_revisions ENABLE TRIGGER rollout_revisions_append_only")

    audit_pass.scheduled_check(rollout_db, read_only=False, notify=cfg)
    assert told() == []  # ready, and never said otherwise: nothing to tell
    original = q(rollout_db, "SELECT artifact FROM rollout_revisions WHERE revision = 1")[0][0]
    artifact({**original, "temperature": 0.9})
    audit_pass.scheduled_check(rollout_db, read_only=False, notify=cfg)
    audit_pass.scheduled_check(rollout_db, read_only=False, notify=cfg)
    assert [s for s, _ in told()] == ["firing"] and "does not match its sha256" in told()[0][1], told()
    artifact(original)
    audit_pass.scheduled_check(rollout_db, read_only=False, notify=cfg)
    assert [s for s, _ in told()] == ["firing", "resolved"], told()


def test_the_functions_are_the_shipped_ones_and_an_operator_may_run_only_them(db_dsn, login):
    from fsar_tui.db import notifications, notify_functions, privileges

    with connect(db_dsn, autocommit=True) as conn:
        assert privileges.shipped_function_problems(conn, notify_functions.FUNCTIONS) == []
    block(db_dsn)
    operator = login("fsar_operator")
    cfg = NotifyConfig(webhooks=(f"http://127.0.0.1:{free_port()}/hook",))
    result = audit_pass.scheduled_check(operator, read_only=False, notify=cfg)  # the pass as the panel's role
    assert result.notify_problem is None and result.notify_events >= 1 and result.notify_failed >= 1
    with connect(operator, autocommit=True) as conn:  # no direct write: only through the functions
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("UPDATE notify_deliveries SET status = 'ok'")
    viewer = login("fsar_viewer")
    with connect(viewer, autocommit=True) as conn:
        assert len(notifications.failed_deliveries_sync(conn)) == 1  # a viewer reads them (alerts list, screen 4)
        with pytest.raises(Exception, match="permission denied"):
            notifications.take(conn, ["webhook:0123456789abcdef"])
