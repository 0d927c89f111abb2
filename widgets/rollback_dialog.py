"""The rollback confirmation: the dry-run preview, the target's name typed in full, a reason.

Shows what `fsar-tui rollback --dry-run` prints, what is confirmed first: the revision it
goes to, the tasks of the target's type in flight, the last verdict of the gates in its
scope (failing ones first, in red) — then the artifact diff in the height that is left
(`fit_diff`: at 80×24 the dialog fills the screen and no row is blank), scrollable
(pgup / pgdn, or the mouse) under a line that says how many of its lines are above and
below. Then it asks to type the target's name exactly (the blast radius of a rollback
is a whole fleet) and a reason. Returns the reason, or None when cancelled (esc).
Keys typed ahead of a focus move land in the field focused when they arrived (Textual
queues them on that widget): the name check then refuses rather than guesses.
Every line of the preview is untrusted text (artifacts are operator- or agent-written):
shown as Text with control characters stripped, never as markup.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Label, Static

from fsar_tui.domain.formatting import abbreviate
from fsar_tui.domain.rollouts import Preview, preview_lines
from fsar_tui.domain.sanitize import strip_controls
from fsar_tui.widgets.typed_confirmation import TypedConfirmation

NAMED = ("fail", "error")  # verdicts whose gates are named; the others are counted
ORDER = ("fail", "error", "inconclusive", "never run", "pass")
NAMES_SHOWN = 6  # gates named per verdict; the rest are counted ("+n more")
GATE_NAME_SHOWN = 40  # a gate name's characters (cut from the middle)
KEYS = "enter: next / confirm · esc: cancel"


def facts_text(p: Preview, kind: str) -> Text:
    """What the rollback does and what runs meanwhile: the first line of the preview, the
    tasks in flight, and the gates' last verdicts — the failing (and erroring) gates by
    name, first and in red, the others counted by verdict, so a fleet of gates takes a
    line, not a screen."""
    lines = preview_lines(p, kind)
    out = Text(strip_controls(lines[0]) + "\n", style="bold")
    out.append("tasks of this type in flight: ")
    out.append(str(p.in_flight), style="bold yellow" if p.in_flight else "")
    out.append("\nlast gate verdicts: ")
    groups: dict[str, list[str]] = {}
    for gate, verdict, _ in p.last_verdicts:
        groups.setdefault(verdict or "never run", []).append(abbreviate(strip_controls(gate), GATE_NAME_SHOWN))
    if not groups:
        out.append("no gates in scope")
    ranked = sorted(groups, key=lambda v: (ORDER.index(v) if v in ORDER else len(ORDER), v))
    for i, verdict in enumerate(ranked):
        gates = groups[verdict]
        out.append(" · " if i else "")
        if verdict in NAMED:
            out.append(f"{verdict} {len(gates)}: ", style="bold red")
            more = f", +{len(gates) - NAMES_SHOWN} more" if len(gates) > NAMES_SHOWN else ""
            out.append(", ".join(gates[:NAMES_SHOWN]) + more)
        else:
            out.append(f"{strip_controls(verdict)} {len(gates)}")
    return out


def diff_text(p: Preview, kind: str) -> Text:
    """The artifact diff of the preview, its lines coloured."""
    out = Text()
    for line in preview_lines(p, kind)[1:-2]:  # [0]: the headline; [-2:]: in flight, verdicts
        body = line[2:] if line.startswith("  ") else line
        style = "green" if body.startswith("+") else "red" if body.startswith("-") else ""
        out.append(strip_controls(body) + "\n", style=style)
    out.rstrip()
    return out


class RollbackDialog(TypedConfirmation):
    DEFAULT_CSS = """
    RollbackDialog { align: center middle; }
    RollbackDialog > Vertical { width: 90; max-width: 100%; height: auto; max-height: 100%; border: thick $error;
                                padding: 0 1; background: $surface; }
    RollbackDialog #diff { height: auto; }
    RollbackDialog #diff-more { color: $text-muted; display: none; }
    RollbackDialog Label { width: 100%; }
    RollbackDialog #problem { color: $error; display: none; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="rollback.cancel"),
        Binding("pagedown", "scroll_diff(1)", "Diff down", show=False, id="rollback.diff_down"),
        Binding("pageup", "scroll_diff(-1)", "Diff up", show=False, id="rollback.diff_up"),
    ]

    def __init__(self, preview: Preview, kind: str) -> None:
        super().__init__()
        self.preview = preview
        self.shown_name = preview.target
        self.kind = kind
        self.diff_rows = 0  # the diff's height, as fit_diff set it

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(facts_text(self.preview, self.kind), id="facts")
            with VerticalScroll(id="diff"):
                yield Static(diff_text(self.preview, self.kind), id="diff-text")
            yield Label(Text(""), id="diff-more")
            yield Label(Text(f"Type the target's name ({self.preview.target}) to confirm:"))
            yield Input(placeholder=self.preview.target, id="name")
            yield Label(Text("Reason (recorded in operator_actions):"))
            yield Input(placeholder="why", id="reason")
            yield Label(Text(""), id="problem")
            yield Label(Text(KEYS))

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        self.watch(self.query_one("#diff", VerticalScroll), "scroll_y", self.say_where, init=False)
        self.call_after_refresh(self.fit_diff)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_diff)

    def fit_diff(self) -> None:
        """Give the diff the rows the rest of the dialog leaves (all of them when its lines
        fit), one of them for the line that says what is cut."""
        box = self.query_one(Vertical)
        diff = self.query_one("#diff", VerticalScroll)
        more = self.query_one("#diff-more", Label)
        lines = self.query_one("#diff-text", Static).size.height
        others = sum(w.outer_size.height for w in box.children if w not in (diff, more) and w.display)
        room = max(1, self.size.height - box.styles.gutter.height - others)
        cut = lines > room
        height = max(1, room - 1) if cut else lines
        if self.diff_rows != height or more.display != cut:
            diff.styles.height = self.diff_rows = height
            more.display = cut
        self.say_where()

    def say_where(self, _: float = 0.0) -> None:
        diff = self.query_one("#diff", VerticalScroll)
        total = self.query_one("#diff-text", Static).size.height
        top = round(diff.scroll_y)
        below = max(0, total - top - self.diff_rows)
        where = [f"↑ {top} more lines" if top else "", f"↓ {below} more lines" if below else ""]
        shown = " · ".join(w for w in where if w)
        self.query_one("#diff-more", Label).update(Text(f"{shown} of the diff · pgup/pgdn scroll it" if shown else ""))

    def action_scroll_diff(self, pages: int) -> None:
        diff = self.query_one("#diff", VerticalScroll)
        diff.scroll_to(y=diff.scroll_y + pages * max(1, self.diff_rows - 1), animate=False)

    def named(self, typed: str) -> bool:
        return typed.strip() == self.preview.target

    def refit(self) -> None:
        self.fit_diff()
