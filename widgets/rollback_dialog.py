"""The rollback confirmation: the dry-run preview, the target's name typed in full, a reason.

Shows what `fsar-tui rollback --dry-run` prints — the revision it goes to, the artifact
diff, tasks of the target's type in flight, the last verdict of the gates in its scope —
then asks to type the target's name exactly (the blast radius of a rollback is a whole
fleet) and a reason. Returns the reason, or None when cancelled (esc).
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
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from fsar_tui.domain.rollouts import preview_lines
from fsar_tui.domain.sanitize import strip_controls


def preview_text(p, kind: str) -> Text:
    """The preview of db/rollouts.Preview as one Text, diff lines coloured."""
    out = Text()
    for i, line in enumerate(preview_lines(p, kind)):
        body = line[2:] if line.startswith("  ") else line
        style = "bold" if i == 0 else "green" if body.startswith("+") else "red" if body.startswith("-") else ""
        out.append(strip_controls(line) + "\n", style=style)
    out.rstrip()
    return out


class RollbackDialog(ModalScreen[str | None]):
    DEFAULT_CSS = """
    RollbackDialog { align: center middle; }
    RollbackDialog > Vertical { width: 90; max-width: 98%; height: auto; max-height: 98%; border: thick $error;
                                padding: 0 1; background: $surface; }
    RollbackDialog VerticalScroll { height: auto; max-height: 35vh; }  /* the inputs and "enter / esc" always fit */
    RollbackDialog Label { width: 100%; }
    RollbackDialog #problem { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="rollback.cancel")]

    def __init__(self, preview, kind: str) -> None:
        super().__init__()
        self.preview = preview
        self.kind = kind

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll():
                yield Static(preview_text(self.preview, self.kind), id="preview")
            yield Label(Text(f"Type the target's name ({self.preview.target}) to confirm:"))
            yield Input(placeholder=self.preview.target, id="name")
            yield Label(Text("Reason (recorded in operator_actions):"))
            yield Input(placeholder="why", id="reason")
            yield Label(Text(""), id="problem")
            yield Label(Text("enter: next / confirm · esc: cancel"))

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        problem = self.query_one("#problem", Label)
        name = self.query_one("#name", Input)
        if name.value.strip() != self.preview.target:
            problem.update(Text(f"type exactly {self.preview.target} to confirm"))
            self.set_focus(name)
            return
        if event.input.id == "name":
            self.set_focus(self.query_one("#reason", Input))
            return
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            problem.update(Text("a reason is required"))
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)
