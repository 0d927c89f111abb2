"""What every screen shares: the typed app and session, the header, the reload schedule,
one guarded `read()` / `write()` through the session, and one rule for failures.

The failure rule (why this module exists): a screen's workers run with
`exit_on_error=False` and post their data as messages; whatever a worker raises — the
server gone, a statement timeout, privileges revoked mid-run (`permission denied for
table task_counts`), a table renamed (`relation … does not exist`), a bug — ends in
`on_worker_state_changed`, which shows one line in the header's problem bar, in words,
on that screen only. The app keeps running, the other screens keep working, and the
schedule keeps trying: the next read that succeeds clears the line, so the screen
recovers by itself when the cause goes away. A failed read is retried after the
screen's REFRESH_S (not every second), so a broken query costs the server little.

Reads are workers in groups without "action" in their name: their failure goes to the
header's problem bar until a read of the same group works. Actions (groups named
"…-action") fail loudly instead: a toast saying the action was NOT applied and why.

Subclasses set REFRESH_S, implement `reload()` (a worker started by the schedule) and
call `self.loaded(group)` when a reload's data arrived.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from textual import events
from textual.actions import parse as parse_action
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from fsar_tui.domain.sanitize import safe_str
from fsar_tui.messages import DatabaseReady
from fsar_tui.screens.reload_schedule import ReloadSchedule
from fsar_tui.widgets.status_header import StatusHeader

if TYPE_CHECKING:
    from fsar_tui.app import FsarApp
    from fsar_tui.session import Session

T = TypeVar("T")


class DataLoaded(Message, Generic[T]):
    """A worker's data, shown by `show(data)` on the screen's own message loop: a worker
    never writes into widgets after an await, and a screen closed meanwhile shows nothing."""

    def __init__(self, show: Callable[[T], object], data: T) -> None:
        super().__init__()
        self.show = show
        self.data = data


class FsarScreen(Screen[None]):
    """A screen of the app (1–5 and the task detail)."""

    AUTO_FOCUS = "KeyedTable"
    REFRESH_S: float = 5.0
    # Re-read at most this often while nobody presses a key (screens/reload_schedule.py);
    # None: the screen's schedule does not slow down when idle.
    IDLE_REFRESH_S: float | None = None

    def __init__(self) -> None:
        super().__init__()
        self.schedule = ReloadSchedule(every=self.REFRESH_S, idle_every=self.IDLE_REFRESH_S)
        self.problems: dict[str, str] = {}  # worker group -> what failed, in words

    # -- typed access -------------------------------------------------------------------

    @property
    def fsar(self) -> FsarApp:
        return cast("FsarApp", self.app)

    @property
    def session(self) -> Session:
        return self.fsar.session

    def can(self, power: str) -> bool:
        return self.session.can(power)

    # -- lifecycle ----------------------------------------------------------------------

    def on_mount(self) -> None:
        for header in self.query(StatusHeader):
            self.fsar.sync_header(header)
        self.tick_timer = self.set_interval(1.0, self.tick)
        self.tick()

    def tick(self) -> None:
        """Called every second: start `reload()` when it is due (subclasses add to this)."""
        self.schedule.tick(self.session.ready, self.reload)

    def reload(self) -> Worker[Any]:
        """Start the screen's main read (a worker)."""
        raise NotImplementedError

    def request(self) -> None:
        """Re-read soon (live events): at the next tick, unless a read is in flight."""
        self.schedule.mark()
        self.tick()

    def reload_now(self) -> None:
        """Re-read at once (a new filter, window, sort or mode): a read in flight for the old
        one is cancelled (the reload worker is exclusive)."""
        if self.session.ready:
            self.schedule.marked = False
            self.schedule.worker = self.reload()
        else:
            self.schedule.mark()

    def on_database_ready(self, message: DatabaseReady) -> None:
        self.request()

    # -- reads and writes ------------------------------------------------------------------

    async def read(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """fn(conn, *args) from db/ through the session; failures propagate to the worker."""
        return await self.session.read(fn, *args, **kwargs)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.session.write(fn, *args, **kwargs)

    async def awrite(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """An async db/ change (fn(conn, *args)) on the primary, read back from it until a
        read replica has it (session.awrite)."""
        return await self.session.awrite(fn, *args, **kwargs)

    def deliver(self, show: Callable[[T], object], data: T) -> None:
        """From a worker: hand `data` to `show` on this screen's message loop."""
        self.post_message(DataLoaded(show, data))

    async def on_data_loaded(self, message: DataLoaded[Any]) -> None:
        message.stop()
        name = f"show:{getattr(message.show, '__name__', 'data')}"
        try:
            shown = message.show(message.data)
            if inspect.isawaitable(shown):  # e.g. a Markdown widget's update
                await shown
        except Exception as exc:  # data this screen cannot show must not end the app
            self.problems[name] = f"could not show the data ({self.session.describe(exc)})"
            self.show_problems()
        else:
            if self.problems.pop(name, None) is not None:
                self.show_problems()

    def loaded(self, group: str | None = None) -> None:
        """A reload's data arrived: the schedule waits REFRESH_S again, and the problem the
        group (default: every group) had is gone."""
        self.schedule.done()
        self.clear_problem(group)

    def clear_problem(self, group: str | None = None) -> None:
        """A read of `group` (default: every group) worked again."""
        if group is None:
            self.problems.clear()
        else:
            self.problems.pop(group, None)
        self.show_problems()
        self.fsar.update_headers()

    # -- failures -------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state != WorkerState.ERROR or worker.node is not self:
            return
        error = worker.error
        assert error is not None
        self.session.note(error)
        what = self.session.describe(error)
        if "action" in worker.group:
            self.report_action_failure("action", error)
            return
        if worker is self.schedule.worker:
            self.schedule.failed()
        self.problems[worker.group] = what
        self.show_problems()
        self.fsar.update_headers()

    def write_allowed(self, power: str = "act") -> bool | None:
        """For check_action of a key that changes the database: False (the key is removed)
        when the role or --read-only forbids it, None (the key shows disabled) while the
        database is not answering — the header says "actions off" — else True. A press of
        such a key says why nothing happens (`on_key`)."""
        if not self.can(power):
            return False
        return True if self.session.reachable else None

    def on_key(self, event: events.Key) -> None:
        """A key bound on this screen whose action is off does nothing: say why, in one
        line. The key bar dims it, but at 80 columns the key bar may not reach it."""
        self.schedule.touched()  # someone is at the panel: it is not idle
        if isinstance(self.focused, Input) or self.app.screen is not self:
            return
        active = self.active_bindings.get(event.key)
        if active is not None and active.enabled:
            return  # the key does something (here, or on the focused widget)
        for node, bindings in self._modal_binding_chain:
            for binding in bindings.key_to_bindings.get(event.key, ()) if node is self else ():
                target, name, params = parse_action(binding.action)
                if not target and not self.check_action(name, params):
                    self.notify(f"{binding.description or name}: {self.writes_off_reason()}", severity="warning")
                    return

    def writes_off_reason(self) -> str:
        if not self.session.reachable:
            return "not sent: actions are off while the database is not answering (see the header)"
        if self.session.read_only:
            return "not available: this session is read-only (--read-only, or a role that may only read)"
        return "not available: your database role may not do this"

    def report_action_failure(self, action: str, error: BaseException) -> None:
        """An operator's action failed: tell the operator at once — "NOT applied" only when
        that is known. A connection lost after the change was sent may have lost the
        COMMIT's reply, not the COMMIT: then the outcome is said to be unknown, and the
        screen reads again so what is there shows."""
        what = safe_str(self.session.describe(error))
        if self.session.outcome_unknown(error):
            self.notify(
                f"{action}: outcome UNKNOWN: {what} — it may or may not have applied; "
                "the operator log (screen 4) shows it if it did",
                title=f"{action} interrupted",
                severity="error",
                timeout=30,
            )
            self.reload_now()
        else:
            self.notify(f"{action} NOT applied: {what}", title=f"{action} failed", severity="error", timeout=15)

    def show_problems(self) -> None:
        shown = ""
        if self.problems:
            first = next(iter(self.problems.values()))
            more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            shown = safe_str(f"{first}{more} — retrying every {self.REFRESH_S:g} s")
        for header in self.query(StatusHeader):
            header.problem = shown
