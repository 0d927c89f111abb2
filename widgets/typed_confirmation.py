"""The typed confirmation the rollback and canary dialogs share: the target's name typed
exactly (enter moves to the reason), a required reason, one problem line, esc to cancel.
A dialog says what counts as the name (`named`), how it is shown (`shown_name`), and how
it re-fits its body when the problem line takes a row (`refit`)."""

from __future__ import annotations

from rich.text import Text
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class TypedConfirmation(ModalScreen[str | None]):
    shown_name: str = ""

    def named(self, typed: str) -> bool:
        raise NotImplementedError

    def refit(self) -> None:
        """Give the dialog's body the rows the rest leaves (after the problem line showed)."""

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = self.query_one("#name", Input)
        if not self.named(name.value):
            self.say_problem(f"type exactly {self.shown_name} to confirm")
            self.set_focus(name)
            return
        if event.input.id == "name":
            self.set_focus(self.query_one("#reason", Input))
            return
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.say_problem("a reason is required")
            return
        self.dismiss(reason)

    def say_problem(self, problem: str) -> None:
        """The problem line takes a row only while there is one: the body gives it up."""
        label = self.query_one("#problem", Label)
        label.update(Text(problem))
        label.display = True
        self.call_after_refresh(self.refit)

    def action_cancel(self) -> None:
        self.dismiss(None)
