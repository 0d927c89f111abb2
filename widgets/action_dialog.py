"""Confirmation in proportion to blast radius, plus the reason every action needs.

One task: answer y/n-style by pressing enter on the reason (esc cancels).
Several tasks: also type their number exactly, so a bulk action is never a reflex.
Returns the reason, or None when cancelled.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class ActionDialog(ModalScreen[str | None]):
    DEFAULT_CSS = """
    ActionDialog { align: center middle; }
    ActionDialog > Vertical { width: 70; max-width: 95%; height: auto; border: thick $warning; padding: 1 2;
                              background: $surface; }
    ActionDialog Label { width: 100%; }
    ActionDialog #problem { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, count: int) -> None:
        super().__init__()
        self.title_text = title
        self.count = count

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.title_text), id="question")
            if self.count > 1:
                yield Label(Text(f"This changes {self.count} tasks. Type {self.count} to confirm:"))
                yield Input(placeholder=str(self.count), id="count")
            yield Label(Text("Reason (recorded in operator_actions):"))
            yield Input(placeholder="why", id="reason")
            yield Label(Text(""), id="problem")
            yield Label(Text("enter: confirm · esc: cancel"))

    def on_mount(self) -> None:
        self.query_one("#count" if self.count > 1 else "#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        problem = self.query_one("#problem", Label)
        if self.count > 1:
            typed = self.query_one("#count", Input).value.strip()
            if typed != str(self.count):
                if event.input.id == "count" and typed == str(self.count):
                    return
                problem.update(Text(f"type exactly {self.count} to confirm"))
                self.set_focus(self.query_one("#count", Input))
                return
            if event.input.id == "count":
                self.set_focus(self.query_one("#reason", Input))
                return
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            problem.update(Text("a reason is required"))
            self.set_focus(self.query_one("#reason", Input))
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)
