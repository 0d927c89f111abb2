"""Revision 0038: what an operator role can no longer do to notifications in plain SQL
(db/notify_functions.py) — claim a state its source does not hold, pick the clock,
record an attempt it did not lease, plan its own retries, act off the operator log — and
that a stored event is read back as untrusted (domain/notify.event_from_record)."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui import clock
from fsar_tui.db import notifications, notify_functions
from fsar_tui.db.connect import connect
from fsar_tui.domain import notify as rules
from fsar_tui.domain.notify_config import NotifyConfig
from fsar_tui.domain.notify_failure import notify_failure_line
from fsar_tui.services import audit_pass
from support.sql import q, x
from test_notify import PROPOSAL, block, free_port, lift, receiver  # noqa: F401 - receiver: a fixture

CHANNEL = [("webhook:0123456789abcdef", "webhook http://h/x")]


def claim(dsn: str, key: str, state: str, *, channels=CHANNEL, labels=None, annotations=None) -> int | None:
    kind = key.split(":", 1)[0]
    with connect(dsn, autocommit=True) as conn:
        return notifications.claim(
            conn,
            key=key,
            kind=kind,
            state=state,
            labels=labels or {"alertname": rules.ALERTNAMES[kind], "severity": rules.SEVERITY[kind]},
            annotations=annotations or {"summary": "forged"},
            channels=channels,
        )


def test_a_claim_must_be_the_state_its_source_holds(db_dsn, login):
    operator = login("fsar_operator")
    block(db_dsn)
    refused = [
        (f"proposal:{PROPOSAL}", "resolved"),  # its block is in force: suppressing the page
        ("proposal:no-such-proposal", "firing"),  # a page about nothing
        ("drift:12345", "firing"),
        ("canary:1", "firing"),
        ("gate:builtin:rollback-artifacts", "firing"),  # never failed here
    ]
    for key, state in refused:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="in the database|does not resolve"):
            claim(operator, key, state)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="does not resolve"):
        claim(operator, "canary:1", "resolved")
    assert q(db_dsn, "SELECT count(*) FROM notify_events") == [(0,)]
    assert claim(operator, f"proposal:{PROPOSAL}", "firing") is not None  # the truth is claimable
    lift(db_dsn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not firing in the database, not firing"):
        claim(operator, f"proposal:{PROPOSAL}", "firing")


@pytest.mark.parametrize(
    "channels",
    [
        [],  # told nobody
        [("webhook:1", "webhook http://h/x")],  # not a client's hash
        [("mqtt:0123456789abcdef", "x")],
        CHANNEL * 2,
        [("webhook:0123456789abcdef", "webhook \x1b]52;c;eA==\x07")],
    ],
)
def test_bad_channels_are_refused(db_dsn, login, channels):
    operator = login("fsar_operator")
    block(db_dsn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="bad channels"):
        claim(operator, f"proposal:{PROPOSAL}", "firing", channels=channels)


ALERT = {"alertname": "FsarBlockingProposal", "severity": "critical"}


@pytest.mark.parametrize(
    ("labels", "annotations"),
    [
        ({"alertname": "FsarAllClear", "severity": "critical"}, None),  # another alert's name
        ({**ALERT, "severity": "info"}, None),
        ({**ALERT, "runbook_url": "http://evil.example/login"}, None),  # a label the kind never carries
        ({**ALERT, "task_type": {"nested": [1]}}, None),
        ({**ALERT, "task_type": "x" * 201}, None),
        ({**ALERT, "task_type": "a\nb"}, None),
        (None, {"summary": "s", "runbook": "http://evil.example"}),
        (None, {"summary": "\x1b[2J all clear"}),
        (None, {"summary": "s" * 1001}),
    ],
)
def test_a_page_carries_only_what_its_kind_does(db_dsn, login, labels, annotations):
    operator = login("fsar_operator")
    block(db_dsn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not what a proposal event carries"):
        claim(operator, f"proposal:{PROPOSAL}", "firing", labels=labels, annotations=annotations)
    assert q(db_dsn, "SELECT count(*) FROM notify_events") == [(0,)]


def test_the_times_are_the_sources(db_dsn, login):
    """The page starts when the proposal was ingested, whatever the caller believes; its
    resolution keeps that start and ends now; a key that never fired does not resolve."""
    operator = login("fsar_operator")
    block(db_dsn)
    x(db_dsn, "UPDATE fsar_proposals SET ingested_at = now() - interval '3 hours'")
    claim(operator, f"proposal:{PROPOSAL}", "firing")
    lift(db_dsn)
    claim(operator, f"proposal:{PROPOSAL}", "resolved")
    rows = q(
        db_dsn,
        "SELECT e.state, e.starts_at = p.ingested_at, e.ends_at IS NULL, e.ends_at > now() - interval '1 minute' "
        "FROM notify_events e, fsar_proposals p ORDER BY e.id",
    )
    assert rows == [("firing", True, True, None), ("resolved", True, False, True)]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="never fired"):
        claim(operator, "gate:no-such-gate", "resolved")  # log spam about nothing


def test_every_claim_is_on_the_operator_log_with_its_channels(db_dsn, login):
    operator = login("fsar_operator")
    block(db_dsn)
    event = claim(operator, f"proposal:{PROPOSAL}", "firing")
    rows = q(
        db_dsn,
        "SELECT action, target, db_role, reason, after ->> 'channel_count', (after ->> 'event')::bigint "
        "FROM operator_actions WHERE action LIKE 'notify.%%'",
    )
    assert rows == [
        (
            "notify.firing",
            f"notify:proposal:{PROPOSAL}",
            operator_role(operator),
            "forged (to 1 channel(s))",
            "1",
            event,
        )
    ]


def operator_role(dsn: str) -> str:
    with connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT session_user").fetchone()[0]


def test_an_attempt_needs_the_lease_of_its_take_and_names_its_recorder(db_dsn, login):
    operator = login("fsar_operator")
    block(db_dsn)
    claim(operator, f"proposal:{PROPOSAL}", "firing")
    delivery = q(db_dsn, "SELECT id FROM notify_deliveries")[0][0]
    with connect(operator, autocommit=True) as conn:
        for lease in (None, uuid.uuid4()):  # never taken: a fake "ok" is refused
            with pytest.raises(psycopg.errors.InvalidParameterValue):
                conn.execute("SELECT fsar_notify_record(%s, %s, true, 200, NULL)", (delivery, lease))
        assert notifications.take(conn, ["smtp:0123456789abcdef"]) == []  # not its channel
        (due,) = notifications.take(conn, [CHANNEL[0][0]])
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not leased"):
            conn.execute("SELECT fsar_notify_record(%s, %s, true, 200, NULL)", (delivery, uuid.uuid4()))
        assert notifications.record(conn, due, ok=False, http_status=500, error="boom") == 1
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not leased"):  # a lease records once
            notifications.record(conn, due, ok=True, http_status=200, error=None)
    rows = q(db_dsn, "SELECT outcome, recorded_by, extract(epoch FROM next_retry_at - at)::int FROM notify_attempts")
    assert rows == [("failed", operator_role(operator), rules.RETRY_BASE_S)]
    assert q(db_dsn, "SELECT status, lease IS NULL, taken_by FROM notify_deliveries") == [
        ("pending", True, operator_role(operator))
    ]


def test_no_hoarding_and_no_fake_failures(db_dsn, login):
    operator = login("fsar_operator")
    block(db_dsn)
    claim(operator, f"proposal:{PROPOSAL}", "firing", channels=[("smtp:0123456789abcdef", "smtp smtp://h")])
    with connect(operator, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="bad lease"):
            notifications.take(conn, ["smtp:0123456789abcdef"], lease_s=3600)  # an hour's hold on a page
        (due,) = notifications.take(conn, ["smtp:0123456789abcdef"])
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="HTTP status for a mail"):
            notifications.record(conn, due, ok=False, http_status=599, error="x")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="bad attempt"):
            notifications.record(conn, due, ok=False, http_status=None, error="[red]x\x1b]8;;http://e\x07")


def test_the_clock_and_the_retry_plan_are_the_servers(db_dsn, login):
    """0037 took p_now / p_at / p_next_at from the caller; those signatures are gone."""
    operator = login("fsar_operator")
    with connect(operator, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            conn.execute("SELECT * FROM fsar_notify_take(now() + interval '1 day', 60, 10)")
        with pytest.raises(psycopg.errors.UndefinedFunction):  # 0038's: the caller dated the event
            conn.execute("SELECT fsar_notify_claim('gate:g', 'gate', 'firing', '{}', '{}', now(), NULL, '{}', '{}')")
        with pytest.raises(psycopg.errors.UndefinedFunction):
            conn.execute("SELECT fsar_notify_record(1, now(), true, 200, NULL, NULL)")
    assert (notify_functions.RETRY_BASE_S, notify_functions.RETRY_CAP_S, notify_functions.MAX_ATTEMPTS) == (
        rules.RETRY_BASE_S,
        rules.RETRY_CAP_S,
        rules.MAX_ATTEMPTS,
    )


def test_a_forged_resolution_of_a_broken_rollback_is_refused(rollout_db, login):
    cfg = NotifyConfig(webhooks=(f"http://127.0.0.1:{free_port()}/hook",))
    x(rollout_db, "ALTER TABLE rollout_revisions DISABLE TRIGGER rollout_revisions_append_only")
    x(rollout_db, "UPDATE rollout_revisions SET artifact = artifact || '{\"temperature\": 0.9}' WHERE revision = 1")
    x(rollout_db, "ALTER TABLE rollout_revisions ENABLE TRIGGER rollout_revisions_append_only")
    audit_pass.scheduled_check(rollout_db, read_only=False, notify=cfg)
    (target,) = q(rollout_db, "SELECT target FROM rollouts")[0]
    assert q(rollout_db, "SELECT state FROM notify_states WHERE event_key = %s", (f"rollback:{target}",)) == [
        ("firing",)
    ]
    operator = login("fsar_operator")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="is firing in the database"):
        claim(operator, f"rollback:{target}", "resolved")


HOSTILE = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@given(
    labels=st.dictionaries(st.text(max_size=30), HOSTILE, max_size=80),
    summary=HOSTILE,
    description=HOSTILE,
)
def test_a_stored_event_is_read_back_through_the_same_policy(labels, summary, description):
    event = rules.event_from_record(
        "gate:g", "gate", "firing", labels, {"summary": summary, "description": description}, clock.now(), None
    )
    assert len(event.labels) <= rules.MAX_LABELS
    for name, value in event.labels.items():
        assert rules.LABEL_NAME.fullmatch(name) and len(value) <= rules.LABEL_MAX
    for text in (*event.labels.values(), event.summary, event.description, rules.mail_body(event)):
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text


def test_a_stored_event_with_a_secret_is_redacted_in_the_mail():
    event = rules.event_from_record(
        "gate:g",
        "gate",
        "firing",
        {"alertname": "FsarHardGateFailed", "bad name": "x", "who": "mail alice@example.com"},
        {"summary": "s\x1b]52;c;eA==\x07", "description": "key AKIAIOSFODNN7EXAMPLE leaked"},
        clock.now(),
        None,
    )
    body = rules.mail_body(event)
    assert "alice@example.com" not in body and "AKIAIOSFODNN7EXAMPLE" not in body and "\x1b" not in body
    assert "bad name" not in event.labels and event.labels["alertname"] == "FsarHardGateFailed"
    assert rules.alertmanager_payload(event)["alerts"][0]["labels"] == event.labels


class Echo(BaseHTTPRequestHandler):
    """Answers 500 with the request line and the Authorization header in its body, and an
    escape sequence: a receiver quoting back what it was sent."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = f"bad request {self.path} auth={self.headers.get('Authorization')} \x1b]52;c;eA==\x07".encode()
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


