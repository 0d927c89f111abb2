"""Screen 1, the live task queue.

Composes: counts per status × type (per model with `m`), queue-depth and throughput
sparklines, running tasks with ticking elapsed time, workers with presence, and the
task table — keyset-paged from the server (`db.tasks.page`), filtered server-side by
the filter language, sortable, with the cursor pinned to its task across refreshes.

Refresh policy: counts and running tasks follow every live batch (the bus delivers at
most 10 a second; both queries read small tables, so the panel lags the database by a
batch window, not a timer tick). The task page, workers and sparklines are re-queried
by a 1 s timer when a batch marked the screen (or every 5 s regardless), so a
burst of events costs a handful of queries, not thousands. An idle screen (no key
pressed for 30 s: screens/reload_schedule.py) moves its counts by the batch's changes
without a query (domain/count_deltas.py; a batch that cannot be applied exactly, or a
resync, reads them) and re-reads the rest every IDLE_REFRESH_S (30 s), so a panel left open
costs the database well under a query a second, however busy the fleet (issue 18).
All I/O runs in exclusive workers that post their data to the screen (screens/base.py);
on a database error the screen keeps its data, the header says RECONNECTING with the
data's age (or, for a refusal such as revoked privileges, what fails, in words), and
the schedule tries again until it works.

Actions (r retry, c cancel, e requeue) apply to the marked rows (space), else to the
current row; `a` arms the whole current filter for the next action. Confirmation is
y/n-sized for one task and "type the count" for several, always with a reason
(screens/queue_actions.py). The panels' lines and the status line are drawn by
screens/queue_rows.py and screens/queue_status.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.widgets import Input, Sparkline, Static
from textual.worker import Worker

from fsar_tui import clock
from fsar_tui.db import tasks as task_queries
from fsar_tui.domain.count_deltas import Key, apply_changes
from fsar_tui.domain.task_filter import FilterError, TaskFilter, parse_filter
from fsar_tui.messages import ApplyFilter, CommandEntered, LiveBatch
from fsar_tui.screens.base import FsarScreen
from fsar_tui.screens.command_line import CommandField
from fsar_tui.screens.failing_now import FailingNowScreen
from fsar_tui.screens.queue_actions import BULK_CAP, act
from fsar_tui.screens.queue_rows import COLUMNS, columns_for, running_rows, task_cells, workers_rows
from fsar_tui.screens.queue_status import StatusLine, filter_status_line
from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.keyed_table import KeyedTable
from fsar_tui.widgets.sized_panel import SizedPanel
from fsar_tui.widgets.status_header import StatusHeader
from fsar_tui.widgets.text_panel import CountsPanel

PAGE = 100
MAX_LOADED = 2000
ACTIVITY_MINUTES = 30
SORTS = list(task_queries.SORTABLE)
STATUS_ORDER = ("queued", "running", "succeeded", "failed", "cancelled")
STACK_BELOW = 120  # columns: narrower, the running and workers panels stack (see compose)
STATUS_SHORT = {"queued": "queue", "running": "run", "succeeded": "ok", "failed": "fail", "cancelled": "canc"}


CountsData = tuple[list[task_queries.StatusCount], list[task_queries.RunningTask]]


class QueueScreen(FsarScreen):
    IDLE_REFRESH_S = 30.0
    DEFAULT_CSS = """
    QueueScreen #top { height: 1fr; min-height: 8; max-height: 16; }
    QueueScreen #top TextPanel { width: 1fr; height: 100%; padding: 0 1; border-right: solid $panel; }
    QueueScreen #top > #counts { width: 3fr; }
    QueueScreen #fleet { width: 2fr; height: 100%; layout: horizontal; }
    QueueScreen.-narrow #fleet { layout: vertical; }
    QueueScreen.-narrow #fleet > TextPanel { width: 100%; height: 1fr; }
    QueueScreen #sparks { height: 1; }
    QueueScreen #sparks > Static { width: 12; }
    QueueScreen #sparks > Sparkline { width: 1fr; }
    QueueScreen #filter { height: 1; border: none; padding: 0 1; }
    QueueScreen #filter-status { height: 1; padding: 0 1; background: $panel; }
    QueueScreen TextPanel#filter-status { height: 1; }
    QueueScreen #tasks { height: 3fr; }
    """
    BINDINGS = [
        # Priority: handled as the key arrives, so the keys behind it in one burst are
        # already routed to the filter bar (non-priority bindings run after the app has
        # forwarded the rest of the burst to the table).
        Binding("slash", "open_filter", "Filter", id="queue.filter", priority=True),
        # Same reason: `:queue status=failed⏎` in one burst is typed into the bar.
        Binding("colon", "open_command", "Command", id="queue.command", priority=True, show=False),
        Binding("f", "failing_now", "Failing now", id="queue.failing"),
        Binding("escape", "escape", "Back/clear", id="queue.escape", show=False),
        Binding("enter", "open_task", "Detail", id="queue.detail"),
        Binding("space", "mark", "Mark", id="queue.mark"),
        Binding("a", "arm_filter", "Act on filter", id="queue.all"),
        Binding("r", "act('retry')", "Retry", id="queue.retry"),
        Binding("c", "act('cancel')", "Cancel", id="queue.cancel"),
        Binding("e", "act('requeue')", "Requeue", id="queue.requeue"),
        Binding("s", "cycle_sort", "Sort", id="queue.sort"),
        Binding("S", "flip_sort", "Reverse", id="queue.reverse", show=False),
        Binding("m", "toggle_models", "By model", id="queue.models", show=False),
        Binding("p", "pause", "Pause live", id="queue.pause"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter = TaskFilter()
        self.filter_text = ""
        self.from_top = False  # the next rows shown start at the top (a new filter or sort)
        self.fleet: task_queries.FleetHealth | None = None
        self.sort = "id"
        self.descending = True
        self.rows: list[task_queries.TaskRow] = []
        self.matching: int | None = None
        self.by_model = False
        self.paused = False
        self.armed_filter = False
        self.running: list[task_queries.RunningTask] = []
        self.fleet_workers: list[task_queries.WorkerSeen] | None = None  # None: not read yet
        self.depth_history: list[float] = []
        self.activity: dict = {}  # minute -> tasks finished, for the throughput sparkline
        self.loading_more = False
        self.counts_worker: Worker[None] | None = None
        self.counts_pending = False
        self.counts: dict[Key, int] | None = None  # as last shown (None: not read yet)
        # Live batches seen, and how many when the snapshot being read was started: counts
        # read across a batch the idle panel moved without a query may predate it.
        self.batches_seen = 0
        self.snapshot_from = 0
        self.left_unseen: object = None  # the operator's row that left while another screen was shown

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        with Horizontal(id="top"):
            yield CountsPanel([(status, STATUS_SHORT[status]) for status in STATUS_ORDER], id="counts")
            # Side by side when wide; stacked below STACK_BELOW columns, so each line
            # holds a task's id and worker and a worker's name (not 13 columns each).
            with Container(id="fleet"):
                yield SizedPanel(Text("running: loading…"), id="running")
                yield SizedPanel(Text("workers: loading…"), id="workers")
        with Horizontal(id="sparks"):
            yield Static(Text(" queue depth"))
            yield Sparkline([0], id="depth")
            yield Static(Text(" done/min"))
            yield Sparkline([0], id="throughput")
        # The filter bar is also the `:` command line (Tab completes, up/down recall).
        yield CommandField(
            prefix=":",
            # Unmistakably a hint, not a filter in force, even without colour (NO_COLOR).
            placeholder="(no filter) press / to filter, e.g. status:failed since:1h · : for a command",
            id="filter",
        )
        yield SizedPanel(Text(""), id="filter-status")
        yield KeyedTable(columns_for(self.app.size.width), id="tasks")
        yield KeyBar()

    def on_mount(self) -> None:
        # No super().on_mount(): Textual calls FsarScreen's handler as well (each class's
        # on_mount in the MRO), and calling it here too started a second 1 s tick timer.
        self.set_class(self.app.size.width < STACK_BELOW, "-narrow")
        self.render_filter_status()

    # -- data -------------------------------------------------------------------------

    def tick(self) -> None:
        self.render_running()  # elapsed times and report ages tick without a query
        self.render_workers()
        if not self.paused:
            super().tick()

    def on_live_batch(self, message: LiveBatch) -> None:
        self.schedule.mark()
        self.batches_seen += 1
        batch = message.batch
        if self.schedule.idle() and self.counts is not None and not batch.resync and not self.paused:
            moved = apply_changes(self.counts, batch.tasks, by_model=self.by_model)
            if moved is not None:
                self.render_counts([task_queries.StatusCount(*key, n) for key, n in sorted(moved.items())])
                return
        self.request_counts()

    def request_counts(self) -> None:
        if self.paused or not self.session.ready:
            return
        self.counts_pending = True
        if self.counts_worker is None or not self.counts_worker.is_running:
            self.counts_worker = self.refresh_counts()

    @work(group="queue-counts", exit_on_error=False)
    async def refresh_counts(self) -> None:
        # Batches that arrive while a query runs set counts_pending: one more round
        # picks them all up, so no change waits for the next timer tick.
        while self.counts_pending:
            self.counts_pending = False
            seen = self.batches_seen
            self.deliver(self.show_counts, await self.read(task_queries.counts_and_running, self.by_model))
            if self.batches_seen != seen:  # moved meanwhile without a query: read again
                self.counts_pending = True

    def show_counts(self, data: CountsData) -> None:
        self.clear_problem("queue-counts")
        counts, self.running = data
        if self.fleet is not None:  # the running panel's total, as exact as the list beside it
            running = sum(c.n for c in counts if c.status == "running")
            self.fleet = dataclasses.replace(self.fleet, running=running)
        self.render_counts(counts)
        self.render_running()

    def reload(self) -> Worker[None]:
        return self.refresh_data()

    @work(exclusive=True, group="queue-refresh", exit_on_error=False)
    async def refresh_data(self) -> None:
        limit = min(MAX_LOADED, max(PAGE, len(self.rows)))
        request = task_queries.PageRequest(self.filter, self.sort, self.descending, None, limit)
        # The full 30 minutes once, then only the last two (the current minute and the one
        # just closed): at 1,000 events/s, 30 minutes is 1.8 M events.
        minutes = 2 if self.activity else ACTIVITY_MINUTES
        self.snapshot_from = self.batches_seen
        snapshot = await self.read(task_queries.queue_snapshot, request, by_model=self.by_model, minutes=minutes)
        self.deliver(self.show_data, snapshot)

    def show_data(self, data: task_queries.QueueSnapshot) -> None:
        self.loaded("queue-refresh")
        # A refresh reloads every row a failed next page would have added: its problem is gone.
        self.clear_problem("queue-more")
        self.rows = data.rows
        table = self.query_one(KeyedTable)
        held = table.current_key
        table.replace_rows([(r.id, self.cells(r, table.column_names[1:])) for r in data.rows])
        if self.from_top:
            self.from_top = False
            table.move_cursor(row=0)
        elif held is not None and table.current_key != held:
            self.row_left(held)
        self.matching, self.running, self.fleet = data.matching, data.running, data.fleet
        counts, recent = data.counts, data.recent
        self.render_counts(counts)
        if self.batches_seen != self.snapshot_from:
            # A batch came while the snapshot was read: its counts may predate it (an idle
            # panel moved the counts by that batch already), so read them again.
            self.request_counts()
        self.render_running()
        self.fleet_workers = data.workers
        self.render_workers()
        queued = sum(row.n for row in counts if row.status == "queued")
        self.depth_history = (self.depth_history + [queued])[-120:]
        # One point draws as a full bar, two equal ones as a floor: a steady depth must look the
        # same whether one refresh or two have happened (the snapshots caught it drawn both ways).
        self.query_one("#depth", Sparkline).data = self.depth_history * (2 if len(self.depth_history) == 1 else 1)
        self.activity.update({a.minute: a.finished for a in recent})
        for minute in sorted(self.activity)[:-ACTIVITY_MINUTES]:
            del self.activity[minute]
        self.query_one("#throughput", Sparkline).data = [self.activity[m] for m in sorted(self.activity)]
        self.render_filter_status()

    def row_left(self, held: object) -> None:
        """The live feed took the operator's row out of this view: say so, never silently —
        on this screen, where the cursor is: while another screen is shown, once the
        operator is back (the toast would otherwise pop up over screens 2–5)."""
        if self.is_current:
            self.notify(f"task {held} left this view (it changed); the cursor moved to its neighbour", timeout=5)
        elif self.left_unseen is None:
            self.left_unseen = held

    def on_screen_resume(self) -> None:
        self.counts = None  # batches went to the other screen meanwhile: read before moving them
        if self.left_unseen is not None:
            held, self.left_unseen = self.left_unseen, None
            self.notify(f"task {held} left this view while you were away; the cursor moved to its neighbour", timeout=8)

    @work(exclusive=True, group="queue-more", exit_on_error=False)
    async def load_more(self) -> None:
        if self.loading_more or not self.rows or len(self.rows) >= MAX_LOADED:
            return
        self.loading_more = True
        request = task_queries.PageRequest(
            self.filter, self.sort, self.descending, task_queries.sort_key(self.rows[-1], self.sort), PAGE
        )
        try:
            more = await self.read(task_queries.page, request)
        finally:
            self.loading_more = False
        self.deliver(self.show_more, more)

    def show_more(self, more: list[task_queries.TaskRow]) -> None:
        self.clear_problem("queue-more")
        self.rows += more
        table = self.query_one(KeyedTable)
        table.append_rows([(r.id, self.cells(r, table.column_names[1:])) for r in more])

    # -- rendering ----------------------------------------------------------------------

    @staticmethod
    def cells(r: task_queries.TaskRow, columns: Sequence[str] = COLUMNS) -> list[Text]:
        return task_cells(r, columns, clock.now())

    def on_resize(self) -> None:
        self.set_class(self.size.width < STACK_BELOW, "-narrow")
        table = self.query_one(KeyedTable)
        columns = columns_for(self.size.width)
        if tuple(table.column_names[1:]) != columns:
            table.set_columns(columns)
            table.replace_rows([(r.id, self.cells(r, columns)) for r in self.rows])

    def render_counts(self, counts: list[task_queries.StatusCount]) -> None:
        self.counts = {(row.status, row.task_type, row.ai_model): row.n for row in counts}
        grid: dict[str, dict[str, int]] = {}
        for row in counts:
            key = f"{row.task_type} / {row.ai_model}" if self.by_model else row.task_type
            grid.setdefault(key, {})[row.status] = row.n
        self.query_one("#counts", CountsPanel).show_counts("type" + (" / model" if self.by_model else ""), grid)

    def render_running(self) -> None:
        running, fleet, now = self.running, self.fleet, clock.now()
        total = fleet.running if fleet else None  # the list read is capped
        self.query_one("#running", SizedPanel).draw(lambda width: (*running_rows(running, fleet, now, width), total))

    def render_workers(self) -> None:
        workers, presence, fleet, now = self.fleet_workers, dict(self.fsar.presence), self.fleet, clock.now()
        if workers is not None:
            self.query_one("#workers", SizedPanel).draw(
                lambda w: (*workers_rows(workers, presence, fleet, now, w), None)
            )

    def render_filter_status(self) -> None:
        status = StatusLine(
            filter_text=self.filter_text,
            matching=self.matching,
            cap=BULK_CAP,
            sort=self.sort,
            descending=self.descending,
            loaded=len(self.rows),
            marked=len(self.query_one(KeyedTable).marked),
            armed=self.armed_filter,
            paused=self.paused,
        )
        self.query_one("#filter-status", SizedPanel).draw(lambda width: ([filter_status_line(status, width)], [], None))

    # -- filter ---------------------------------------------------------------------------

    def action_open_filter(self) -> None:
        # The bar is always laid out (k9s style) so focus moves at once and keys typed
        # right after `/` land in it, even when they arrive in the same burst.
        field = self.query_one("#filter", Input)
        focused = self.focused
        if isinstance(focused, Input):
            focused.insert_text_at_cursor("/")  # a '/' typed inside a value
            return
        if self.app.screen is not self:
            return
        field.select_on_focus = True  # typing replaces the current filter; arrows edit it
        field.value = self.filter_text
        # set_focus is immediate; Widget.focus() is deferred behind keys already queued,
        # and over SSH "/status:failed⏎" often arrives as one burst.
        self.set_focus(field)

    def action_open_command(self) -> None:
        """`:` on this screen uses the bar itself as the command line (no modal to wait for)."""
        if isinstance(self.focused, Input):
            self.focused.insert_text_at_cursor(":")
            return
        field = self.query_one("#filter", Input)
        field.select_on_focus = False  # keep the ':' (selected, the next key would replace it)
        field.value = ":"
        field.cursor_position = 1
        self.set_focus(field)

    @on(Input.Submitted, "#filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        if event.value.startswith(":"):
            event.input.value = self.filter_text
            self.set_focus(self.query_one(KeyedTable))
            self.post_message(CommandEntered(event.value))
            return
        self.apply_filter(event.value)

    def on_apply_filter(self, message: ApplyFilter) -> None:
        self.apply_filter(message.text)

    def apply_filter(self, text: str) -> None:
        try:
            parsed = parse_filter(text)
        except FilterError as exc:
            self.notify(str(exc), title="filter not applied", severity="error")
            return
        self.filter, self.filter_text = parsed, text.strip()
        # The bar shows exactly the filter in force, however it was set (typed, drill-down
        # from profiles, `:queue …`, esc), and the new view opens at the top of its sort:
        # a cursor left low on the page would hide the newest matches above the viewport.
        self.query_one("#filter", Input).value = self.filter_text
        self.from_top = True
        self.rows, self.matching = [], None
        self.armed_filter = False
        self.query_one(KeyedTable).clear_marks()
        self.set_focus(self.query_one(KeyedTable))
        self.render_filter_status()
        self.reload_now()

    def action_escape(self) -> None:
        field = self.query_one("#filter", Input)
        table = self.query_one(KeyedTable)
        if field.has_focus:
            field.value = self.filter_text
            self.set_focus(table)
        elif self.armed_filter or table.marked:
            self.armed_filter = False
            table.clear_marks()
            self.render_filter_status()
        elif self.filter_text:
            self.apply_filter("")

    # -- navigation (j/k/g/G are the table's own keys) -----------------------------------

    @on(KeyedTable.RowHighlighted)
    def near_end(self, event: KeyedTable.RowHighlighted) -> None:
        if event.cursor_row >= len(self.rows) - 5:
            self.load_more()

    @on(KeyedTable.RowSelected)
    def row_selected(self, event: KeyedTable.RowSelected) -> None:
        self.action_open_task()

    def action_open_task(self) -> None:
        key = self.query_one(KeyedTable).current_key
        if key is not None:
            from fsar_tui.screens.task_detail import TaskDetailScreen

            self.app.push_screen(TaskDetailScreen(int(str(key))))

    def action_failing_now(self) -> None:
        self.app.push_screen(FailingNowScreen(self.apply_filter))

    def action_mark(self) -> None:
        table = self.query_one(KeyedTable)
        table.toggle_mark()
        table.action_cursor_down()
        self.render_filter_status()

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.rows, self.from_top = [], True
        self.reload_now()

    def action_flip_sort(self) -> None:
        self.descending = not self.descending
        self.rows, self.from_top = [], True
        self.reload_now()

    def action_toggle_models(self) -> None:
        self.by_model = not self.by_model
        self.counts = None  # grouped the other way: read, not moved
        self.reload_now()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.render_filter_status()

    # -- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("act", "arm_filter"):
            return self.write_allowed()  # removed for read-only sessions and viewers, off while unreachable
        return True

    def action_arm_filter(self) -> None:
        self.armed_filter = not self.armed_filter
        self.render_filter_status()

    def action_act(self, action: str) -> None:
        self.prepare_action(action)

    @work(exclusive=True, group="queue-action", exit_on_error=False)
    async def prepare_action(self, action: str) -> None:
        await act(self, action)
