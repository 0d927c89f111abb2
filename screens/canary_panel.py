"""Screen 4's canaries (issue 19): the panel under the rollout targets, the `P` / `A` keys
that promote or abort a running canary, and the words of the app's toast when the judge
moved one.

The panel: per rollout target with a canary, its running one or else its latest (db/
canaries.latest) — state, weight and step (domain/canary.weight_line), canary vs stable
revision; for a running one the judge's last verdict and score, why the weight holds
and STALE when no analysis came for a while (domain/canary.staleness), then one line per
metric (domain/canary_view.metric_rows: failure rate, p90 run time, cost per success,
median tokens, gate:*) with its verdict, canary and stable figures and the effect with
its interval. Running canaries first, and what decides (verdict, hold, STALE) before the
metrics: the panel's height is capped (`fit`: at 80×24 the four tables keep their floors)
and what does not fit is counted ("… n more lines"). It is hidden while no target has
ever had a canary, so screen 4 looks as it did for those who do not use them.

Reads: `canaries.latest` is a sync db/ read, so it runs through the session's
`read_sync` (a short-lived read-only connection to the primary, in a thread: the same
door as the log's integrity check) in a worker of this screen, group "audit-canaries":
a failure is the screen's problem line until a read works (screens/base.py). It is read
when the screen is shown, after each audit pass (AuditChecked: the judge runs in it),
on a rollout or canary control event (NOTIFY `rollout`, MQTT `rollouts` / `canaries`),
and after an own move — not on the 5 s schedule: an idle panel costs the database
nothing more. Staleness ages between reads from the database's clock at the read plus
the time since (re-rendered every 30 s).

Keys: `P` promotes, `A` aborts — the canary of the target highlighted in the rollout
table, or the only running one. The canary is read again from the primary, the dialog
(widgets/canary_dialog.py) shows it and what the move does, asks for the target's name
typed in full and a reason; then db/canaries.decide through the screen's write path
with claimed = the OS user, as the rollback key does. Someone else moved it first: the
one-line Conflict naming who, nothing changed. The keys follow FsarScreen.write_allowed
(removed when read-only, disabled while the database does not answer).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical

from fsar_tui.db import canaries
from fsar_tui.db.actions import os_user
from fsar_tui.domain.canary import Canary, staleness, weight_line
from fsar_tui.domain.canary_view import metric_rows, status_lines
from fsar_tui.domain.formatting import abbreviate
from fsar_tui.domain.sanitize import one_line, safe_str
from fsar_tui.errors import FsarError
from fsar_tui.messages import AuditChecked, DatabaseReady, HeaderStale, LiveBatch
from fsar_tui.screens.audit_rows import FLOORS
from fsar_tui.screens.base import FsarScreen
from fsar_tui.widgets.canary_dialog import CanaryDialog
from fsar_tui.widgets.keyed_table import KeyedTable
from fsar_tui.widgets.text_panel import TextPanel

CONTROL_KINDS = ("rollout", "rollouts", "canaries")  # NOTIFY's kind, MQTT's control topics
AGE_EVERY_S = 30.0  # re-render so STALE appears without a read
METRIC_WIDTH = 18
STATE_STYLE = {"running": "bold yellow", "promoted": "green", "aborted": "bold red"}
VERDICT_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "error": "bold magenta"}


def _at(at: datetime | None) -> str:
    return "—" if at is None else f"{at.astimezone(UTC):%H:%M:%S} UTC"


def _safe(value: object) -> str:
    """Untrusted text on one line: control sequences removed, redacted, never markup."""
    return one_line(safe_str(value))


def canary_lines(c: Canary, now: datetime) -> list[Text]:
    """A canary's lines in the panel; `now`: the database's clock, aged since the read."""
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(_safe(c.target), style="bold")
    head.append(f" · canary {c.id} ")
    head.append(c.state if c.state == "running" else c.state.upper(), style=STATE_STYLE.get(c.state, ""))
    head.append(f" · revision {c.canary_revision} vs stable {c.stable_revision} · ")
    head.append(weight_line(c.state, c.weight, c.step, c.steps))
    lines = [head]
    if c.state != "running":
        lines.append(Text(f"  ended {_at(c.ended_at)} by {_safe(c.ended_by)}: {_safe(c.end_reason)}"))
        return lines
    j = c.judgement if isinstance(c.judgement, dict) else {}  # jsonb: any shape a recorder stored
    judge = Text("  judge: ")
    if j.get("verdict"):
        verdict = _safe(j["verdict"])
        judge.append(verdict, style=VERDICT_STYLE.get(verdict, ""))
        score = j.get("score")
        judge.append(f" · score {score:.0f}" if isinstance(score, int | float) else "")
        by = f" by {_safe(c.judged_by)}" if c.judged_by else ""
        judge.append(f" · {_at(c.judged_at)}{by}: {_safe(j.get('summary', ''))}")
    elif j.get("error"):
        judge.append("error", style=VERDICT_STYLE["error"])
        judge.append(f" · {_at(c.judged_at)}: {_safe(j['error'])}")
    else:
        judge.append("no analysis yet", style="dim")
    lines.append(judge)
    if c.hold_reason:
        lines.append(Text(f"  weight holds: {_safe(c.hold_reason)}", style="yellow"))
    stale = staleness(c.judged_at, c.step_started_at, now, c.pass_at)
    if stale:
        lines.append(Text(f"  STALE: {_safe(stale)}", style="bold red"))
    for name, verdict, canary, stable, effect, why in metric_rows(j):
        line = Text(f"    {abbreviate(one_line(name), METRIC_WIDTH):<{METRIC_WIDTH}} ")
        line.append(f"{one_line(verdict):<12}", style=VERDICT_STYLE.get(verdict, ""))
        line.append(f" canary {canary:>7} · stable {stable:>7} · {effect} · {_safe(why)}")
        lines.append(line)
    return lines


def title_line(shown: list[Canary], keys: bool) -> Text:
    running = sum(1 for c in shown if c.state == "running")
    title = Text(no_wrap=True, overflow="ellipsis")
    title.append(f"canaries · {running} running", style="bold yellow" if running else "")
    title.append(f", {len(shown) - running} ended" if len(shown) > running else "")
    title.append(" · P promote · A abort" if running and keys else "")
    return title


def move_line(c: Canary, action: str) -> str:
    """What a promote or an abort does to `c`, in one line (the dialog's first fact)."""
    if action == "abort":
        return f"abort: {c.weight} % → 0 %: every claim from now runs on stable revision {c.stable_revision}"
    nxt = c.step + 1
    if nxt >= len(c.steps) or c.steps[nxt] >= 100:
        return f"promote: revision {c.canary_revision} becomes the active revision (100 %); the canary ends"
    return f"promote: {c.weight} % → {c.steps[nxt]} % (step {nxt + 1} of {len(c.steps)})"


def outcome_toasts(outcomes: list[Any]) -> list[tuple[str, str, str]]:
    """(message, title, severity) per judge's move in an audit pass's outcomes
    (services/canary_pass.Outcome): an abort or a promotion is toasted once, by the
    panel whose pass made it."""
    out = []
    for o in outcomes:
        if o.action not in ("abort", "promote"):
            continue
        said = f"{_safe(o.target)}: canary {o.canary_id}"
        if o.action == "abort":
            out.append((f"{said} aborted: {_safe(o.detail)}", "canary aborted", "error"))
        elif o.state == "promoted":
            out.append((f"{said} promoted: its revision is active", "canary promoted", "information"))
        else:
            out.append((f"{said} promoted to {o.weight} % (the judge)", "canary promoted", "information"))
    return out


class CanaryPanel(Vertical):
    """The canaries' title line and their lines (hidden while there are none)."""

    DEFAULT_CSS = """
    CanaryPanel { height: auto; display: none; }
    CanaryPanel .title { height: 1; padding: 0 1; background: $panel; }
    CanaryPanel #canaries-body { height: auto; max-height: 6; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__(id="canaries")
        self.shown: list[Canary] = []
        self.read_at = 0.0  # time.monotonic() of the read (the canaries' `now` is the database's then)
        self.keys = False

    def compose(self) -> ComposeResult:
        yield TextPanel(Text("canaries"), id="canaries-status", classes="title")
        yield TextPanel(Text(""), id="canaries-body")

    def on_mount(self) -> None:
        self.set_interval(AGE_EVERY_S, self.render_now)

    def show(self, found: list[Canary], keys: bool) -> None:
        self.shown = sorted(found, key=lambda c: (c.state != "running", c.target))
        self.read_at, self.keys = time.monotonic(), keys
        self.display = bool(self.shown)
        self.render_now()

    def render_now(self) -> None:
        aged = timedelta(seconds=time.monotonic() - self.read_at)
        lines = [line for c in self.shown for line in canary_lines(c, c.now + aged)]
        self.query_one("#canaries-status", TextPanel).show(title_line(self.shown, self.keys))
        self.query_one("#canaries-body", TextPanel).show_rows([], lines, what="lines")

    def fit(self, others: int, height: int) -> None:
        """Cap the lines at what the screen leaves once `others` (the other fixed lines)
        and the tables' floors are placed, and at a quarter of its height: the tables
        come first (at 80×24: 6 lines, the last "… n more lines" when it cuts)."""
        room = height - others - sum(FLOORS) - 1  # - 1: the title line
        rows = max(1, min(room, height // 4))
        body = self.query_one("#canaries-body", TextPanel)
        if body.styles.max_height is None or body.styles.max_height.value != rows:
            body.styles.max_height = rows

    def on_resize(self) -> None:
        share = getattr(self.screen, "share_height", None)  # the tables take what is left
        if share is not None:
            share()


class CanaryControls(FsarScreen):
    """The canary panel's reads and keys, for screen 4 (screens/audit.py binds P and A).
    Its message handlers run beside the screen's own (Textual calls a handler of every
    class in the screen's MRO)."""

    def __init__(self) -> None:
        super().__init__()
        self.canary_rows: list[Canary] = []

    def on_screen_resume(self) -> None:
        self.read_canaries()

    def on_database_ready(self, message: DatabaseReady) -> None:
        self.read_canaries()

    def on_audit_checked(self, message: AuditChecked) -> None:
        self.read_canaries()  # the judge ran in the pass

    def on_live_batch(self, message: LiveBatch) -> None:
        if message.batch.resync or any(c.kind in CONTROL_KINDS for c in message.batch.control):
            self.read_canaries()

    @work(exclusive=True, group="audit-canaries", exit_on_error=False)
    async def read_canaries(self) -> None:
        if not self.session.ready:
            return
        self.deliver(self.show_canaries, await self.session.read_sync(canaries.latest))

    def show_canaries(self, found: list[Canary]) -> None:
        self.clear_problem("audit-canaries")
        self.canary_rows = found
        self.query_one(CanaryPanel).show(found, keys=self.can("act"))

    def fit_canaries(self, tables: list[KeyedTable]) -> None:
        """Called by the screen's height sharing before it places the tables."""
        panel = self.query_one(CanaryPanel)
        others = sum(w.outer_size.height for w in self.children if w not in tables and w is not panel and w.display)
        panel.fit(others, self.size.height)

    # -- keys -------------------------------------------------------------------------------

    def action_canary_promote(self) -> None:
        self.canary_key("promote")

    def action_canary_abort(self) -> None:
        self.canary_key("abort")

    def canary_key(self, action: str) -> None:
        running = [c for c in self.canary_rows if c.state == "running"]
        key = self.query_one("#targets", KeyedTable).current_key
        chosen = next((c for c in running if c.target == key), None) or (running[0] if len(running) == 1 else None)
        if chosen is None:
            self.notify(
                "no canary is running (fsar-tui rollouts deploy … --canary)"
                if not running
                else f"{len(running)} canaries are running: highlight the target in the rollout table",
                severity="warning",
            )
            return
        self.decide_canary(chosen.target, action)

    @work(exclusive=True, group="audit-action", exit_on_error=False)
    async def decide_canary(self, target: str, action: str) -> None:
        title = f"canary {action}"
        try:  # as it is now, from the primary: what the dialog shows is what is decided on
            canary = await self.session.read_sync(canaries.running, target)
        except FsarError as exc:
            self.notify(exc.message, title=title, severity="error", timeout=10)
            self.read_canaries()
            return
        question = f"{action.capitalize()} the canary on {target}?"
        facts = [move_line(canary, action), *status_lines(canary)]
        verdict = canary.judgement.get("verdict") if isinstance(canary.judgement, dict) else None
        if action == "promote" and verdict != "pass":  # as the CLI says it: the log records it too
            facts.insert(1, f"the judge's last verdict is {verdict or 'none yet'}: this promote overrides it")
        reason = await self.app.push_screen_wait(CanaryDialog(question, facts, canary.target))
        if reason is None:
            return
        try:
            decided = await self.write(canaries.decide, canary, action, reason=reason, claimed=os_user())
        except FsarError as exc:  # Conflict names who moved it first; nothing was done
            self.notify(exc.message, title=f"{title} refused", severity="error", timeout=15)
            self.read_canaries()
            return
        shown = _safe(canary.target)
        if decided.state == "running":
            message = f"{shown}: canary {canary.id} promoted to {decided.weight} % (step {decided.step + 1})"
        else:
            message = f"{shown}: canary {canary.id} {decided.state}"
        message += await self.announce(canary, decided, reason)
        self.notify(message, title=f"canary {decided.state}", timeout=10)
        self.post_message(HeaderStale())  # an abort is a banner on every screen
        self.read_canaries()
        self.request()  # the operator log

    async def announce(self, canary: Canary, decided: canaries.Decided, reason: str) -> str:
        """The retained MQTT control message; '' or what failed (the database is the truth:
        workers also hear of it from the database and resync)."""
        url = self.fsar.settings.mqtt_url
        if not url:
            return ""
        from fsar_tui.live.mqtt import announce_canary

        try:
            await announce_canary(url, canary.target, canary.id, decided.state, decided.weight, reason)
        except Exception as exc:
            return f" (MQTT control message failed: {type(exc).__name__})"
        return ""
