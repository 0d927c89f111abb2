"""Notifications (issue 20 point 3), the pure part: what changed since the last notified
state, and what is sent for it.

- `observe_*`: the audit pass's view of each event source as Observations, one per event
  key — `drift:<alert id>`, `gate:<name>` (enabled hard gates), `canary:<id>` (aborted
  canaries: one-shot), `proposal:<id>` (FSAR proposals blocking execution now),
  `rollback:<target>` (the pass's rehearsal).
- `changes`: Observations against the last notified state of each key (the database's
  notify_states) → the Events to notify: a key going firing, or a firing key resolving —
  observed resolved, or gone from a source this pass observed (a gate disabled or made
  soft, a proposal's block lifted, a target removed). A source not observed this pass
  (`audit run` rehearses no rollback) resolves nothing.
- `alertmanager_payload`: the Alertmanager webhook body (version "4") for one event, so
  receivers written for Alertmanager take it as they take Alertmanager's own.
- `mail_subject` / `mail_body`: the mail for one event.
- `retry_at`: when a failed delivery is tried again (exponential, capped; None: give up).
- `secret_values` / `scrub`: the secrets of a URL (password, token-like query values) and
  text with them masked — what the recorded error lines and printed lines pass through.

Every text that reaches a notification goes through the redaction policy and one_line:
it leaves the system for mailboxes and chat rooms. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from fsar_tui.domain.backoff import backoff_ceiling
from fsar_tui.domain.redact import redact
from fsar_tui.domain.sanitize import one_line

FIRING, RESOLVED, UNKNOWN = "firing", "resolved", "unknown"  # UNKNOWN: keep the last state
STATES = (FIRING, RESOLVED)
DRIFT, GATE, CANARY, PROPOSAL, ROLLBACK = "drift", "gate", "canary", "proposal", "rollback"
KINDS = (DRIFT, GATE, CANARY, PROPOSAL, ROLLBACK)
ONE_SHOT = frozenset({CANARY})  # an abort happened: it never resolves, and vanishing says nothing
ALERTNAMES = {
    DRIFT: "FsarDriftAlert",
    GATE: "FsarHardGateFailed",
    CANARY: "FsarCanaryAborted",
    PROPOSAL: "FsarBlockingProposal",
    ROLLBACK: "FsarRollbackNotReady",
}
SEVERITY = {DRIFT: "warning", GATE: "critical", CANARY: "warning", PROPOSAL: "critical", ROLLBACK: "critical"}
# The labels each kind's events carry (alertname and severity, then its own): the database
# refuses a claim with any other (db/notify_functions.py builds its check from this).
LABEL_KEYS = {
    DRIFT: ("alertname", "severity", "indicator", "alert_id", "task_type", "ai_model", "target"),
    GATE: ("alertname", "severity", "gate", "task_type", "ai_model", "target"),
    CANARY: ("alertname", "severity", "target", "canary_id", "revision"),
    PROPOSAL: ("alertname", "severity", "proposal", "task_type", "proposal_severity"),
    ROLLBACK: ("alertname", "severity", "target"),
}
RECEIVER = "fsar-tui"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert with no end yet
LABEL_MAX = 200
MAX_LABELS = 40
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,99}")  # Alertmanager's label names (bounded)
TEXT_MAX = 1000

# Retries: 1 min, 2, 4, … capped at 1 h; the 10th failed attempt is the last (~4 h 15 min).
RETRY_BASE_S = 60.0
RETRY_CAP_S = 3600.0
MAX_ATTEMPTS = 10

# Query parameters whose values are credentials (webhook tokens, signatures, keys): the
# rule services/delivery.mask_url applies, here for the config's messages and scrub().
SECRET_QUERY = re.compile(
    r"(?i)([?&](?:password|passwd|pass|pwd|secret|token|access_token|api_key|apikey|key|sig|signature)=)[^&#]*"
)


@dataclass(frozen=True)
class Observation:
    """One event key as this pass sees it."""

    key: str  # "<kind>:<id>"
    kind: str
    state: str  # FIRING | RESOLVED | UNKNOWN (not measured: the last notified state stands)
    labels: dict[str, str] = field(default_factory=dict)  # besides alertname and severity
    summary: str = ""
    description: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class Notified:
    """A key's last notified state (notify_states), with what was said then: a key that
    vanishes is resolved in the words it fired with."""

    state: str
    labels: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    starts_at: datetime | None = None


@dataclass(frozen=True)
class Event:
    """A state change to notify."""

    key: str
    kind: str
    state: str  # FIRING | RESOLVED
    labels: dict[str, str]  # alertname and severity included
    summary: str
    description: str
    starts_at: datetime
    ends_at: datetime | None  # None while firing

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]


def _text(value: object, limit: int = TEXT_MAX) -> str:
    text = one_line(redact(str(value))).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _labels(kind: str, extra: Mapping[str, object]) -> dict[str, str]:
    out = {"alertname": ALERTNAMES[kind], "severity": SEVERITY[kind]}
    for name, value in extra.items():
        if value is not None and value != "":
            out[name] = _text(value, LABEL_MAX)
    return out


def changes(
    previous: Mapping[str, Notified], current: Iterable[Observation], observed: Collection[str], now: datetime
) -> list[Event]:
    """The events to notify (see the module docstring). `observed`: the kinds this pass
    looked at; a firing key of another kind is left as it is."""
    events: list[Event] = []
    seen: set[str] = set()
    for o in current:
        seen.add(o.key)
        before = previous.get(o.key)
        was = before.state if before else None
        if o.state == FIRING and was != FIRING:
            events.append(_event(o, FIRING, o.starts_at or now, None))
        elif o.state == RESOLVED and was == FIRING:
            starts = (before.starts_at if before else None) or o.starts_at or now
            events.append(_event(o, RESOLVED, starts, o.ends_at or now))
    for key, before in sorted(previous.items()):
        kind = key.split(":", 1)[0]
        if key in seen or before.state != FIRING or kind not in observed or kind in ONE_SHOT or kind not in KINDS:
            continue
        summary = f"{before.summary} — no longer so" if before.summary else f"{key}: no longer firing"
        # The labels last notified are the database's (revision 0040: the source row's
        # values, unsanitised): made inert and bounded again before they are sent back.
        labels = _labels(kind, {k: v for k, v in before.labels.items() if k not in ("alertname", "severity")})
        gone = Observation(key, kind, RESOLVED, labels, summary, _GONE[kind])
        events.append(_event(gone, RESOLVED, before.starts_at or now, now))
    return events


_GONE = {
    DRIFT: "the alert is no longer open",
    GATE: "the gate is no longer an enabled hard gate",
    CANARY: "",
    PROPOSAL: "the proposal no longer blocks execution (block lifted, rejected or implemented)",
    ROLLBACK: "the rollout target is no longer listed",
}


def _event(o: Observation, state: str, starts: datetime, ends: datetime | None) -> Event:
    labels = {**_labels(o.kind, {}), **o.labels}
    return Event(o.key, o.kind, state, labels, _text(o.summary), _text(o.description), starts, ends)


# -- observations of each source -----------------------------------------------------------


@dataclass(frozen=True)
class DriftRow:
    id: int
    indicator: str
    scope: dict[str, Any]
    state: str  # firing | acked | resolved
    baseline: float | None
    current: float | None
    opened_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class GateRow:
    name: str
    scope: dict[str, Any]
    comparator: str
    threshold: float
    verdict: str | None
    value: float | None
    at: datetime | None


@dataclass(frozen=True)
class CanaryRow:
    id: int
    target: str
    canary_revision: int
    weight: int
    ended_at: datetime
    ended_by: str | None
    end_reason: str | None


@dataclass(frozen=True)
class ProposalRow:
    id: str
    severity: int
    task_type: str | None
    body: str
    ingested_at: datetime


def _scope_labels(scope: Mapping[str, Any]) -> dict[str, object]:
    return {"task_type": scope.get("task_type"), "ai_model": scope.get("ai_model"), "target": scope.get("rollout")}


def _scope_words(scope: Mapping[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in sorted(scope.items()) if v is not None]
    return ", ".join(parts) or "every task"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def observe_drift(rows: Iterable[DriftRow]) -> list[Observation]:
    out = []
    for r in rows:
        state = RESOLVED if r.state == "resolved" else FIRING
        summary = f"drift: {r.indicator} moved ({_scope_words(r.scope)})"
        description = f"baseline {_num(r.baseline)}, now {_num(r.current)}; alert {r.id} {r.state}"
        labels = _labels(DRIFT, {"indicator": r.indicator, "alert_id": r.id, **_scope_labels(r.scope)})
        out.append(
            Observation(f"{DRIFT}:{r.id}", DRIFT, state, labels, summary, description, r.opened_at, r.resolved_at)
        )
    return out


def observe_gates(rows: Iterable[GateRow]) -> list[Observation]:
    """Enabled hard gates (the caller's selection): fail → firing, pass → resolved, anything
    else (error, inconclusive, never run) → unknown."""
    out = []
    for r in rows:
        state = {"fail": FIRING, "pass": RESOLVED}.get(r.verdict or "", UNKNOWN)
        condition = f"{r.comparator} {r.threshold:g}"
        if state == RESOLVED:
            summary = f"hard gate {r.name} passes again"
        else:
            summary = f"hard gate {r.name} failed: value {_num(r.value)}, must be {condition}"
        description = f"scope {_scope_words(r.scope)}; verdict {r.verdict or 'none'}" + (
            "; execution in its scope is blocked until it passes or is overridden" if state == FIRING else ""
        )
        labels = _labels(GATE, {"gate": r.name, **_scope_labels(r.scope)})
        out.append(Observation(f"{GATE}:{r.name}", GATE, state, labels, summary, description, r.at, r.at))
    return out


def observe_canaries(rows: Iterable[CanaryRow]) -> list[Observation]:
    out = []
    for r in rows:
        summary = f"canary of {r.target} (revision {r.canary_revision}) aborted at {r.weight} %"
        description = f"aborted by {r.ended_by or 'unknown'}: {r.end_reason or 'no reason given'}"
        labels = _labels(CANARY, {"target": r.target, "canary_id": r.id, "revision": r.canary_revision})
        out.append(Observation(f"{CANARY}:{r.id}", CANARY, FIRING, labels, summary, description, r.ended_at))
    return out


def observe_proposals(rows: Iterable[ProposalRow]) -> list[Observation]:
    out = []
    for r in rows:
        title = next((line for line in r.body.splitlines() if line.strip()), "")
        summary = f"FSAR proposal {r.id} blocks execution of {r.task_type or 'every task type'} (severity {r.severity})"
        labels = _labels(PROPOSAL, {"proposal": r.id, "task_type": r.task_type, "proposal_severity": r.severity})
        out.append(
            Observation(f"{PROPOSAL}:{r.id}", PROPOSAL, FIRING, labels, summary, _text(title, 300), r.ingested_at)
        )
    return out


def observe_rollbacks(problems: Mapping[str, str | None], at: datetime) -> list[Observation]:
    """The pass's rehearsal: target → why a rollback would fail (None: ready)."""
    out = []
    for target, problem in sorted(problems.items()):
        labels = _labels(ROLLBACK, {"target": target})
        if problem:
            summary, description, state = f"rollback of {target} is not ready", problem, FIRING
        else:
            summary, description, state = f"rollback of {target} is ready again", "the rehearsal passed", RESOLVED
        out.append(Observation(f"{ROLLBACK}:{target}", ROLLBACK, state, labels, summary, description, at, at))
    return out


# -- what is sent --------------------------------------------------------------------------


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fingerprint(labels: Mapping[str, str]) -> str:
    """16 hex digits from the sorted labels (Alertmanager's fingerprint is a 64-bit hash of them)."""
    text = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def group_key(labels: Mapping[str, str]) -> str:
    """`{}:{alertname="…", …}` as Alertmanager writes it; one group per event key, so a
    receiver that pairs firing and resolved by groupKey pairs the right two."""
    inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items()))
    return "{}:{" + inner + "}"


