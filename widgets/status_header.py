"""The one-line header: database, server, connection state, live source, alerts.

Every value is shown literally (a `Text`, never markup) and the DSN arrives masked.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class StatusHeader(Widget):
    DEFAULT_CSS = """
    StatusHeader { height: 1; background: $primary-background; color: $text; padding: 0 1; }
    StatusHeader.-reconnecting { background: $error; }
    """

    database: reactive[str] = reactive("")
    server: reactive[str] = reactive("")
    state: reactive[str] = reactive("connecting")
    live: reactive[str] = reactive("-")
    alerts: reactive[tuple] = reactive((0, 0))  # open drift alerts: (firing, acked)
    read_only: reactive[bool] = reactive(False)
    since: reactive[float | None] = reactive(None)  # when the data shown was last fresh

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def watch_state(self, state: str) -> None:
        self.set_class(state == "reconnecting", "-reconnecting")

    def render(self) -> Text:
        # Most urgent first: on a narrow terminal the DSN is what gets cut, not the state.
        state = self.state
        if state == "reconnecting" and self.since is not None:
            state = f"RECONNECTING · data {int(time.monotonic() - self.since)}s old"
        parts = ["READ-ONLY"] if self.read_only else []
        firing, acked = self.alerts
        alerts = f"ALERTS: {firing} firing" if firing else "alerts: 0 firing"
        if acked:
            alerts += f", {acked} acked"
        parts += [state, f"live: {self.live}", alerts, self.database]
        if self.server:
            parts.append(f"PG {self.server}")
        return Text(" · ".join(parts), no_wrap=True, overflow="ellipsis")
