"""Revision 0038: what an operator role can no longer do to notifications in plain SQL
(db/notify_functions.py) — claim a state its source does not hold, pick the clock,
record an attempt it did not lease, plan its own retries, act off the operator log — and
that a stored event is read back as untrusted (domain/notify.event_from_record)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui import clock
from fsar_tui.db import notifications, notify_functions
from fsar_tui.db.connect import connect
from fsar_tui.domain import notify as rules
from fsar_tui.domain.notify_config import NotifyConfig
from fsar_tui.services import audit_pass
from support.sql import q, x
from test_notify import PROPOSAL, block, free_port, lift

CHANNEL = [("webhook:0123456789abcdef", "webhook http://h/x")]


def claim(dsn: str, key: str, state: str, *, channels=CHANNEL, starts_at=None) -> int | None:
    kind = key.split(":", 1)[0]
    with connect(dsn, autocommit=True) as conn:
        return notifications.claim(
            conn,
            key=key,
            kind=kind,
            state=state,
            labels={"alertname": rules.ALERTNAMES[kind]},
            annotations={"summary": "forged"},
            starts_at=starts_at or clock.now(),
            ends_at=None,
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
    ("channels", "starts"),
    [
        ([("webhook:1", "webhook http://h/x")], None),  # not a client's hash
        ([("mqtt:0123456789abcdef", "x")], None),
        (CHANNEL * 2, None),
        (CHANNEL, timedelta(hours=1)),  # dated in the future
        (CHANNEL, -timedelta(days=365 * 40)),
    ],
)
def test_bad_channels_and_dates_are_refused(db_dsn, login, channels, starts):
    operator = login("fsar_operator")
    block(db_dsn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="bad channels|future"):
        claim(
            operator,
            f"proposal:{PROPOSAL}",
            "firing",
            channels=channels,
            starts_at=clock.now() + (starts or timedelta()),
        )


def test_every_claim_is_on_the_operator_log_with_its_channels(db_dsn, login):
    operator = login("fsar_operator")
    block(db_dsn)
    event = claim(operator, f"proposal:{PROPOSAL}", "firing", channels=[])  # told nobody: visible as such
    rows = q(
        db_dsn,
        "SELECT action, target, db_role, after ->> 'channel_count', (after ->> 'event')::bigint FROM operator_actions "
        "WHERE action LIKE 'notify.%%'",
    )
    assert rows == [("notify.firing", f"notify:proposal:{PROPOSAL}", operator_role(operator), "0", event)]


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
        (due,) = notifications.take(conn)
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not leased"):
            conn.execute("SELECT fsar_notify_record(%s, %s, true, 200, NULL)", (delivery, uuid.uuid4()))
        assert notifications.record(conn, due, ok=False, http_status=500, error="boom") == 1
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not leased"):  # a lease records once
            notifications.record(conn, due, ok=True, http_status=200, error=None)
    rows = q(db_dsn, "SELECT outcome, recorded_by, extract(epoch FROM next_retry_at - at)::int FROM notify_attempts")
    assert rows == [("failed", operator_role(operator), rules.RETRY_BASE_S)]
    assert q(db_dsn, "SELECT status, lease IS NULL FROM notify_deliveries") == [("pending", True)]


def test_the_clock_and_the_retry_plan_are_the_servers(db_dsn, login):
    """0037 took p_now / p_at / p_next_at from the caller; those signatures are gone."""
    operator = login("fsar_operator")
    with connect(operator, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            conn.execute("SELECT * FROM fsar_notify_take(now() + interval '1 day', 60, 10)")
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