def alertmanager_payload(event: Event, *, external_url: str = "", receiver: str = RECEIVER) -> dict[str, Any]:
    """The webhook body for one event: Alertmanager's webhook format, version "4"."""
    annotations = {"summary": event.summary, "description": event.description}
    alert = {
        "status": event.state,
        "labels": dict(event.labels),
        "annotations": annotations,
        "startsAt": rfc3339(event.starts_at),
        "endsAt": rfc3339(event.ends_at) if event.ends_at is not None and event.state == RESOLVED else ZERO_TIME,
        "generatorURL": external_url,
        "fingerprint": fingerprint(event.labels),
    }
    return {
        "version": "4",
        "groupKey": group_key(event.labels),
        "truncatedAlerts": 0,
        "status": event.state,
        "receiver": receiver,
        "groupLabels": dict(event.labels),
        "commonLabels": dict(event.labels),
        "commonAnnotations": dict(annotations),
        "externalURL": external_url,
        "alerts": [alert],
    }


def mail_subject(event: Event) -> str:
    return _text(f"[FSAR {event.state.upper()}] {event.summary}", 200)


def mail_body(event: Event) -> str:
    lines = [
        event.summary,
        "",
        event.description,
        "",
        f"state:   {event.state}",
        f"since:   {rfc3339(event.starts_at)}",
    ]
    if event.ends_at is not None and event.state == RESOLVED:
        lines.append(f"ended:   {rfc3339(event.ends_at)}")
    lines += [f"event:   {event.key}", "", "labels:"]
    lines += [f"  {k} = {v}" for k, v in sorted(event.labels.items())]
    lines += ["", "-- fsar-tui (screen 4, `fsar-tui alerts list`)"]
    return "\n".join(lines) + "\n"


