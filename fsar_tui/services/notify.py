"""Notifications (issue 20 point 3): claim the state changes, send them, record each try.

Both faces call this: the app's audit pass (services/audit_pass.py: the one evaluating
panel of a database, inside its transaction) and `fsar-tui audit run`.

1. `claim_changes(conn, cfg, now, rollback_problems)`, in the caller's transaction: read
   the last notified state of every key, observe the sources (drift alerts, enabled hard
   gates, canaries aborted in the last day, proposals blocking now, and — when the caller
   rehearsed them — rollback readiness), diff (domain/notify.changes) and claim each
   change (db/notifications.claim: one row lock per key, so of two passes racing one
   claims it). A claimed change is an event with one pending delivery per channel. The
   database checks each claimed state against its source (revision 0038); a refused
   one is not claimed, its line handed back (the next pass looks again).
2. `deliver_due(conn, cfg)`, after that commit, autocommit: lease the due deliveries
   (at most DELIVER_LIMIT a pass: a receiver that hangs costs the pass at most that many
   timeouts), send each — the Alertmanager payload POSTed to a webhook, or the mail to
   `to` — and record the attempt: ok, or failed with the HTTP status or the error line
   and the next retry, planned by the database by domain/notify.retry_at's rule (none
   after MAX_ATTEMPTS: given up). A
   failure to send is a recorded failed attempt, never an exception out of here.
3. `preflight(cfg)`: the SMTP server answers (EHLO) — the commands that send check it
   before they start (exit 2, one line), as the issue's bad input asks.

Transport is services/delivery.py's (urllib with a timeout, no redirects; smtplib). A
channel is stored as its masked text and found again by `channel_key`, a hash of its URL:
the database never holds a password or a token. Every error line passes domain/notify.
scrub with every channel's secrets.
"""

from __future__ import annotations

import hashlib
import json
import re
import smtplib
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from fsar_tui.domain import notify as rules
from fsar_tui.errors import UsageError

if TYPE_CHECKING:
    from psycopg import Connection

    from fsar_tui.domain.notify_config import NotifyConfig

WEBHOOK_TIMEOUT_S = 5.0
SMTP_TIMEOUT_S = 10.0
DELIVER_LIMIT = 10
CLAIM_LOCK_TIMEOUT = "2s"
LEASE_S = 300  # a pass that dies mid-send: its deliveries are due again after this (≤ MAX_LEASE_S)


@dataclass(frozen=True)
class Channel:
    key: str  # "webhook:<hash>" | "smtp:<hash>": how a delivery finds its URL again
    label: str  # what is stored and shown: the URL masked (and the recipients)
    kind: str  # "webhook" | "smtp"
    url: str = field(repr=False)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def channels(cfg: NotifyConfig) -> list[Channel]:
    from fsar_tui.domain.notify_config import mask_notify_url

    out = [Channel(f"webhook:{_hash(u)}", f"webhook {mask_notify_url(u)}"[:500], "webhook", u) for u in cfg.webhooks]
    if cfg.smtp:
        recipients = ", ".join(cfg.to)
        key = f"smtp:{_hash(cfg.smtp + chr(10) + recipients)}"
        out.append(Channel(key, f"smtp {mask_notify_url(cfg.smtp)} to {recipients}"[:500], "smtp", cfg.smtp))
    return out


def secrets(cfg: NotifyConfig) -> list[str]:
    found: set[str] = set()
    for url in (*cfg.webhooks, *([cfg.smtp] if cfg.smtp else [])):
        found.update(rules.secret_values(url))
    return sorted(found, key=len, reverse=True)


# -- 1. claim ------------------------------------------------------------------------------


def claim_changes(
    conn: Connection,
    cfg: NotifyConfig,
    now: datetime,
    rollback_problems: Mapping[str, str | None] | None = None,
    refused: list[str] | None = None,
) -> int:
    """Claim every state change since the last notified state (in the caller's
    transaction); the number of events claimed. `rollback_problems`: the pass's
    rehearsal (target → why not ready), None when it did not rehearse. A change the
    database refuses (its source reads otherwise there) is not claimed: its line is
    added to `refused`."""
    import psycopg

    from fsar_tui.db import notifications as db
    from fsar_tui.db.rows import one
    from fsar_tui.errors import first_line

    refused = [] if refused is None else refused

    previous = db.previous_states(conn)
    observed = [
        *rules.observe_drift(db.drift_rows(conn, now)),
        *rules.observe_gates(db.hard_gate_rows(conn)),
        *rules.observe_canaries(db.aborted_canaries(conn, now)),
        *rules.observe_proposals(db.blocking_proposals(conn)),
    ]
    kinds = {rules.DRIFT, rules.GATE, rules.CANARY, rules.PROPOSAL}
    if rollback_problems is not None:
        observed += rules.observe_rollbacks(rollback_problems, now)
        kinds.add(rules.ROLLBACK)
    targets = [(c.key, c.label) for c in channels(cfg)]
    if not targets:  # a [notify] naming no channel: nobody to tell, nothing claimed
        return 0
    claimed = 0
    # A key's row lock held by another session (an operator's open transaction) must cost
    # that key only, not the statement timeout of the whole pass: each claim waits at
    # most CLAIM_LOCK_TIMEOUT for it, then is left for the next pass, said in one line.
    before = one(conn.execute("SELECT current_setting('lock_timeout')").fetchone())[0]
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (CLAIM_LOCK_TIMEOUT,))
    try:
        for event in rules.changes(previous, observed, kinds, now):
            try:
                with conn.transaction():  # one savepoint per claim: a refused one costs only itself
                    event_id = db.claim(
                        conn,
                        key=event.key,
                        kind=event.kind,
                        state=event.state,
                        labels=event.labels,
                        annotations={"summary": event.summary, "description": event.description},
                        channels=targets,
                    )
            except psycopg.errors.InvalidParameterValue as exc:
                # The database saw the source otherwise (a rehearsal and the gate's verdict
                # disagreeing, a row changed under us): not claimed; the next pass looks again.
                refused.append(f"{event.key}: {first_line(exc)}")
                continue
            except psycopg.errors.LockNotAvailable:
                refused.append(f"{event.key}: another session holds it (waited {CLAIM_LOCK_TIMEOUT}); next pass")
                continue
            claimed += event_id is not None
    finally:
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (before,))
    return claimed


