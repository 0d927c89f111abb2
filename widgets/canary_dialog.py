"""The confirmation of a canary's promote or abort: what the canary is now, what the move
does, the target's name typed in full, and a reason.

The rollback dialog (widgets/rollback_dialog.py) is built around a rollback's preview
(an artifact diff, gates in scope) and the action dialog (widgets/action_dialog.py)
confirms by a count, not a name: neither says what a canary move does, so this one
shows given lines of facts — scrollable when they outgrow the screen (pgup / pgdn) —
and asks, as the rollback does (a canary's blast radius is a whole target), to type the
name exactly and give a reason. Returns the reason, or None when cancelled (esc).

The name shown and asked for is the name with control characters removed (what an
operator can see and type); typing the stored name exactly is accepted too. Every
line is untrusted text (targets, reasons, the judge's words): shown as Text with
control characters stripped, never as markup. Keys typed ahead of a focus move land
in the field focused when they arrived: the name check then refuses rather than guesses.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Label, Static

from fsar_tui.domain.sanitize import one_line, strip_controls
from fsar_tui.widgets.typed_confirmation import TypedConfirmation

KEYS = "enter: next / confirm · esc: cancel · pgup/pgdn: scroll the facts"
MAX_FACTS = 10  # rows of facts at most: the move, the canary, the judge's verdict, its metrics


class CanaryDialog(TypedConfirmation):
    DEFAULT_CSS = """
    CanaryDialog { align: center middle; }
    CanaryDialog > Vertical { width: 90; max-width: 100%; height: auto; max-height: 100%; border: thick $error;
                              padding: 0 1; background: $surface; }
    CanaryDialog #facts { height: auto; max-height: 10; }  /* fit_facts: what is left, at most 10 */
    CanaryDialog Label { width: 100%; }
    CanaryDialog #problem { color: $error; display: none; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="canary.cancel"),
        Binding("pagedown", "scroll_facts(1)", "Facts down", show=False, id="canary.facts_down"),
        Binding("pageup", "scroll_facts(-1)", "Facts up", show=False, id="canary.facts_up"),
    ]

    def __init__(self, question: str, facts: Sequence[str], name: str) -> None:
        super().__init__()
        self.question = one_line(question)
        self.facts = [strip_controls(line) for line in facts]
        self.target_name = name
        self.shown_name = one_line(name)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question, style="bold"), id="question")
            with VerticalScroll(id="facts"):
                yield Static(Text("\n".join(self.facts), no_wrap=True, overflow="ellipsis"), id="facts-text")
            yield Label(Text(f"Type the target's name ({self.shown_name}) to confirm:"))
            yield Input(placeholder=self.shown_name, id="name")
            yield Label(Text("Reason (recorded in operator_actions):"))
            yield Input(placeholder="why", id="reason")
            yield Label(Text(""), id="problem")
            yield Label(Text(KEYS))

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        self.call_after_refresh(self.fit_facts)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_facts)

    def fit_facts(self) -> None:
        """The facts get the rows the rest of the dialog leaves (at most 10): the fields
        stay on screen at 80×24 however long the name's label wraps."""
        box = self.query_one(Vertical)
        facts = self.query_one("#facts", VerticalScroll)
        others = sum(w.outer_size.height for w in box.children if w is not facts and w.display)
        rows = max(1, min(MAX_FACTS, self.size.height - box.styles.gutter.height - others))
        if facts.styles.max_height is None or facts.styles.max_height.value != rows:
            facts.styles.max_height = rows

    def action_scroll_facts(self, pages: int) -> None:
        facts = self.query_one("#facts", VerticalScroll)
        facts.scroll_to(y=facts.scroll_y + pages * max(1, facts.size.height - 1), animate=False)

    def named(self, typed: str) -> bool:
        return typed.strip() in (self.target_name, self.shown_name) and bool(typed.strip())

    def refit(self) -> None:
        self.fit_facts()
