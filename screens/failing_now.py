"""What is failing now (`f` on screen 1): failed attempts in the last 15 min / 1 h / 24 h
per task type × model, and the top error messages of a window grouped by what they say.

A failed attempt is one the events trail ended badly — back to the queue for another
attempt, or failed (db/attempts.py reads it through the partial index of failing events,
never execution_tasks as a whole). Errors are grouped on their headline with numbers,
ids and quoted values stripped (domain/error_groups.py), after being made inert and
redacted (a secret is hidden before its digits go): each group's count, how long ago
its newest failure was and that task's id. The groups are made from the newest 5,000
failures of the window at most, and the line above them says so when the window holds
more.

Keys: `w` cycles the groups' window (15 min, 1 h, 24 h); `enter` on a group closes this
view and filters the queue on the group's longest literal words (`error~"…"`: tasks
whose last error holds them — the queue filters on the task's error, not on each
attempt's); `o` opens the group's newest task; `esc` goes back. Refreshed every 10 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.worker import Worker

from fsar_tui import clock
from fsar_tui.db import attempts as failures_db
from fsar_tui.domain.error_groups import ErrorGroup, group_errors
from fsar_tui.domain.formatting import abbreviate, between, compact, duration
from fsar_tui.domain.sanitize import safe_str
from fsar_tui.domain.task_filter import TaskFilter
from fsar_tui.screens.base import FsarScreen
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.keyed_table import KeyedTable
from fsar_tui.widgets.safe_text import safe_text
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import TextPanel

WINDOW_NAMES = {900: "15 min", 3600: "1 h", 86400: "24 h"}
TOP_GROUPS = 50
NUMBER = 7  # width of a count column
GROUP_COLUMNS = ("count", "newest", "task", "error (numbers, ids and quoted values stripped)")

Shown = tuple[failures_db.FailingNow, list[ErrorGroup]]


class FailingNowScreen(FsarScreen):
    HELP_TITLE = "Failing now"
    REFRESH_S = 10.0
    DEFAULT_CSS = """
    FailingNowScreen #summary, FailingNowScreen #groups-title { height: 1; padding: 0 1; background: $panel; }
    FailingNowScreen #counts { height: auto; max-height: 40%; padding: 0 1; }
    FailingNowScreen #groups { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="failing.back"),
        Binding("enter", "filter_queue", "Filter queue", id="failing.filter"),
        Binding("w", "cycle_window", "Window", id="failing.window"),
        Binding("o", "open_task", "Newest task", id="failing.task"),
    ]

    def __init__(self, apply_filter: Callable[[str], Any], window_s: int = 3600) -> None:
        super().__init__()
        self.apply_filter = apply_filter  # the queue's: called with the filter text on `enter`
        self.window_s = window_s
        self.data: failures_db.FailingNow | None = None
        self.groups: dict[str, ErrorGroup] = {}

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield TextPanel(Text("failing now: loading…"), id="summary")
        yield TextPanel(Text(""), id="counts")
        yield TextPanel(Text(""), id="groups-title")
        yield KeyedTable(GROUP_COLUMNS, id="groups")
        yield KeyBar()

    # -- data -------------------------------------------------------------------------

    def reload(self) -> Worker[None]:
        return self.load()

    @work(exclusive=True, group="failing", exit_on_error=False)
    async def load(self) -> None:
        data = await self.read(failures_db.failing_now, self.window_s)
        # Redacting and normalising up to 5,000 messages: in a thread (it gets this
        # context: the redaction policy, the reveal), the event loop keeps handling keys.
        groups = await asyncio.to_thread(group_errors, data.failures, safe_str, top=TOP_GROUPS)
        self.deliver(self.show, (data, groups))

    def show(self, shown: Shown) -> None:
        self.loaded("failing")
        self.data, groups = shown
        self.groups = {g.key: g for g in groups}
        self.render_counts()
        now = clock.now()
        self.query_one("#groups", KeyedTable).replace_rows(
            [
                (
                    g.key,
                    [
                        Text(f"{g.count:,}"),
                        Text(f"{duration(between(g.newest_at, now))} ago"),
                        Text(str(g.newest_task_id)),
                        Text(g.key),  # made of safe_str's output: inert and redacted already
                    ],
                )
                for g in groups
            ]
        )

    def on_resize(self) -> None:
        if self.data is not None:
            self.render_counts()

    # -- rendering ----------------------------------------------------------------------

    def render_counts(self) -> None:
        data = self.data
        if data is None:
            return
        totals = " · ".join(f"{data.total(w):,} in {name}" for w, name in WINDOW_NAMES.items())
        final = sum(c.final_24h for c in data.counts)
        self.query_one("#summary", TextPanel).show(
            Text(f"failed attempts: {totals} ({final:,} of them final)", style="bold")
        )
        names = [safe_str(f"{c.task_type} / {c.ai_model or 'no model'}") for c in data.counts]
        room = max(12, self.size.width - 2 - 4 * NUMBER)
        name_width = min(room, max([len("type / model"), *(len(n) for n in names)]) + 2)
        head = Text("type / model".ljust(name_width), style="bold")
        for label in ("15m", "1h", "24h", "final"):
            head.append(label.rjust(NUMBER), style="bold")
        lines = [] if data.counts else [Text("no failed attempt in the last 24 h")]
        for name, c in zip(names, data.counts, strict=True):
            line = Text(abbreviate(name, name_width - 2).ljust(name_width))
            for i, n in enumerate((c.last_15m, c.last_1h, c.last_24h, c.final_24h)):
                line.append(compact(n).rjust(NUMBER), style="bold red" if i == 0 and n else "")
            lines.append(line)
        # As tall as its rows, up to 40 % of the screen (the groups take the rest); a cut
        # says how many pairs are not shown (most failing now come first).
        self.query_one("#counts", TextPanel).show_rows(head, lines, what="type / model pairs")
        total = data.total(data.window_s)
        grouped = f"{total:,} failures" if data.read >= total else f"the newest {data.read:,} of {total:,} failures"
        self.query_one("#groups-title", TextPanel).show(
            Text(
                f"top errors, last {WINDOW_NAMES[data.window_s]} · {len(self.groups)} groups of {grouped}", style="bold"
            )
        )

    # -- keys ---------------------------------------------------------------------------

    def current(self) -> ErrorGroup | None:
        key = self.query_one("#groups", KeyedTable).current_key
        return None if key is None else self.groups.get(str(key))

    @on(KeyedTable.RowSelected)
    def row_selected(self, event: KeyedTable.RowSelected) -> None:
        self.action_filter_queue()

    def action_filter_queue(self) -> None:
        group = self.current()
        if group is None:
            return
        if group.fragment is None:
            self.notify(
                "this group has no words the queue's error~ filter can match (it is all numbers and ids)",
                severity="warning",
            )
            return
        text = TaskFilter(error_contains=group.fragment).to_query()
        self.app.pop_screen()
        self.apply_filter(text)

    def action_cycle_window(self) -> None:
        windows = list(WINDOW_NAMES)
        self.window_s = windows[(windows.index(self.window_s) + 1) % len(windows)]
        self.query_one("#groups-title", TextPanel).show(
            Text(f"top errors, last {WINDOW_NAMES[self.window_s]}: loading…", style="bold")
        )
        self.reload_now()

    def action_open_task(self) -> None:
        group = self.current()
        if group is not None:
            from fsar_tui.screens.task_detail import TaskDetailScreen

            self.app.push_screen(TaskDetailScreen(group.newest_task_id))

    def show_problems(self) -> None:
        super().show_problems()
        if self.problems and self.data is None:
            self.query_one("#summary", TextPanel).show(safe_text(f"failing now: {next(iter(self.problems.values()))}"))