SECRETS = ("SECRETPATHPART", "SECRETUSERNAME", "SECRETFRAG", "SECRETQUERYVAL", "SECRET2", "U0VDUkVUVVNFUk5BTUU6")


def test_a_failed_delivery_never_shows_any_part_of_the_url_but_its_host(db_dsn, run_cli, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"127.0.0.1:{server.server_address[1]}"
    hooks = [
        f"http://{base}/services/T0001/B0002/SECRETPATHPART",
        f"http://SECRETUSERNAME@{base}/fail500#SECRETFRAG",
        f"http://{base}/fail500?auth=SECRETQUERYVAL&x_api_token=SECRET2",
    ]
    config = tmp_path / "config.toml"
    config.write_text("[notify]\nwebhooks = [" + ", ".join(f'"{h}"' for h in hooks) + "]\n", encoding="utf-8")
    block(db_dsn)
    try:
        ran = run_cli("audit", "run", "--config", str(config), "--dsn", db_dsn)
        listed = run_cli("alerts", "list", "--config", str(config), "--dsn", db_dsn)
    finally:
        server.shutdown()
    stored = q(db_dsn, "SELECT string_agg(coalesce(error, ''), ' ') FROM notify_attempts")[0][0]
    stored += q(db_dsn, "SELECT string_agg(last_error || channel, ' ') FROM notify_deliveries")[0][0]
    assert stored.count("HTTP 500") >= 3 and "bad request" not in stored  # the status, not the receiver's words
    for text in (ran.stdout, ran.stderr, listed.stdout, stored):
        assert not [s for s in SECRETS if s in text], text
        assert "\x1b" not in text and "\x07" not in text
    assert listed.stdout.count("attempt 1 failed") == 3


def test_a_pass_takes_only_its_own_channels_deliveries(db_dsn, login):
    """Two configurations on one database: a pass without a channel never spends its
    attempts; a delivery nobody can send shows as not sent after 15 minutes."""
    operator = login("fsar_operator")
    block(db_dsn)
    claim(operator, f"proposal:{PROPOSAL}", "firing")  # to CHANNEL, which the pass below lacks
    other = NotifyConfig(webhooks=(f"http://127.0.0.1:{free_port()}/other",))
    audit_pass.scheduled_check(db_dsn, read_only=False, notify=other)
    assert q(db_dsn, "SELECT attempts FROM notify_deliveries") == [(0,)]
    with connect(db_dsn, autocommit=True) as conn:
        assert notifications.failed_deliveries_sync(conn) == []
    x(db_dsn, "UPDATE notify_deliveries SET due_since = now() - interval '20 minutes'")
    with connect(db_dsn, autocommit=True) as conn:
        (never,) = notifications.failed_deliveries_sync(conn)
    line = notify_failure_line(never)
    assert "not sent: due since" in line and "no pass with this channel in its [notify] has run" in line


def test_the_labels_are_the_sources_not_the_callers(db_dsn, login):
    """A page for one proposal labelled as another (receivers pair firing and resolved by
    labels), its severity lowered, a URL in task_type: the database stores the source's."""
    operator = login("fsar_operator")
    block(db_dsn)
    block(db_dsn, "P-other")
    forged = {
        **ALERT,
        "proposal": "P-other",
        "task_type": "payments runbook https://evil.example",
        "proposal_severity": "1",
    }
    claim(operator, f"proposal:{PROPOSAL}", "firing", labels=forged)
    (labels,) = q(db_dsn, "SELECT labels FROM notify_events")[0]
    assert labels == {**ALERT, "proposal": PROPOSAL, "task_type": "implement_idea", "proposal_severity": "9"}
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not what a proposal event carries"):
        claim(operator, "proposal:P-other", "firing", annotations={"description": "no summary"})


def test_a_key_held_by_another_session_costs_that_key_only(db_dsn, receiver):  # noqa: F811 - the fixture
    """An operator's open transaction holding a key's row: the pass claims the other
    changes and sends them; the held one is one line, left for the next pass."""
    from fsar_tui.db.connect import connect as plain

    block(db_dsn)
    cfg = NotifyConfig(webhooks=(receiver.url,))
    audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)  # proposal firing: notified
    lift(db_dsn)
    block(db_dsn, "P-second")
    with plain(db_dsn) as holder:  # holds proposal's row, uncommitted
        holder.execute("SELECT 1 FROM notify_states WHERE event_key = %s FOR UPDATE", (f"proposal:{PROPOSAL}",))
        result = audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)
        holder.rollback()
    assert result.notify_problem and "another session holds it" in result.notify_problem, result.notify_problem
    assert len(receiver.about("proposal", "P-second")) == 1  # the other change went out
    after = audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg)
    assert (
        after.notify_problem is None and [b["status"] for b in receiver.about("proposal", PROPOSAL)][-1] == "resolved"
    )


def test_a_delivery_taken_again_and_again_still_shows_as_not_sent(db_dsn, login):
    operator = login("fsar_operator")
    block(db_dsn)
    claim(operator, f"proposal:{PROPOSAL}", "firing")
    x(db_dsn, "UPDATE notify_deliveries SET due_since = now() - interval '20 minutes'")
    with connect(operator, autocommit=True) as conn:
        for _ in range(3):  # a hoarder re-taking it each time its lease ends
            assert len(notifications.take(conn, [CHANNEL[0][0]], lease_s=600)) == 1
            x(db_dsn, "UPDATE notify_deliveries SET next_attempt_at = now()")
    with connect(db_dsn, autocommit=True) as conn:
        (held,) = notifications.failed_deliveries_sync(conn)
    line = notify_failure_line(held)
    assert "not sent" in line and f"last taken by {operator_role(operator)}, never recorded" in line