def event_from_record(
    key: str,
    kind: str,
    state: str,
    labels: Mapping[str, Any],
    notes: Mapping[str, Any],
    starts: datetime,
    ends: datetime | None,
) -> Event:
    """An Event back from its notify_events row (a delivery tried again later). The row
    is read as untrusted — an operator role could have claimed it in plain SQL — so it
    passes the same policy as a fresh observation: every text redacted and on one line,
    label names Alertmanager's ([a-zA-Z_][a-zA-Z0-9_]*, others dropped), at most
    MAX_LABELS of them."""
    tags: dict[str, str] = {}
    for name, value in labels.items():
        if len(tags) < MAX_LABELS and isinstance(name, str) and LABEL_NAME.fullmatch(name) and value is not None:
            tags[name] = _text(value, LABEL_MAX)
    summary, description = _text(notes.get("summary", ""), TEXT_MAX), _text(notes.get("description", ""), TEXT_MAX)
    return Event(key, kind, state, tags, summary, description, starts, ends)


# -- retries -------------------------------------------------------------------------------


def retry_at(attempt: int, at: datetime, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_CAP_S) -> datetime | None:
    """After failed attempt number `attempt` (1, 2, …) at `at`: when to try again, or None
    when that was the last (MAX_ATTEMPTS)."""
    if attempt >= MAX_ATTEMPTS:
        return None
    return at + timedelta(seconds=backoff_ceiling(attempt, base_s, cap_s))


