"""Notifications, the pure part (domain/notify.py) and `[notify]` in config.toml: the
diff of states, the Alertmanager payload, the mail, the backoff, masking. No services."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.config import load_settings
from fsar_tui.domain import notify as n
from fsar_tui.domain.notify_config import NotifyConfig, NotifyConfigError, mask_notify_url, parse_notify
from fsar_tui.errors import UsageError

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def alertmanager_problems(payload: dict) -> list[str]:
    """What makes `payload` no Alertmanager webhook body (version 4): required keys, types,
    status values, label names, times. [] when it is one."""
    problems = []
    want = {
        "version": str,
        "groupKey": str,
        "truncatedAlerts": int,
        "status": str,
        "receiver": str,
        "groupLabels": dict,
        "commonLabels": dict,
        "commonAnnotations": dict,
        "externalURL": str,
        "alerts": list,
    }
    for key, kind in want.items():
        if not isinstance(payload.get(key), kind):
            problems.append(f"{key}: expected {kind.__name__}, got {payload.get(key)!r}")
    if problems:
        return problems
    if payload["version"] != "4":
        problems.append("version must be '4'")
    if payload["status"] not in ("firing", "resolved"):
        problems.append(f"status {payload['status']!r}")
    for name in ("groupLabels", "commonLabels", "commonAnnotations"):
        for k, v in payload[name].items():
            if not isinstance(k, str) or not isinstance(v, str):
                problems.append(f"{name}: {k!r}: {v!r} is not str: str")
    if not payload["alerts"]:
        problems.append("no alerts")
    for alert in payload["alerts"]:
        for key, kind in {
            "status": str,
            "labels": dict,
            "annotations": dict,
            "startsAt": str,
            "endsAt": str,
            "generatorURL": str,
            "fingerprint": str,
        }.items():
            if not isinstance(alert.get(key), kind):
                problems.append(f"alert {key}: expected {kind.__name__}")
        if problems:
            return problems
        if alert["status"] not in ("firing", "resolved"):
            problems.append(f"alert status {alert['status']!r}")
        if "alertname" not in alert["labels"]:
            problems.append("alert without alertname")
        for k, v in {**alert["labels"], **alert["annotations"]}.items():
            if not LABEL_NAME.match(k) or not isinstance(v, str):
                problems.append(f"label {k!r}={v!r}")
        for key in ("startsAt", "endsAt"):
            if not RFC3339.match(alert[key]):
                problems.append(f"{key} {alert[key]!r} is not RFC 3339")
        if alert["status"] == "resolved" and alert["endsAt"] == n.ZERO_TIME:
            problems.append("a resolved alert needs its end")
        if not re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"]):
            problems.append("fingerprint")
    return problems


def obs(key: str, state: str, **kw) -> n.Observation:
    return n.Observation(key, key.split(":")[0], state, {"gate": key}, f"summary of {key}", "why", T0)


# -- changes ---------------------------------------------------------------------------------


def test_a_change_is_an_event_and_the_same_state_again_is_none():
    first = n.changes({}, [obs("gate:g", n.FIRING)], {n.GATE}, T0)
    assert [(e.key, e.state, e.alertname) for e in first] == [("gate:g", "firing", "FsarHardGateFailed")]
    still = n.changes({"gate:g": n.Notified(n.FIRING)}, [obs("gate:g", n.FIRING)], {n.GATE}, T0)
    assert still == []
    resolved = n.changes({"gate:g": n.Notified(n.FIRING)}, [obs("gate:g", n.RESOLVED)], {n.GATE}, T0)
    assert [(e.state, e.ends_at is not None) for e in resolved] == [("resolved", True)]
    # Resolved but never notified firing: nothing to say. Unknown (not measured): nothing either.
    assert n.changes({}, [obs("gate:g", n.RESOLVED)], {n.GATE}, T0) == []
    assert n.changes({"gate:g": n.Notified(n.FIRING)}, [obs("gate:g", n.UNKNOWN)], {n.GATE}, T0) == []


def test_a_firing_key_that_vanished_resolves_only_when_its_source_was_observed():
    before = {
        "proposal:p1": n.Notified(n.FIRING, {"proposal": "p1"}, "FSAR proposal p1 blocks", T0),
        "rollback:t": n.Notified(n.FIRING, {"target": "t"}, "rollback of t is not ready", T0),
        "canary:4": n.Notified(n.FIRING, {}, "canary aborted", T0),
    }
    events = n.changes(before, [], {n.PROPOSAL, n.CANARY}, T0 + timedelta(minutes=5))
    # The proposal's block was lifted; readiness was not rehearsed (audit run); an abort never resolves.
    assert [(e.key, e.state) for e in events] == [("proposal:p1", "resolved")]
    assert events[0].labels["proposal"] == "p1" and events[0].starts_at == T0
    assert "no longer" in events[0].summary


def test_observations_of_each_source():
    drift = n.observe_drift(
        [n.DriftRow(7, "failure_rate", {"task_type": "t", "ai_model": "m"}, "acked", 0.1, 0.5, T0, None)]
    )
    assert drift[0].state == n.FIRING and drift[0].labels["task_type"] == "t" and drift[0].key == "drift:7"
    gates = n.observe_gates(
        [
            n.GateRow("a", {}, "<=", 0.2, "fail", 0.5, T0),
            n.GateRow("b", {"rollout": "x"}, "<=", 0.2, "pass", 0.1, T0),
            n.GateRow("c", {}, "<=", 0.2, "inconclusive", None, T0),
        ]
    )
    assert [g.state for g in gates] == [n.FIRING, n.RESOLVED, n.UNKNOWN]
    assert gates[1].labels["target"] == "x"
    canary = n.observe_canaries([n.CanaryRow(3, "prompt/x", 4, 10, T0, "judge", "failure rate up")])
    assert canary[0].key == "canary:3" and "aborted at 10 %" in canary[0].summary
    proposal = n.observe_proposals([n.ProposalRow("fsar_1", 8, None, "\n\nTitle line\nmore", T0)])
    assert proposal[0].description == "Title line" and "every task type" in proposal[0].summary
    rollback = n.observe_rollbacks({"a": "artifact changed", "b": None}, T0)
    assert [(o.key, o.state) for o in rollback] == [("rollback:a", n.FIRING), ("rollback:b", n.RESOLVED)]


def test_texts_that_leave_the_system_are_redacted_and_on_one_line():
    body = "Leak: mail alice@example.com\x1b]52;c;x\x07 now\nsecond"
    (o,) = n.observe_proposals([n.ProposalRow("p", 9, "t", body, T0)])
    (e,) = n.changes({}, [o], {n.PROPOSAL}, T0)
    assert "alice@example.com" not in e.description and "\x1b" not in e.description and "\n" not in e.description


states = st.sampled_from([n.FIRING, n.RESOLVED, n.UNKNOWN, None])  # None: not observed (vanished)


@given(st.dictionaries(st.sampled_from(["gate:a", "gate:b", "proposal:p", "canary:1"]), st.lists(states, max_size=8)))
def test_one_event_per_state_change_whatever_the_sequence(histories):
    """Replaying passes: each event is a change of the notified state, and a second look at
    the same observations (another panel, the same minute) finds nothing to send."""
    notified: dict[str, n.Notified] = {}
    passes = max((len(h) for h in histories.values()), default=0)
    for i in range(passes):
        seen = [obs(k, h[i]) for k, h in histories.items() if i < len(h) and h[i] is not None]
        if any(o.kind == n.CANARY and o.state != n.FIRING for o in seen):
            seen = [o for o in seen if o.kind != n.CANARY]  # a canary is only ever observed aborted
        events = n.changes(notified, seen, set(n.KINDS), T0)
        assert len({e.key for e in events}) == len(events)
        for e in events:
            before = notified.get(e.key)
            assert (before.state if before else None) != e.state
            assert e.state == n.FIRING or (before is not None and before.state == n.FIRING)
            notified[e.key] = n.Notified(e.state, e.labels, e.summary, e.starts_at)
        assert n.changes(notified, seen, set(n.KINDS), T0) == []


# -- what is sent ----------------------------------------------------------------------------


texts = st.text(min_size=0, max_size=60)


@given(
    state=st.sampled_from([n.FIRING, n.RESOLVED]),
    kind=st.sampled_from(n.KINDS),
    labels=st.dictionaries(st.from_regex(LABEL_NAME, fullmatch=True), texts, max_size=5),
    summary=texts,
    description=texts,
)
def test_the_payload_is_alertmanagers_webhook_format(state, kind, labels, summary, description):
    o = n.Observation(f"{kind}:x", kind, state, {**labels, "alertname": n.ALERTNAMES[kind]}, summary, description, T0)
    event = n._event(o, state, T0, T0 + timedelta(minutes=3) if state == n.RESOLVED else None)
    payload = json.loads(json.dumps(n.alertmanager_payload(event)))
    assert alertmanager_problems(payload) == []
    assert payload["status"] == state and payload["alerts"][0]["labels"]["alertname"] == n.ALERTNAMES[kind]
    # The same event gives the same fingerprint and group key (a retry is the same alert).
    again = n.alertmanager_payload(event)
    assert (
        again["groupKey"] == payload["groupKey"]
        and again["alerts"][0]["fingerprint"] == payload["alerts"][0]["fingerprint"]
    )


def test_the_checker_refuses_what_alertmanager_would_not_send():
    (e,) = n.changes({}, [obs("gate:g", n.FIRING)], {n.GATE}, T0)
    good = n.alertmanager_payload(e)
    assert alertmanager_problems(good) == []
    assert alertmanager_problems({**good, "version": 4})
    assert alertmanager_problems({**good, "status": "ok"})
    assert alertmanager_problems({**good, "alerts": [{**good["alerts"][0], "startsAt": "yesterday"}]})


def test_the_mail():
    (e,) = n.changes({}, [obs("gate:g", n.FIRING)], {n.GATE}, T0)
    assert n.mail_subject(e) == "[FSAR FIRING] summary of gate:g"
    body = n.mail_body(e)
    assert "state:   firing" in body and "alertname = FsarHardGateFailed" in body and "event:   gate:g" in body


# -- retries ---------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=n.MAX_ATTEMPTS + 5))
def test_backoff_doubles_up_to_the_cap_then_gives_up(attempt):
    at = n.retry_at(attempt, T0)
    if attempt >= n.MAX_ATTEMPTS:
        assert at is None
        return
    assert at is not None
    wait = (at - T0).total_seconds()
    assert wait == min(n.RETRY_CAP_S, n.RETRY_BASE_S * 2 ** (attempt - 1))
    if attempt > 1:
        previous = n.retry_at(attempt - 1, T0)
        assert previous is not None and previous <= at


# -- secrets and [notify] --------------------------------------------------------------------

# "Q7" first: a secret that is also a word of the URL around it ("hooks.") would be masked there too.
secret = st.text(
    alphabet="abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.~%!$", min_size=4, max_size=30
).map(lambda s: "Q7" + s)


@given(token=secret, password=secret)
def test_masking_never_shows_a_token_or_password(token, password):
    for url in (
        f"https://hooks.example.com/services/x?token={token}&channel=ops",
        f"https://user:{password}@hooks.example.com/x?sig={token}",
        f"smtps://mailer:{password}@mail.example.com:465",
    ):
        masked = mask_notify_url(url)
        assert token not in masked and password not in masked, masked
        assert n.scrub(f"POST to {url} failed", n.secret_values(url)).count(token) == 0


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_notify_section(tmp_path):
    path = write(
        tmp_path,
        '[notify]\nwebhooks = ["https://h.example/a?token=SECRET", "http://127.0.0.1:9/b"]\n'
        'smtp = "smtp://u:SECRET@mail.example:587?starttls=1"\nto = ["a@example.com", "b@example.com"]\n'
        'from = "fsar@example.com"\n',
    )
    settings = load_settings(config_path=path, env={})
    cfg = settings.notify
    assert cfg == NotifyConfig(
        ("https://h.example/a?token=SECRET", "http://127.0.0.1:9/b"),
        "smtp://u:SECRET@mail.example:587?starttls=1",
        ("a@example.com", "b@example.com"),
        "fsar@example.com",
    )
    assert "SECRET" not in repr(settings) and "SECRET" not in repr(cfg) and "SECRET" not in str(settings.masked())
    assert settings.masked()["notify"]["webhooks"][0].startswith("https://h.example/*** (#")
    assert load_settings(config_path=write(tmp_path, "dsn = 'x'\n"), env={}).notify is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('webhooks = ["ftp://h.example/x?token=SECRET"]', "the scheme must be http:// or https://"),
        ('webhooks = ["https://:80/x?token=SECRET"]', "no host"),
        ('webhooks = ["https://h.example:99999/x?token=SECRET"]', "malformed host or port"),
        ('webhooks = "https://h.example"', "expected a list"),
        ('smtp = "smtp://u:SECRET@mail.example:25/path"\nto = ["a@b.c"]', "unexpected path"),
        ('smtp = "imap://u:SECRET@mail.example"\nto = ["a@b.c"]', "smtp:// or smtps://"),
        ('smtp = "smtps://u:SECRET@mail.example?starttls=1"\nto = ["a@b.c"]', "already TLS"),
        ('smtp = "smtp://u:SECRET@mail.example"', "names no recipient"),
        ('to = ["a@b.c"]', "no smtp URL"),
        ('smtp = "smtp://mail.example"\nto = ["not an address"]', "not a mail address"),
        ('webhook = ["https://h.example"]', "unknown key(s): webhook"),
        ("", "set webhooks or smtp"),
    ],
)
def test_a_bad_notify_section_is_one_usage_error_without_the_secret(tmp_path, text, words):
    with pytest.raises(UsageError) as caught:
        load_settings(config_path=write(tmp_path, f"[notify]\n{text}\n"), env={})
    message = caught.value.message
    assert words in message and "SECRET" not in message and "\n" not in message, message


def test_parse_notify_is_the_config_files_rule():
    assert parse_notify({"webhooks": ["https://h.example"]}, "x").webhooks == ("https://h.example",)
    with pytest.raises(NotifyConfigError):
        parse_notify("nope", "x")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T000/B000/SECRETPATHTOKEN",
        "https://SECRETUSERTOKEN@h.example/am",
        "https://h.example/am?private_token=SECRET&X-Auth-Token=SECRET",
        "https://h.example/am#token=SECRET",
        "https://h.example/am;token=SECRET",
    ],
)
def test_webhook_secrets_anywhere_in_the_url_are_masked(url):
    masked = mask_notify_url(url)
    assert "SECRET" not in masked and masked.startswith("https://") and " (#" in masked, masked
    assert mask_notify_url(url) != mask_notify_url(url + "x")  # two channels of one host told apart