# -- 2. deliver ----------------------------------------------------------------------------


@dataclass
class Delivered:
    ok: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)  # one line per failed attempt (masked)


def deliver_due(conn: Connection, cfg: NotifyConfig) -> Delivered:
    """Send what is due by the database's clock (autocommit `conn`); never raises for a
    failed send. The database dates each attempt and plans its retry (revision 0038)."""
    from fsar_tui.db import notifications as db

    out = Delivered()
    by_key = {c.key: c for c in channels(cfg)}
    if not by_key:
        return out
    hidden = secrets(cfg)
    for due in db.take(conn, list(by_key), lease_s=LEASE_S, limit=DELIVER_LIMIT):
        event = rules.event_from_record(
            due.event_key, due.kind, due.state, due.labels, due.annotations, due.starts_at, due.ends_at
        )
        channel = by_key.get(due.channel_key)
        outcome: tuple[bool, int | None, str | None] = (False, None, "this channel is no longer in [notify] here")
        if channel is not None:
            outcome = send(channel, event, cfg)
        ok, status, error = outcome
        error = error_line(error, channel, hidden) if error else None
        if channel is not None and channel.kind != "webhook":
            status = None
        db.record(conn, due, ok=ok, http_status=status, error=error)
        if ok:
            out.ok += 1
        else:
            out.failed += 1
            out.problems.append(f"{due.channel}: {error}")
    return out


def error_line(error: str, channel: Channel | None, hidden: list[str]) -> str:
    """What is stored and shown of a failed attempt: one line, no control characters, the
    channel named as its label names it (the transport's message names it by delivery.mask_url,
    which shows the path — where webhook services keep their secret), every part of every
    configured URL but scheme, host and port masked (a receiver's body may quote them)."""
    from fsar_tui.domain.notify_config import mask_notify_url
    from fsar_tui.domain.sanitize import one_line
    from fsar_tui.services import delivery

    if channel is not None:
        error = error.replace(delivery.mask_url(channel.url), mask_notify_url(channel.url))
    line = one_line(rules.scrub(error, hidden))
    return line if len(line) <= 2000 else line[:1999] + "…"


_HTTP_STATUS = re.compile(r"failed: HTTP (\d{3})\b")


def send(channel: Channel, event: rules.Event, cfg: NotifyConfig) -> tuple[bool, int | None, str | None]:
    """(ok, HTTP status, error line) of one attempt; never raises."""
    from fsar_tui.errors import FsarError
    from fsar_tui.services import delivery

    try:
        if channel.kind == "webhook":
            body = json.dumps(rules.alertmanager_payload(event)).encode()
            return True, delivery.post_webhook(channel.url, body, timeout=WEBHOOK_TIMEOUT_S), None
        delivery.send_mail(
            channel.url,
            cfg.sender or f"fsar-tui@{socket.gethostname() or 'localhost'}",
            list(cfg.to),
            rules.mail_subject(event),
            rules.mail_body(event),
            timeout=SMTP_TIMEOUT_S,
        )
        return True, None, None
    except FsarError as exc:
        match = _HTTP_STATUS.search(exc.message)
        if match:  # the status only: its reason phrase and body are the receiver's words,
            # which may quote the URL, the token or the Authorization header back
            code = int(match.group(1))
            return False, code, f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
        return False, None, exc.message
    except Exception as exc:  # a bug or an odd library error: a failed attempt, not a failed pass
        return False, None, f"{type(exc).__name__}: {exc}"


# -- 3. preflight --------------------------------------------------------------------------


def preflight(cfg: NotifyConfig | None, timeout: float = 5.0) -> None:
    """UsageError (exit 2, one line, the URL masked) when [notify]'s SMTP server does not
    answer an EHLO; nothing for webhooks (a receiver down is a failed delivery, retried)."""
    from fsar_tui.domain.notify_config import mask_notify_url
    from fsar_tui.services import delivery

    if cfg is None or not cfg.smtp:
        return
    target = delivery.parse_smtp_url(cfg.smtp)  # UsageError on a bad one (config checked it too)
    shown = mask_notify_url(cfg.smtp)
    try:
        delivery.smtp_hello(target, timeout)
    except (OSError, smtplib.SMTPException, UnicodeError, ValueError) as exc:
        why = rules.scrub(str(exc) or type(exc).__name__, secrets(cfg))
        if isinstance(exc, TimeoutError):
            why = f"timed out after {timeout:g}s" if str(exc) else f"no complete answer within {3 * timeout:g}s"
        raise UsageError(f"[notify] smtp: {shown} does not answer: {why}") from None
