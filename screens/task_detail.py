"""One task, in full: payload, result and error as formatted JSON, attempts, timing,
tokens and cost, rollout and originating proposal. Every untrusted value is sanitised
and redacted (domain.sanitize / domain.redact) before it is shown."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual.worker import Worker

from fsar_tui import clock
from fsar_tui.db.tasks import task_detail
from fsar_tui.domain.formatting import between, duration, money
from fsar_tui.domain.redact import redact_value
from fsar_tui.domain.sanitize import revealed as sanitize_revealed
from fsar_tui.domain.sanitize import safe_str
from fsar_tui.screens.base import FsarScreen
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.safe_text import safe_text
from fsar_tui.widgets.status_header import StatusHeader


def json_block(value: Any) -> Syntax | Text:
    if value is None:
        return Text("-")
    # The policy's fields first (structure is needed to know a key), then its detectors
    # over the serialised text, so keys and values alike are covered.
    shown = value if sanitize_revealed() else redact_value(value)
    return Syntax(
        safe_str(json.dumps(shown, indent=2, ensure_ascii=False, default=str)),
        "json",
        theme="ansi_dark",
        word_wrap=True,
    )


class TaskDetailScreen(FsarScreen):
    AUTO_FOCUS = "VerticalScroll"
    REFRESH_S = 5.0

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("y", "copy_id", "Copy id", id="detail.copy"),
    ]

    def __init__(self, task_id: int) -> None:
        super().__init__()
        self.task_id = task_id

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        with VerticalScroll():
            yield Static(Text(f"task {self.task_id}: loading…"), id="detail")
        yield KeyBar()

    def reload(self) -> Worker[None]:
        return self.load()

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def load(self) -> None:
        self.deliver(self.show_task, await self.read(task_detail, self.task_id))

    def show_task(self, task: dict | None) -> None:
        self.loaded("detail")
        self.query_one("#detail", Static).update(self.render_task(task))

    def render_task(self, t: dict | None) -> Group | Text:
        if t is None:
            return Text(f"task {self.task_id} does not exist")
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold")
        facts.add_column()
        wait = between(t["queued_at"], t["started_at"])
        run = between(t["started_at"], t["finished_at"] or (clock.now() if t["started_at"] else None))
        rows = [
            ("task", f"{t['id']} · {t['task_type']} · {t['ai_model'] or 'no model'}"),
            (
                "status",
                f"{t['status']} · attempt {t['attempt']} of {t['max_attempts']} · worker {t['worker_id'] or '-'}",
            ),
            ("queued", f"{t['queued_at']:%Y-%m-%d %H:%M:%S%z} (created {t['created_at']:%Y-%m-%d %H:%M:%S%z})"),
            ("started", f"{t['started_at']:%Y-%m-%d %H:%M:%S%z}" if t["started_at"] else "-"),
            ("finished", f"{t['finished_at']:%Y-%m-%d %H:%M:%S%z}" if t["finished_at"] else "-"),
            ("timing", f"queue wait {duration(wait)} · run {duration(run)}"),
            (
                "tokens",
                (
                    f"in {t['input_tokens'] or 0:,} · out {t['output_tokens'] or 0:,} · cost "
                    f"{money(t['cost_minor'], t['currency'])}"
                ),
            ),
            ("rollout", f"{t['rollout_target']} revision {t['rollout_revision']}" if t["rollout_target"] else "-"),
            ("proposal", f"{t['proposal_id']} (severity {t['proposal_severity']})" if t["proposal_id"] else "-"),
            ("idea", t["idea_id"] or "-"),
        ]
        for label, value in rows:
            facts.add_row(Text(label), safe_text(value))
        attempts = Table(title="transitions", title_justify="left", expand=True)
        for col in ("at", "from", "to", "attempt", "worker"):
            attempts.add_column(col)
        for e in t["events"]:
            attempts.add_row(
                Text(f"{e['at']:%Y-%m-%d %H:%M:%S}"),
                Text(e["from_status"] or "-"),
                Text(e["to_status"]),
                Text(str(e["attempt"])),
                safe_text(e["worker_id"] or "-"),
            )
        error = safe_text(t["error"]) if t["error"] else Text("-")
        return Group(
            facts,
            Text(""),
            Text("error", style="bold"),
            error,
            Text(""),
            Text("payload", style="bold"),
            json_block(t["payload"]),
            Text(""),
            Text("result", style="bold"),
            json_block(t["result"]),
            Text(""),
            attempts,
        )

    def action_copy_id(self) -> None:
        self.app.copy_to_clipboard(str(self.task_id))  # OSC 52: works over SSH
        self.notify(f"copied task id {self.task_id}")
