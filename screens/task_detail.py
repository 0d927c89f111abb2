"""One task, in full: attempts, timing, tokens and cost, rollout and originating proposal,
and its error, payload and result. The attempts section has a line per attempt (number,
worker, start, run time, outcome, the headline of its error — domain/attempts.py rebuilds
them from the events trail, which keeps each attempt's error since revision 0022). Every
untrusted value is sanitised and redacted (domain.sanitize / domain.redact) before it is
shown.

Bounded work on hostile size and shape (issue 15: a 1 MB error froze the UI for minutes,
a 10 MB payload for 65 s). The read (db/tasks.task_detail) fetches the first HEAD (68 KiB)
characters of the error, the payload and the result, with their sizes — never the whole
of them, and never parsed (a payload nested 3,000 deep shows like any other). A thread
makes them inert, redacts and lays them out (domain/capped.py) while the event loop keeps
handling keys; each shows at most its first 64 KiB (cut where no secret is split), then
a line `… n more bytes not shown (of m) — e exports all to a file`.

Keys: `e` exports the whole error, payload and result (read again in full, by a worker),
made inert and redacted unless this session's reveal is on, to files an operator opens
with less or jq: `task-<id>-error.txt`, `task-<id>-payload.json`, `task-<id>-result.json`
(valid JSON, as stored; `.revealed` before the suffix when the reveal is on), in
$FSAR_EXPORT_DIR or else `~/.local/state/fsar-tui/exports/` (the directory 0700, the
files 0600); the toast names them. `y` copies the task id (OSC 52), `esc` goes back.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
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
from fsar_tui.domain.attempts import Attempt, attempts
from fsar_tui.domain.capped import HEAD, Capped, capped_json, capped_text, full_json
from fsar_tui.domain.error_groups import headline
from fsar_tui.domain.formatting import between, duration, money
from fsar_tui.domain.redact import policy
from fsar_tui.domain.sanitize import revealed as sanitize_revealed
from fsar_tui.domain.sanitize import strip_controls
from fsar_tui.screens.base import FsarScreen
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.safe_text import safe_text
from fsar_tui.widgets.status_header import StatusHeader

EXPORT_HINT = "e exports all to a file"


@dataclass(frozen=True)
class Shown:
    """The task's large texts as the screen shows them (made in a thread)."""

    error: Capped
    payload: Capped
    result: Capped
    payload_text: Text  # highlighted
    result_text: Text


def prepare(task: dict[str, Any], reveal: bool) -> Shown:
    """Inert, redacted (unless revealed), capped and highlighted: the slow part, off the event loop."""
    error = capped_text(task["error"], task["error_bytes"], reveal=reveal)
    payload = capped_json(task["payload"], task["payload_bytes"], reveal=reveal)
    result = capped_json(task["result"], task["result_bytes"], reveal=reveal)
    return Shown(error, payload, result, _highlighted(payload), _highlighted(result))


def _highlighted(shown: Capped) -> Text:
    if shown.total_bytes == 0:
        return Text("-")
    return Syntax(shown.text, "json", theme="ansi_dark", word_wrap=True).highlight(shown.text)


def export_dir() -> Path:
    return Path(os.environ.get("FSAR_EXPORT_DIR") or platformdirs.user_state_path("fsar-tui") / "exports")