# -- secrets -------------------------------------------------------------------------------


def secret_values(url: str) -> list[str]:
    """The parts of `url` never to print, longest first: everything but its scheme, host
    and port — webhook services carry their secret anywhere (mask_notify_url's rule) — in
    the forms a server or library may quote them: the user name and password (raw and
    percent-decoded, and the base64 of Basic auth and of SMTP AUTH PLAIN / LOGIN), the
    path and its long segments, the query and its values, the fragment. Pieces shorter
    than 4 characters are left (masking "a" would garble every error line)."""
    found: set[str] = set()
    text = url.strip()
    rest = text.split("://", 1)[-1]
    userinfo, _, hostpart = rest.rpartition("@") if "@" in rest.split("/", 1)[0] else ("", "", rest)
    user_raw, _, password_raw = userinfo.partition(":")
    user, password = unquote(user_raw), unquote(password_raw)
    found.update({user_raw, user, password_raw, password})
    if user or password:
        for plain in (f"{user}:{password}", f"\0{user}\0{password}", user, password):
            found.add(base64.b64encode(plain.encode()).decode("ascii"))
    path_query, _, fragment = hostpart.partition("#")
    path = path_query[path_query.find("/") :] if "/" in path_query.split("?", 1)[0] else ""
    path, _, query = path.partition("?")
    if not path:
        query = path_query.partition("?")[2]
    found.update({path, unquote(path), query, fragment, unquote(fragment)})
    found.update(seg for seg in path.split("/") if len(seg) >= 8)
    for m in SECRET_QUERY.finditer(text):
        raw = text[m.end(1) : m.end()]
        found.update({raw, unquote(raw), unquote(raw.replace("+", " "))})
    for pair in query.split("&"):
        value = pair.partition("=")[2]
        found.update({value, unquote(value.replace("+", " "))})
    return sorted((s for s in found if len(s.strip()) >= 4 and s != "/"), key=len, reverse=True)


def scrub(text: str, secrets: Sequence[str], mask: str = "***") -> str:
    """`text` on one line with every secret replaced by `mask`."""
    text = " ".join(text.split())
    for secret in secrets:
        if secret and secret.strip():
            text = text.replace(secret, mask)
    return text
