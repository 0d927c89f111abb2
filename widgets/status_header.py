"""The header: database, server, connection state, live source, alerts, role — and,
while anything stops execution (a failing hard gate, a blocking FSAR proposal: the
execution_blocks view) or stopped a rollout (a canary aborted in the last 24 hours on a
target nothing was deployed to since: db/blocks.py), one red line naming it, its scope
and the key that leads to it (the banner every screen shows until the block ends), and
while a screen's reads fail, a line saying what fails, in words (`problem`, set by the
screen).

With a read replica (`read_dsn`), where reads come from — "reads: replica, lag 3 s",
"reads: primary (own write pending on replica)", "reads: primary (replica unreachable)"
— and, while the replica's data is older than `replica_stale_s`, "data N s old (replica
lag)" in the warning style (`reads`, `reads_stale`: fsar_tui/read_routing.py's words).
They come after the connection state, the lease-expired warning and firing alerts, and
shorten ("replica 13 s", "data 13 s old") when the line would not fit the width.

The banner line has a fixed budget (`banner_line`): what must survive any cut comes
first — how many blocks, the key of the first one's screen, what it is, then its scope
and reason — and the names (gate names and proposal ids are operator- or agent-written,
up to 128 characters and more) are abbreviated from the middle to fit, so a long name
never buries the scope, the key or the other blocks. The keys of the other blocks'
screens follow when they fit.

Every value is shown literally (a `Text`, never markup) and the DSN arrives masked.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from fsar_tui.domain.formatting import abbreviate
from fsar_tui.domain.replica_lag import short_label

NAME_MIN = 12  # a name keeps at least this many characters before the scope is cut
WARNING_STYLE = "bold black on yellow"  # the problem line, and replica data older than the threshold


STOPS = "{what} {name} stops {scope}: {reason}"
# An aborted canary: "canary <target> aborted: <reason>". The target takes the scope's
# place (kept whole first) and the abort reason — an operator's or the judge's words, of
# any length — the name's (cut from the middle first): neither buries the key.
ABORTED = "{what} {scope} aborted: {name}"


class Block(NamedTuple):
    """One thing that stops execution, as the banner names it (`terse`: the words that
    replace `what` and `reason` when the name and the scope would not fit beside them;
    `form`: how the four read)."""

    what: str  # "hard gate", "FSAR proposal", "canary"
    name: str  # a gate, a proposal id; an aborted canary's reason (ABORTED)
    scope: str  # "all tasks", "implement_idea", "implement_idea × gpt-4o"; an aborted canary's target
    reason: str
    key: str  # the key and the screen that leads to it
    terse: tuple[str, str]
    form: str = STOPS


def blocks_of(gate_blocks: tuple, blocks: tuple, canary_blocks: tuple = ()) -> list[Block]:
    """Failing hard gates first (the system's own checks), then FSAR proposals, then
    aborted canaries (they stop a revision, not the fleet)."""
    gates = [Block("hard gate", gate, "all tasks" if scope == "all" else scope, "failed", "4 Audit",
                   ("hard gate", "failed")) for gate, scope in gate_blocks]  # fmt: skip
    proposals = [Block("FSAR proposal", pid, task_type or "all tasks", f"severity {severity}", "5 Proposals",
                       ("proposal", f"sev {severity}")) for pid, task_type, severity in blocks]  # fmt: skip
    canaries = [Block("canary", reason or "no reason recorded", target, "", "4 Audit", ("canary", ""), ABORTED)
                for target, reason in canary_blocks]  # fmt: skip
    return gates + proposals + canaries


def banner_line(blocks: list[Block], width: int) -> str:
    """`BLOCKED ×n · <key> · <what> <name> stops <scope>: <reason>[ · <other keys>]` in
    `width` characters when it can be: terser words first, then the name and the scope
    abbreviated from the middle (the scope keeps all it can while the name keeps
    NAME_MIN); the other blocks' keys are added only whole. Narrower than the fixed
    words, the line is cut at its end."""
    first = blocks[0]
    count = f" ×{len(blocks)}" if len(blocks) > 1 else ""
    name, scope = first.name, first.scope

    def line(what: str, reason: str, name: str, scope: str, tail: str = "") -> str:
        said = first.form.format(what=what, name=name, scope=scope, reason=reason)  # values are not templates
        return f"BLOCKED{count} · {first.key} · {said}{tail}"

    what, reason = first.what, first.reason
    if len(line(what, reason, "", "")) + min(len(name), NAME_MIN) + len(scope) > width:
        what, reason = first.terse
    room = width - len(line(what, reason, "", ""))
    others = dict.fromkeys(b.key for b in blocks[1:] if b.key != first.key)
    tail = "".join(f" · {key}" for key in others)
    if tail and room - len(tail) >= min(len(name), NAME_MIN) + len(scope):
        room -= len(tail)
    else:
        tail = ""
    if len(name) + len(scope) > room:
        scope_w = max(1, min(len(scope), max(room - NAME_MIN, (room + 1) // 2)))
        name, scope = abbreviate(name, max(1, room - scope_w)), abbreviate(scope, scope_w)
    return line(what, reason, name, scope, tail)


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
    canary_blocks: reactive[tuple] = reactive(())  # (target, reason) of canaries aborted in the last 24 h
    stuck: reactive[int] = reactive(0)  # running tasks whose lease expired: no worker alive?
    problem: reactive[str] = reactive("")  # what this screen's reads meet, in one line; "" when they work
    reads: reactive[str] = reactive("")  # where reads come from, with a replica; "" without one
    reads_stale: reactive[str] = reactive("")  # "data N s old (replica lag)" beyond the threshold

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def watch_state(self, state: str) -> None:
        self.set_class(state == "reconnecting", "-reconnecting")

    def watch_blocks(self, blocks: tuple) -> None:
        self.fit_lines()

    def watch_gate_blocks(self, gate_blocks: tuple) -> None:
        self.fit_lines()

    def watch_canary_blocks(self, canary_blocks: tuple) -> None:
        self.fit_lines()

    def watch_problem(self, problem: str) -> None:
        self.fit_lines()

    def banner(self) -> str:
        """One rule for everything that stops execution (the execution_blocks view) or a
        rollout (an aborted canary), in the header's width: '' when nothing does."""
        blocks = blocks_of(self.gate_blocks, self.blocks, self.canary_blocks)
        return banner_line(blocks, self.content_size.width) if blocks else ""

    def fit_lines(self) -> None:
        lines = 1 + bool(self.blocks or self.gate_blocks or self.canary_blocks) + bool(self.problem)
        self.set_class(lines == 2, "-lines-2")
        self.set_class(lines == 3, "-lines-3")

    def render(self) -> Text:
        # Most urgent first: on a narrow terminal the DSN is what gets cut, not the state.
        # Priorities: the connection state, the lease-expired warning and firing alerts come
        # before the replica's words, which shorten ("replica 13 s") when the line is too
        # long for the width; one "data N s old" at most (the replica's, when reads come
        # from it: the primary's age says nothing of the data shown then).
        state = self.state
        if state == "reconnecting" and self.since is not None:
            age = "" if self.reads_stale else f" · data {int(time.monotonic() - self.since)}s old"
            state = f"RECONNECTING{age} · actions off"
        firing, acked = self.alerts
        alerts = f"ALERTS: {firing} firing" if firing else "alerts: 0 firing"
        if acked:
            alerts += f", {acked} acked"
        urgent = (["RAW DATA REVEALED"] if self.revealed else []) + (["READ-ONLY"] if self.read_only else [])
        urgent += [state] + ([f"{self.stuck} LEASE EXPIRED — no worker alive?"] if self.stuck else [])
        if firing:
            urgent.append(alerts)
        rest = [f"live: {self.live}"] + ([] if firing else [alerts]) + [self.database]
        rest += ([f"role: {self.role}"] if self.role else []) + ([f"PG {self.server}"] if self.server else [])
        reads, stale = self.reads, self.reads_stale
        width = self.content_size.width
        if width and len(" · ".join([*urgent, reads, stale, *rest[:1]])) + 4 > width:
            reads, stale = short_label(reads), stale.removesuffix(" (replica lag)")
        head = Text(" · ".join(urgent + ([reads] if reads else [])), no_wrap=True, overflow="ellipsis")
        if stale:
            head.append(" · ")
            head.append(f" {stale} ", style=WARNING_STYLE)
        head.append(" · " + " · ".join(rest))
        lines = [head]
        banner = self.banner()
        if banner:
            lines.append(Text(banner, style="bold white on red"))
        if self.problem:
            lines.append(Text(f" ! {self.problem} ", style=WARNING_STYLE))
        shown = Text(no_wrap=True, overflow="ellipsis")  # each line cut on its own, never wrapped
        for i, line in enumerate(lines):
            if i:
                shown.append("\n")
            shown.append_text(line)
        return shown