def write_export(task: dict[str, Any], reveal: bool, directory: Path) -> list[Path]:
    """The whole error, payload and result, inert and redacted unless revealed, one file
    each (those the task has); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = ".revealed" if reveal else ""
    written = []
    for column, suffix in (("error", ".txt"), ("payload", ".json"), ("result", ".json")):
        value = task[column]
        if value is None:
            continue
        if column == "error":
            text = strip_controls(value) if reveal else policy().text(strip_controls(value))
        else:
            text = full_json(value, reveal=reveal)
        path = directory / f"task-{task['id']}-{column}{raw}{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        written.append(path)
    return written


class TaskDetailScreen(FsarScreen):
    HELP_TITLE = "Task detail"
    AUTO_FOCUS = "VerticalScroll"
    REFRESH_S = 5.0

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("y", "copy_id", "Copy id", id="detail.copy"),
        Binding("e", "export", "Export all", id="detail.export"),
    ]

    def __init__(self, task_id: int) -> None:
        super().__init__()
        self.task_id = task_id
        self.last: tuple[dict[str, Any], bool] | None = None  # what is shown: (the read, revealed)

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        with VerticalScroll():
            yield Static(Text(f"task {self.task_id}: loading…"), id="detail")
        yield KeyBar()

    def reload(self) -> Worker[None]:
        return self.load()

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def load(self) -> None:
        task = await self.read(task_detail, self.task_id, HEAD)
        reveal = sanitize_revealed()
        if task is not None and self.last == (task, reveal):
            self.deliver(self.unchanged, None)  # the 5 s refresh: nothing to lay out again
            return
        # The slow part (sanitising, redaction, highlighting 64 KiB) in a thread: the event
        # loop keeps handling keys meanwhile. The thread gets this context (the policy, the reveal).
        shown = None if task is None else await asyncio.to_thread(prepare, task, reveal)
        self.deliver(self.show_task, (task, reveal, shown))

    def unchanged(self, _: None) -> None:
        self.loaded("detail")

    def show_task(self, data: tuple[dict[str, Any] | None, bool, Shown | None]) -> None:
        task, reveal, shown = data
        self.loaded("detail")
        self.last = None if task is None else (task, reveal)
        self.query_one("#detail", Static).update(self.render_task(task, shown))

    def render_task(self, t: dict[str, Any] | None, shown: Shown | None) -> Group | Text:
        if t is None or shown is None:
            return Text(f"task {self.task_id} does not exist")
        return Group(
            self.facts(t),
            Text(""),
            *self.attempt_lines(attempts(t["events"], t)),
            Text(""),
            Text("error", style="bold"),
            Text(shown.error.text),
            *_cap_line(shown.error),
            Text(""),
            Text("payload", style="bold"),
            shown.payload_text,
            *_cap_line(shown.payload),
            Text(""),
            Text("result", style="bold"),
            shown.result_text,
            *_cap_line(shown.result),
            Text(""),
            self.transitions(t),
        )

    def facts(self, t: dict[str, Any]) -> Table:
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
        return facts

    def attempt_lines(self, tried: list[Attempt]) -> tuple[Table | Text, ...]:
        """One line per attempt; an error's headline, inert and redacted."""
        if not tried:
            return (Text("attempts: none (never started)", style="bold"),)
        table = Table(title=f"attempts ({len(tried)})", title_justify="left", expand=True)
        for col in ("#", "worker", "started", "run", "outcome"):
            table.add_column(col, no_wrap=True)
        table.add_column("error", ratio=1, no_wrap=True, overflow="ellipsis")
        now = clock.now()
        unrecorded = False
        for a in tried:
            if a.error is not None:
                error = safe_text(headline(a.error) or "-")
            elif a.ended_badly:
                unrecorded = True
                error = Text("no error recorded", style="dim")
            else:
                error = Text("-")
            table.add_row(
                Text(str(a.number)),
                safe_text(a.worker_id or "-"),
                Text(f"{a.started_at:%m-%d %H:%M:%S}"),
                Text(duration(between(a.started_at, a.ended_at or now))),
                Text(a.outcome),
                error,
            )
        if not unrecorded:
            return (table,)
        note = "no error recorded: none was written, or the attempt ended before revision 0022 kept errors per attempt"
        return (table, Text(note, style="dim"))

    def transitions(self, t: dict[str, Any]) -> Table:
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
        return attempts

    def action_copy_id(self) -> None:
        self.app.copy_to_clipboard(str(self.task_id))  # OSC 52: works over SSH
        self.notify(f"copied task id {self.task_id}")

    def action_export(self) -> None:
        self.notify(f"exporting task {self.task_id}…")
        self.export()

    @work(exclusive=True, group="detail-export", exit_on_error=False)
    async def export(self) -> None:
        task = await self.read(task_detail, self.task_id)  # the whole texts, this once
        if task is None:
            self.notify(f"task {self.task_id} does not exist", severity="error")
            return
        directory = export_dir()
        try:
            paths = await asyncio.to_thread(write_export, task, sanitize_revealed(), directory)
        except OSError as exc:
            self.notify(f"export failed: {safe_text(str(exc)).plain}", severity="error", timeout=15)
            return
        names = ", ".join(p.name for p in paths) or "nothing to export (no error, payload or result)"
        self.notify(f"exported to {safe_text(str(directory)).plain}: {names}", timeout=15)


def _cap_line(shown: Capped) -> tuple[Text, ...]:
    line = shown.cap_line(EXPORT_HINT)
    return (Text(line, style="bold yellow"),) if line else ()
