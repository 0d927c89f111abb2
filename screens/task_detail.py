"""One task, in full: attempts, timing, tokens and cost, rollout and originating proposal,
and its last error, payload and result. The attempts section has a line per attempt
(number, worker, start, run time, how it ended: "failed → retry", "lease lost", …) with
that attempt's whole error wrapped under it, so every attempt's error reads at any width
by scrolling (domain/attempts.py rebuilds them from the events trail, which keeps each
attempt's error since revision 0022: up to 4,096 characters; one shows at most its first
ATTEMPT_SHOWN). Every untrusted value is sanitised and redacted (domain.sanitize /
domain.redact) before it is shown.

Bounded work on hostile size and shape (issue 15: a 1 MB error froze the UI for minutes,
a 10 MB payload for 65 s). The read (db/tasks.task_detail) fetches the first HEAD (68 KiB)
characters of the error, the payload and the result, with their sizes — never the whole
of them, and never parsed (a payload nested 3,000 deep shows like any other). A thread
makes them inert, redacts and lays them out (domain/capped.py) while the event loop keeps
handling keys; each shows at most its first 64 KiB (cut where no secret is split), then
a line `… n more bytes not shown (of m) — e exports all to a file`.

Keys: `e` exports the whole error, payload and result (read again in full, by a worker),
and every attempt with its error, made inert and redacted unless this session's reveal is
on, to files an operator opens with less or jq: `task-<id>-error.txt`,
`task-<id>-attempts.txt`, `task-<id>-payload.json`, `task-<id>-result.json` (valid JSON,
as stored; `.revealed` before the suffix when the reveal is on), in
$FSAR_EXPORT_DIR or else `~/.local/state/fsar-tui/exports/` (the directory 0700, the
files 0600); the toast names them. `y` copies the task id (OSC 52), `esc` goes back.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from rich.console import Group, RenderableType
from rich.padding import Padding
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
from fsar_tui.domain.attempts import Attempt, attempts, outcome_label
from fsar_tui.domain.capped import HEAD, Capped, capped_json, capped_text, full_json
from fsar_tui.domain.formatting import abbreviate, between, clock_time, duration, money
from fsar_tui.domain.redact import policy
from fsar_tui.domain.sanitize import revealed as sanitize_revealed
from fsar_tui.domain.sanitize import strip_controls
from fsar_tui.screens.base import FsarScreen
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.safe_text import safe_text
from fsar_tui.widgets.status_header import StatusHeader

EXPORT_HINT = "e exports all to a file"
ATTEMPT_SHOWN = 8 * 1024  # characters of one attempt's error shown under it
WORKER_SHOWN = 24  # a worker id's characters in an attempt's line (cut from the middle)
UNRECORDED = "no error recorded: none was written, or the attempt ended before revision 0022 kept errors per attempt"
OUTCOME_STYLE = {"succeeded": "green", "failed": "bold red", "lease lost": "bold red", "failed → retry": "red",
                 "cancelled": "yellow", "requeued": "yellow", "running": "cyan"}  # fmt: skip


@dataclass(frozen=True)
class Shown:
    """The task's large texts as the screen shows them (made in a thread)."""

    error: Capped
    payload: Capped
    result: Capped
    payload_text: Text  # highlighted
    result_text: Text
    attempts: tuple[Attempt, ...] = ()
    attempt_errors: tuple[Capped | None, ...] = ()  # each attempt's error as shown; None: none recorded


def prepare(task: dict[str, Any], reveal: bool) -> Shown:
    """Inert, redacted (unless revealed), capped and highlighted: the slow part, off the event loop."""
    error = capped_text(task["error"], task["error_bytes"], reveal=reveal)
    payload = capped_json(task["payload"], task["payload_bytes"], reveal=reveal)
    result = capped_json(task["result"], task["result_bytes"], reveal=reveal)
    tried = tuple(attempts(task["events"], task))
    errors = tuple(None if a.error is None else capped_text(a.error, reveal=reveal, limit=ATTEMPT_SHOWN) for a in tried)
    return Shown(error, payload, result, _highlighted(payload), _highlighted(result), tried, errors)


def _highlighted(shown: Capped) -> Text:
    if shown.total_bytes == 0:
        return Text("-")
    return Syntax(shown.text, "json", theme="ansi_dark", word_wrap=True).highlight(shown.text)


def export_dir() -> Path:
    return Path(os.environ.get("FSAR_EXPORT_DIR") or platformdirs.user_state_path("fsar-tui") / "exports")


