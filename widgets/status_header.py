"""The header: database, server, connection state, live source, alerts, role — and,
while anything stops execution (a failing hard gate, a blocking FSAR proposal: the
execution_blocks view), one red line naming it, its scope and the key that leads to it
(the banner every screen shows until the block ends), and while a screen's reads fail,
a line saying what fails, in words (`problem`, set by the screen).

Every value is shown literally (a `Text`, never markup) and the DSN arrives masked.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class StatusHeader(Widget):
    DEFAULT_CSS = """
    StatusHeader { height: 1; background: $primary-background; color: $text; padding: 0 1;
                   text-wrap: nowrap; text-overflow: ellipsis; }
    StatusHeader.-reconnecting { background: $error; }
    StatusHeader.-lines-2 { height: 2; }
    StatusHeader.-lines-3 { height: 3; }
    """

    database: reactive[str] = reactive("")
    server: reactive[str] = reactive("")
    state: reactive[str] = reactive("connecting")
    live: reactive[str] = reactive("-")
    alerts: reactive[tuple] = reactive((0, 0))  # open drift alerts: (firing, acked)
    read_only: reactive[bool] = reactive(False)
    since: reactive[float | None] = reactive(None)  # when the data shown was last fresh
    role: reactive[str] = reactive("")  # the database role's powers: viewer, operator, admin, superuser
    revealed: reactive[bool] = reactive(False)
    blocks: reactive[tuple] = reactive(())  # (proposal id, task type, severity) blocking execution
    gate_blocks: reactive[tuple] = reactive(())  # (gate name, scope) of failing hard gates blocking execution
    stuck: reactive[int] = reactive(0)  # running tasks whose lease expired: no worker alive?
    problem: reactive[str] = reactive("")  # what this screen's reads meet, in one line; "" when they work

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def watch_state(self, state: str) -> None:
        self.set_class(state == "reconnecting", "-reconnecting")

    def watch_blocks(self, blocks: tuple) -> None:
        self.fit_lines()

    def watch_gate_blocks(self, gate_blocks: tuple) -> None:
        self.fit_lines()

    def watch_problem(self, problem: str) -> None:
        self.fit_lines()

    def banners(self) -> list[str]:
        """One rule for everything that stops execution (the execution_blocks view): what
        blocks, its scope and the key that leads to it — failing hard gates first (the
        system's own checks), then FSAR proposals."""
        gates = [f"hard gate {gate} failed — stops {scope} tasks · 4 Audit to fix or override"
                 for gate, scope in self.gate_blocks]  # fmt: skip
        proposals = [f"FSAR proposal {pid} (severity {severity}) stops {task_type or 'all'} tasks · 5 Proposals to "
                     "review or lift" for pid, task_type, severity in self.blocks]  # fmt: skip
        return gates + proposals

    def fit_lines(self) -> None:
        lines = 1 + bool(self.blocks or self.gate_blocks) + bool(self.problem)
        self.set_class(lines == 2, "-lines-2")
        self.set_class(lines == 3, "-lines-3")

    def render(self) -> Text:
        # Most urgent first: on a narrow terminal the DSN is what gets cut, not the state.
        state = self.state
        if state == "reconnecting" and self.since is not None:
            state = f"RECONNECTING · data {int(time.monotonic() - self.since)}s old · actions off"
        parts = (["RAW DATA REVEALED"] if self.revealed else []) + (["READ-ONLY"] if self.read_only else [])
        firing, acked = self.alerts
        alerts = f"ALERTS: {firing} firing" if firing else "alerts: 0 firing"
        if acked:
            alerts += f", {acked} acked"
        parts += [state] + ([f"{self.stuck} LEASE EXPIRED — no worker alive?"] if self.stuck else [])
        parts += [f"live: {self.live}", alerts, self.database]
        if self.role:
            parts.append(f"role: {self.role}")
        if self.server:
            parts.append(f"PG {self.server}")
        lines = [Text(" · ".join(parts), no_wrap=True, overflow="ellipsis")]
        banners = self.banners()
        if banners:
            more = f" (+{len(banners) - 1} more)" if len(banners) > 1 else ""
            lines.append(Text(f" BLOCKED: {banners[0]}{more} ", style="bold white on red"))
        if self.problem:
            lines.append(Text(f" ! {self.problem} ", style="bold black on yellow"))
        shown = Text(no_wrap=True, overflow="ellipsis")  # each line cut on its own, never wrapped
        for i, line in enumerate(lines):
            if i:
                shown.append("\n")
            shown.append_text(line)
        return shown
