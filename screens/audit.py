"""Screen 4, Audit & Rollback: rollout targets and their rollback, audit gates, drift
alerts, and the operator action log.

Four tables, top to bottom; `tab` moves between them, `j/k` move within one:
- Rollouts: target, kind, task type, active revision, the revision a rollback goes to,
  and readiness from the app's scheduled pass (services/audit_pass.py: every rollback rehearsed
  in a rolled-back transaction every minute) — "ready · verified 3 min ago" or the
  failure in red. `R` on a target: dry-run preview (target revision, artifact diff,
  tasks in flight, last gate verdicts), type the target's name, give a reason; one
  transaction (db/rollouts.rollback), then the retained MQTT control message. Rolling
  back a rollback is the roll-forward (the log records which). If someone else changed
  the target first, nothing happens and the notification names who.
- Gates: latest verdict per gate (FAIL + BLOCKING in red for a failing hard gate),
  condition, scope, value, samples. `o` overrides a blocking gate with a reason (until
  it passes again); `R` on a gate scoped to a rollout target offers that target's
  rollback (the rollout that gate judges).
- Alerts: open drift alerts; `a` acknowledges the highlighted one with a reason.
- Log: every operator action, newest first; `:audit actor:… action:… target:… since:…`
  filters it server-side, `esc` clears. Its status line shows the log's integrity as
  `security-audit` judges it (services/log_integrity.py: every hash recomputed here, the
  head, the triggers and the shipped functions checked; every 60 s, in a thread);
  `fsar-tui log verify` adds the check against an anchor kept outside the database.
- Canaries (screens/canary_panel.py), under the targets while any target has had one:
  weight and step, the judge's verdict per metric, why the weight holds, STALE; `P`
  promotes, `A` aborts the highlighted target's (or the only) running canary, typed
  confirmation and a reason, as `R` does.
Under 120 columns each table keeps its most telling columns (screens/audit_rows.py). The
tables share the height by what they hold (every row when there is room; targets first,
then gates and alerts, the log takes the rest), and a title says how many rows its
table's height hides.
The last lines are the scheduled pass's retention (services/audit_pass.py step 3): what its
last run did and when the next is due, why it could not run, or that it is off; and its
notifications (screens/notify_line.py, shown with [notify] or a failed delivery): none
failed, or the failed deliveries.
`e` runs the scheduled pass now. Read-only mode or a viewer role removes R, P, A, o and a; `o`
needs fsar_admin (the role's grants, read at connect).
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.worker import Worker

from fsar_tui import clock
from fsar_tui.db import audit as audit_reads
from fsar_tui.db import drift, gates, operator_log, rollouts
from fsar_tui.db.actions import os_user
from fsar_tui.domain.durations import DurationError, parse_window
from fsar_tui.domain.task_filter import FilterError
from fsar_tui.errors import FsarError
from fsar_tui.messages import ApplyFilter, AuditChecked, AuditCheckRequested, HeaderStale
from fsar_tui.screens.audit_rows import (
    CAPS,
    CUT,
    FLOORS,
    alert_cells,
    columns_for,
    gate_cells,
    log_cells,
    more_below,
    retention_line,
    share_heights,
    target_cells,
    wanted_lines,
)
from fsar_tui.screens.canary_panel import CanaryControls, CanaryPanel
from fsar_tui.screens.notify_line import NotifyLine
from fsar_tui.services.log_integrity import LogIntegrity
from fsar_tui.widgets.action_dialog import ActionDialog
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.keyed_table import KeyedTable
from fsar_tui.widgets.rollback_dialog import RollbackDialog
from fsar_tui.widgets.safe_text import safe_text
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel

TABLES = ("targets", "gates", "alerts", "log")
FILTER_KEYS = ("actor", "action", "target", "since")
REFRESH_S = 5
VERIFY_EVERY_S = 60


def parse_log_filter(text: str) -> dict:
    """`actor:ops action:retry target:task: since:24h` → list_actions keyword arguments."""
    out: dict = {}
    for term in text.split():
        key, sep, value = term.replace("=", ":", 1).partition(":")
        if not sep or key not in FILTER_KEYS or not value:
            raise FilterError(f"bad term {term!r}: use {', '.join(k + ':…' for k in FILTER_KEYS)}")
        if key == "since":
            try:
                out["since"] = clock.now() - timedelta(seconds=parse_window(value))
            except DurationError as exc:
                raise FilterError(str(exc)) from None
        else:
            out[key] = value
    return out


class AuditTable(KeyedTable):
    """A table of this screen: its title says how many rows its height hides, so when the
    height changes (rows came or went, the terminal was resized) the titles are redrawn."""

    def on_resize(self) -> None:
        screen = self.screen
        if isinstance(screen, AuditScreen):
            screen.retitle()
            screen.share_height()  # its columns may have come to fit (or no longer)


class AuditScreen(CanaryControls):
    REFRESH_S = REFRESH_S

    DEFAULT_CSS = """
    AuditScreen .title { height: 1; padding: 0 1; background: $panel; }
    AuditScreen #targets, AuditScreen #gates, AuditScreen #alerts { height: 2; }
    AuditScreen #log { height: 1fr; min-height: 3; }
    AuditScreen KeyedTable:focus { background-tint: $foreground 5%; }
    """
    BINDINGS = [
        Binding("R", "rollback", "Rollback", id="audit.rollback"),
        Binding("o", "override", "Override gate", id="audit.override"),
        Binding("a", "ack", "Ack alert", id="audit.ack"),
        Binding("e", "evaluate", "Check now", id="audit.evaluate"),
        Binding("P", "canary_promote", "Promote canary", id="audit.canary_promote"),
        Binding("A", "canary_abort", "Abort canary", id="audit.canary_abort"),
        Binding("escape", "clear_filter", "Clear filter", id="audit.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.filters: dict = {}
        self.rows: list[operator_log.LoggedAction] = []
        self.gate_rows: list[gates.GateStatus] = []
        self.alert_rows: list[drift.OpenAlert] = []
        self.chain_problem: str | None = None  # why the log cannot be trusted (None: verified)
        self.verified_at: datetime | None = None
        self.last_verify = 0.0

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield TextPanel(Text("rollouts: waiting for the first check…"), id="targets-status", classes="title")
        width = self.app.size.width
        yield AuditTable(columns_for("targets", width), id="targets")
        yield CanaryPanel()
        yield TextPanel(Text("audit gates: loading…"), id="gates-status", classes="title")
        yield AuditTable(columns_for("gates", width), id="gates")
        yield TextPanel(Text("drift alerts: loading…"), id="alerts-status", classes="title")
        yield AuditTable(columns_for("alerts", width), id="alerts")
        yield TextPanel(Text("operator log: loading…"), id="log-status", classes="title")
        yield AuditTable(columns_for("log", width), id="log")
        yield TextPanel(Text("retention · …"), id="retention-status", classes="title")
        yield NotifyLine(Text("notifications · …"), id="notify-status", classes="title")
        yield KeyBar()

    def on_mount(self) -> None:
        # No super().on_mount(): Textual calls FsarScreen's handler as well (each class's
        # on_mount in the MRO), and calling it here too started a second 1 s tick timer.
        self.set_interval(30.0, self.render_targets)  # "verified N min ago" ages
        self.render_targets()
        self.render_retention()
        self.read_notifications()

    def on_audit_checked(self, message: AuditChecked) -> None:
        self.render_targets()
        self.render_retention()
        self.read_notifications()  # the pass may have sent, or failed to
        self.request()  # new verdicts and alerts

    def read_notifications(self) -> None:
        check = self.fsar.audit_check
        problem = check.notify_problem if check is not None else None
        configured = self.fsar.settings.notify is not None
        self.query_one(NotifyLine).reload(self.session, configured=configured, problem=problem)

    def on_apply_filter(self, message: ApplyFilter) -> None:
        """`:audit actor:ops since:24h` — the command line's argument filters the log."""
        try:
            self.filters = parse_log_filter(message.text)
        except FilterError as exc:
            self.notify(str(exc), title="filter not changed", severity="error")
            return
        self.filter_text = message.text.strip()
        self.reload_now()

    # -- reads --------------------------------------------------------------------------------

    def reload(self) -> Worker[None]:
        return self.read_audit()

    @work(exclusive=True, group="audit-log", exit_on_error=False)
    async def read_audit(self) -> None:
        if time.monotonic() - self.last_verify > VERIFY_EVERY_S:
            self.last_verify = time.monotonic()
            self.verify_chain()
        self.deliver(self.show_audit, await self.read(audit_reads.audit_screen, verify=False, **self.filters))

    @work(exclusive=True, group="audit-chain", exit_on_error=False)
    async def verify_chain(self) -> None:
        # The same judgement as `log verify` / `security-audit`: hashes recomputed here,
        # protections checked — never the database's verify function alone, which a
        # role with the power to replace it could make say "intact".
        from fsar_tui.services.log_integrity import check_log

        self.deliver(self.show_chain, await self.session.read_sync(check_log))

    def show_chain(self, integrity: LogIntegrity) -> None:
        self.clear_problem("audit-chain")
        self.verified_at = clock.now()
        if integrity.ok:
            self.chain_problem = None
        elif not integrity.verdict.ok:
            self.chain_problem = integrity.verdict.problem or "the chain does not verify"
        elif integrity.problems:
            self.chain_problem = integrity.problems[0]
        else:
            self.chain_problem = f"the database's own check says broken at seq {integrity.database_says}"
        self.render_log()

    def show_audit(self, data: audit_reads.AuditRound) -> None:
        self.loaded("audit-log")
        self.rows, self.gate_rows, self.alert_rows = data.log, data.gates, data.alerts
        self.render_gates()
        self.render_alerts()
        self.render_log()

    # -- rendering ------------------------------------------------------------------------------

    def on_resize(self) -> None:
        tables = {name: self.query_one(f"#{name}", KeyedTable) for name in TABLES}
        if any(tuple(t.column_names[1:]) != columns_for(name, self.size.width) for name, t in tables.items()):
            self.render_targets()
            self.render_gates()
            self.render_alerts()
            self.render_log()
        self.share_height()

    def fill(self, name: str, rows: list[tuple[Hashable, list[Text]]]) -> None:
        """Rows into a table, in the columns of this width (its title follows)."""
        table = self.query_one(f"#{name}", KeyedTable)
        table.set_columns(columns_for(name, self.size.width))
        table.replace_rows(rows)
        self.share_height()

    def share_height(self) -> None:
        """The tables' heights from what they hold: every row when the screen has room,
        targets first, then gates, alerts; the log takes what is left (share_heights)."""
        tables = [self.query_one(f"#{name}", KeyedTable) for name in TABLES]
        if not self.size.height or not all(t.size.width for t in tables):
            return  # not laid out yet: the tables' first resize calls again
        self.fit_canaries(tables)
        fixed = sum(w.outer_size.height for w in self.children if w not in tables and w.display)
        wants = [wanted_lines(t) for t in tables]
        heights = share_heights(self.size.height - fixed, wants, FLOORS, CAPS)
        changed = False
        for table, height in zip(tables[:-1], heights, strict=False):
            if table.styles.height is None or table.styles.height.value != height:
                table.styles.height = height
                changed = True
        if changed:
            # The titles' "n more below" count what fits: count again once the heights apply.
            self.call_after_refresh(self.retitle)

    def retitle(self) -> None:
        self.title_targets()
        self.title_gates()
        self.title_alerts()

    def render_targets(self) -> None:
        check = self.fsar.audit_check
        columns = columns_for("targets", self.size.width)
        cut = self.size.width <= CUT
        self.fill("targets", [(t.target, target_cells(t, check, columns, cut)) for t in check.targets] if check else [])
        self.title_targets()

    def title_targets(self) -> None:
        check = self.fsar.audit_check
        status = Text(no_wrap=True, overflow="ellipsis")
        if check is None:
            status.append("rollouts: waiting for the first check…")
        else:
            broken = sum(1 for p in check.problems.values() if p)
            more = more_below(self.query_one("#targets", KeyedTable))
            status.append(f"rollouts · {len(check.targets)} target(s){more} · checked {check.at:%H:%M:%S} · ")
            failure = self.fsar.audit_failure
            if failure is not None:
                # The readiness above is from the last pass that worked: never call it ready.
                status.append(f"last pass FAILED at {failure[0]:%H:%M:%S}: ", style="bold red")
                status.append(safe_text(failure[1]).plain[:120], style="bold red")
            else:
                status.append(
                    f"{broken} NOT READY" if broken else "every rollback ready", style="bold red" if broken else "green"
                )
            status.append((" · R rollback" if self.can("act") else "") + " · e check now")
        self.query_one("#targets-status", TextPanel).show(status)

    def render_retention(self) -> None:
        check = self.fsar.audit_check
        status = check.retention_status if check is not None else None
        line = retention_line(
            status, configured=self.fsar.settings.retention is not None, read_only=self.session.read_only
        )
        self.query_one("#retention-status", TextPanel).show(line)

    def render_gates(self) -> None:
        columns = columns_for("gates", self.size.width)
        self.fill("gates", [(g.name, gate_cells(g, columns)) for g in self.gate_rows])
        self.title_gates()

    def title_gates(self) -> None:
        failing = sum(1 for g in self.gate_rows if g.blocking)
        status = Text(no_wrap=True, overflow="ellipsis")
        status.append(f"audit gates · {len(self.gate_rows)}{more_below(self.query_one('#gates', KeyedTable))} · ")
        status.append(
            f"{failing} BLOCKING execution" if failing else "none blocking", style="bold red" if failing else "green"
        )
        status.append((" · o override" if self.can("override") else "") + " · ~ soft")
        self.query_one("#gates-status", TextPanel).show(status)

    def render_alerts(self) -> None:
        columns = columns_for("alerts", self.size.width)
        self.fill("alerts", [(a.id, alert_cells(a, columns)) for a in self.alert_rows])
        self.title_alerts()

    def title_alerts(self) -> None:
        firing = sum(1 for r in self.alert_rows if r.state == "firing")
        status = Text(no_wrap=True, overflow="ellipsis")
        more = more_below(self.query_one("#alerts", KeyedTable))
        status.append(f"drift alerts · {len(self.alert_rows)} open{more} · ")
        status.append(f"{firing} firing" if firing else "none firing", style="bold red" if firing else "green")
        if self.can("act"):  # read-only sessions and viewers do not get the key: do not offer it
            status.append(" · a acknowledge")
        self.query_one("#alerts-status", TextPanel).show(status)

    def render_log(self) -> None:
        columns = columns_for("log", self.size.width)
        self.fill("log", [(r.seq, log_cells(r, columns)) for r in self.rows])
        status = Text(no_wrap=True, overflow="ellipsis")
        shown = f"{len(self.rows)} action(s)" + (" (newest 500)" if len(self.rows) == 500 else "")
        status.append(f"operator log · {shown} · filter: {self.filter_text or 'none (:audit actor:… action:…)'} · ")
        if self.verified_at is not None:
            if self.chain_problem is None:
                status.append(f"log verified at {self.verified_at:%H:%M:%S}", style="green")
            else:
                status.append(f"LOG NOT TRUSTWORTHY: {safe_text(self.chain_problem).plain[:100]}", style="bold red")
                status.append(" — run fsar-tui log verify", style="bold red")
        self.query_one("#log-status", TextPanel).show(status)

    # -- actions ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("rollback", "ack", "canary_promote", "canary_abort"):
            return self.write_allowed()  # removed for read-only sessions and viewers, off while unreachable
        if action == "override":
            return self.write_allowed("override")  # gate overrides are fsar_admin's
        return True

    def focused_table(self) -> KeyedTable:
        focused = self.focused
        return focused if isinstance(focused, KeyedTable) else self.query_one("#targets", KeyedTable)

    def action_rollback(self) -> None:
        table = self.focused_table()
        key = table.current_key
        if table.id == "gates" and key is not None:
            scope = next((g.scope for g in self.gate_rows if g.name == key), {})
            key = scope.get("rollout")
            if key is None:
                self.notify("this gate is not scoped to a rollout target: select a target above", severity="warning")
                return
        elif table.id != "targets":
            self.notify("select a rollout target (or a gate scoped to one) to roll back", severity="warning")
            return
        if key is None:
            self.notify("no rollout target selected", severity="warning")
            return
        self.roll_back(str(key))

    @work(exclusive=True, group="audit-action", exit_on_error=False)
    async def roll_back(self, target: str) -> None:
        try:
            preview = await self.write(rollouts.preview, target, None)
        except FsarError as exc:
            self.notify(exc.message, title="rollback", severity="error", timeout=10)
            return
        reason = await self.app.push_screen_wait(RollbackDialog(preview, preview.kind))
        if reason is None:
            return
        try:
            new = await self.write(
                rollouts.rollback,
                preview.target,
                preview.to,
                expected_active=preview.active,
                actor=os_user(),
                reason=reason,
            )
        except FsarError as exc:  # Conflict names who won; ArtifactBroken says which revision
            self.notify(exc.message, title="rollback refused", severity="error", timeout=15)
            self.post_message(AuditCheckRequested())
            return
        message = f"{preview.target}: revision {new} (a copy of {preview.to}) is active"
        if self.fsar.settings.mqtt_url:
            from fsar_tui.live.mqtt import announce_rollout

            try:
                await announce_rollout(self.fsar.settings.mqtt_url, preview.target, new, preview.to)
            except Exception as exc:  # the database is the truth: workers also get NOTIFY and resync
                message += f" (MQTT control message failed: {type(exc).__name__})"
        self.notify(message, title="rolled back", timeout=10)
        self.post_message(AuditCheckRequested())
        self.request()

    def action_override(self) -> None:
        table = self.query_one("#gates", KeyedTable)
        if self.focused is not table or table.current_key is None:
            self.notify("select a blocking gate (tab to the gates table)", severity="warning")
            return
        gate = next((g for g in self.gate_rows if g.name == table.current_key), None)
        if gate is None or not gate.blocking:
            self.notify(f"gate {table.current_key} is not blocking anything", severity="warning")
            return
        name = str(table.current_key)
        self.confirmed_change(
            f"Override hard gate {name}? Its scope runs again until the gate passes.",
            gates.override,
            name,
            refused="override refused",
            done=f"gate {name} overridden until it passes again",
        )

    def action_ack(self) -> None:
        table = self.query_one("#alerts", KeyedTable)
        if self.focused is not table or table.current_key is None:
            self.notify("select a firing alert (tab to the alerts table)", severity="warning")
            return
        alert_id = int(str(table.current_key))
        self.confirmed_change(
            f"Acknowledge alert {alert_id}?",
            drift.ack,
            alert_id,
            refused="not acknowledged",
            done=f"alert {alert_id} acknowledged",
        )

    @work(exclusive=True, group="audit-action", exit_on_error=False)
    async def confirmed_change(self, question: str, change: Any, subject: Any, *, refused: str, done: str) -> None:
        """Ask for a reason, then change(conn, subject, actor=…, reason=…) from db/ in a thread;
        a refusal (FsarError) is shown as it is worded there."""
        reason = await self.app.push_screen_wait(ActionDialog(question, 1))
        if reason is None:
            return
        try:
            await self.write(change, subject, actor=os_user(), reason=reason)
        except FsarError as exc:
            self.notify(exc.message, title=refused, severity="error", timeout=10)
            return
        self.notify(done, timeout=8)
        self.post_message(HeaderStale())
        self.request()

    def action_evaluate(self) -> None:
        self.post_message(AuditCheckRequested())
        self.notify("checking rollbacks, gates and drift…", timeout=3)

    def action_clear_filter(self) -> None:
        self.filters, self.filter_text = {}, ""
        self.reload_now()
