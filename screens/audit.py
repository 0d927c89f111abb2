"""Screen 4, Audit & Rollback — so far only its operator action log; the rest is a
placeholder that says so on screen (rollouts and rollback, audit gates, drift alerts:
issue "audit and rollback").

The log: every operator action by anyone, newest first (seq, time, OS user, database
role, action, target, reason), filtered server-side with `:audit actor:ops action:retry
target:task: since:24h`; `esc` clears the filter. The status line shows the database's
own chain check (`fsar_operator_actions_verify()`, every 60 s) — the stronger check,
against an anchor kept outside the database, is `fsar-tui log verify`. Re-read every 5 s.
"""

from __future__ import annotations

import time
from datetime import timedelta

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static

from fsar_tui import clock
from fsar_tui.db import operator_log
from fsar_tui.db.connect import UNAVAILABLE_ERRORS as DB_ERRORS
from fsar_tui.domain.sanitize import safe_text
from fsar_tui.domain.task_filter import FilterError, parse_window
from fsar_tui.messages import ApplyFilter, DatabaseReady
from fsar_tui.screens.reload_schedule import ReloadSchedule
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.keyed_table import KeyedTable
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel

COLUMNS = ("seq", "at (UTC)", "actor", "role", "action", "target", "reason")
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
            out["since"] = clock.now() - timedelta(seconds=parse_window(value))
        else:
            out[key] = value
    return out


class AuditScreen(Screen):
    DEFAULT_CSS = """
    AuditScreen #placeholder { height: 3; padding: 0 1; color: $warning; border-bottom: solid $panel; }
    AuditScreen #log-status { height: 1; padding: 0 1; background: $panel; }
    AuditScreen #log { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "clear_filter", "Clear filter", id="audit.clear"),
        Binding("j", "cursor_down", "Down", id="audit.down", show=False),
        Binding("k", "cursor_up", "Up", id="audit.up", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.filters: dict = {}
        self.rows: list[tuple] = []
        self.broken_at: int | None = None
        self.verified_at = None
        self.schedule = ReloadSchedule(every=REFRESH_S)
        self.last_verify = 0.0

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield Static(Text("PLACEHOLDER — rollouts and rollback, audit gates and drift alerts are not built yet "
                          "(issue: audit and rollback). Below: the operator action log, which is real."),
                     id="placeholder")
        yield TextPanel(Text("operator log: loading…"), id="log-status")
        yield KeyedTable(COLUMNS, id="log")
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.sync_header(self.query_one(StatusHeader))
        self.set_focus(self.query_one(KeyedTable))
        self.set_interval(1.0, self.tick)
        self.tick()

    def tick(self) -> None:
        self.schedule.tick(self.app.pool is not None, self.reload)

    def on_database_ready(self, message: DatabaseReady) -> None:
        self.schedule.mark()
        self.tick()

    def on_apply_filter(self, message: ApplyFilter) -> None:
        """`:audit actor:ops since:24h` — the command line's argument filters the log."""
        try:
            self.filters = parse_log_filter(message.text)
        except FilterError as exc:
            self.notify(str(exc), title="filter not changed", severity="error")
            return
        self.filter_text = message.text.strip()
        self.schedule.mark()
        self.tick()

    @work(exclusive=True, group="audit-log")
    async def reload(self) -> None:
        verify = time.monotonic() - self.last_verify > VERIFY_EVERY_S
        try:
            async with self.app.pool.connection() as conn:
                rows = await operator_log.list_actions_async(conn, limit=500, **self.filters)
                if verify:
                    self.broken_at = await operator_log.database_verdict_async(conn)
        except DB_ERRORS as exc:
            self.app.db_unreachable(exc)
            return
        self.app.db_reachable()
        self.schedule.done()
        if verify:
            self.last_verify, self.verified_at = time.monotonic(), clock.now()
        self.rows = rows
        try:
            self.render_log()
        except NoMatches:
            pass

    def render_log(self) -> None:
        table = self.query_one(KeyedTable)
        table.replace_rows([
            (seq, [Text(str(seq)), Text(f"{at:%m-%d %H:%M:%S}"), safe_text(actor), safe_text(role),
                   safe_text(action), safe_text(target), safe_text(reason or "")])
            for seq, at, actor, role, action, target, reason in self.rows])
        status = Text(no_wrap=True, overflow="ellipsis")
        shown = f"{len(self.rows)} action(s)" + (" (newest 500)" if len(self.rows) == 500 else "")
        status.append(f"operator log · {shown} · filter: {self.filter_text or 'none (:audit actor:… action:…)'} · ")
        if self.verified_at is not None:
            if self.broken_at is None:
                status.append(f"chain intact at {self.verified_at:%H:%M:%S}", style="green")
            else:
                status.append(f"CHAIN BROKEN at seq {self.broken_at} — run fsar-tui log verify", style="bold red")
        self.query_one("#log-status", TextPanel).show(status)

    def action_clear_filter(self) -> None:
        self.filters, self.filter_text = {}, ""
        self.schedule.mark()
        self.tick()

    def action_cursor_down(self) -> None:
        self.query_one(KeyedTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(KeyedTable).action_cursor_up()