def write_export(task: dict[str, Any], reveal: bool, directory: Path) -> list[Path]:
    """The whole error, every attempt with its error (as the trail kept it), payload and
    result, inert and redacted unless revealed, one file each (those the task has);
    returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = ".revealed" if reveal else ""
    written = []
    tried = attempts(task["events"], task)
    for column, suffix in (("error", ".txt"), ("attempts", ".txt"), ("payload", ".json"), ("result", ".json")):
        value = (attempts_text(tried) if tried else None) if column == "attempts" else task[column]
        if value is None:
            continue
        if column in ("error", "attempts"):
            text = strip_controls(value) if reveal else policy().text(strip_controls(value))
        else:
            text = full_json(value, reveal=reveal)
        path = directory / f"task-{task['id']}-{column}{raw}{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        written.append(path)
    return written


def attempts_text(tried: list[Attempt]) -> str:
    """Every attempt and its whole error (as the trail kept it), for the export; raw."""
    out = []
    for a in tried:
        ended = clock_time(a.ended_at, zone=True) if a.ended_at else "-"
        out.append(f"attempt {a.number} · worker {a.worker_id or '-'} · started {clock_time(a.started_at, zone=True)}"
                   f" · ended {ended} · {outcome_label(a)}")  # fmt: skip
        error = a.error if a.error is not None else UNRECORDED if a.ended_badly else "no error"
        out += ["    " + line for line in error.splitlines() or [""]]
        out.append("")
    return "\n".join(out)


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
            *self.attempt_lines(shown, t.get("events_archived_before")),
            Text(""),
            Text("last error", style="bold"),
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
            ("queued", f"{clock_time(t['queued_at'], zone=True)} (created {clock_time(t['created_at'], zone=True)})"),
            ("started", clock_time(t["started_at"], zone=True) if t["started_at"] else "-"),
            ("finished", clock_time(t["finished_at"], zone=True) if t["finished_at"] else "-"),
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

    def attempt_lines(self, shown: Shown, before: datetime | None = None) -> tuple[RenderableType, ...]:
        """A line per attempt — number, worker, start, run time, how it ended — and its
        whole error (inert, redacted, at most ATTEMPT_SHOWN characters) wrapped under it."""
        tried = shown.attempts
        # Said instead of a short or empty history when retention archived its events.
        archived = (
            f"events before {before.astimezone(UTC):%Y-%m-%d %H:%M} UTC archived by retention" if before else None
        )
        if not tried:
            return (Text(archived or "attempts: none (never started)", style="bold"),)
        workers = [abbreviate(safe_text(a.worker_id or "-").plain, WORKER_SHOWN) for a in tried]
        now = clock.now()
        runs = [duration(between(a.started_at, a.ended_at or now)) for a in tried]
        number_w = max(len(str(a.number)) for a in tried)
        worker_w = max(len(w) for w in [*workers, "worker"])
        run_w = max(len(r) for r in [*runs, "run"])
        out: list[RenderableType] = [
            *([Text(archived, style="yellow")] if archived else []),
            Text(f"attempts ({len(tried)}), each one's error under it", style="bold"),
            Text(f"{'#':>{number_w}}  {'worker':<{worker_w}}  {'started':<14}  {'run':>{run_w}}  outcome", style="dim"),
        ]
        for a, worker, run, error in zip(tried, workers, runs, shown.attempt_errors, strict=True):
            label = outcome_label(a)
            line = Text(
                f"{a.number:>{number_w}}  {worker:<{worker_w}}  {a.started_at:%m-%d %H:%M:%S}  {run:>{run_w}}  "
            )
            line.append(label, style=OUTCOME_STYLE.get(label, ""))
            out.append(line)
            if error is not None:
                body = Text(error.text)
                cap = error.cap_line(f"the last error below or {EXPORT_HINT}")
                if cap:
                    body.append("\n" + cap, style="bold yellow")
                out.append(Padding(body, (0, 0, 0, number_w + 2)))
            elif a.ended_badly:
                out.append(Padding(Text(UNRECORDED, style="dim"), (0, 0, 0, number_w + 2)))
        return tuple(out)

    def transitions(self, t: dict[str, Any]) -> Table:
        attempts = Table(title="transitions", title_justify="left", expand=True)
        for col in ("at", "from", "to", "attempt", "worker"):
            attempts.add_column(col)
        for e in t["events"]:
            attempts.add_row(
                Text(clock_time(e["at"])),
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
