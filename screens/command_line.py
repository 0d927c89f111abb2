"""`:` command mode — a one-line prompt at the bottom, vi/k9s style — and the command
field it is made of, which the queue screen also uses as its filter bar (there `:`
opens the bar itself, so a burst of keys after `:` is never lost to a modal's mount).

The field completes command words with Tab, suggests the unique one as you type and
walks the app's command history with up / down (widgets/command_input.py); what a
command does is screens/command_mode.py.

The modal line is two rows over the screen it was opened on: the prompt (`:`, what is
typed, the suggestion in dim) and the key bar, which while the field has focus names
⏎, esc, tab and ↑ (widgets/key_bar.py). The field is a compact Input: Input's own
focused style (a tall border, three rows) must not apply, or the one text row is
squeezed out between the borders and the command is typed blind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Static

from fsar_tui.screens.command_mode import COMMAND_WORDS, CommandMode
from fsar_tui.widgets.command_input import CommandInput
from fsar_tui.widgets.key_bar import KeyBar


class CommandField(CommandInput):
    """A command input over the app's command words and history."""

    def __init__(self, *, prefix: str = "", **kwargs: Any) -> None:
        super().__init__(words=COMMAND_WORDS, history=self.app_history, prefix=prefix, **kwargs)

    def app_history(self) -> Sequence[str]:
        mode = getattr(self.app, "command_mode", None)
        return mode.history if isinstance(mode, CommandMode) else ()


class CommandLine(ModalScreen[str | None]):
    DEFAULT_CSS = """
    CommandLine { align: left bottom; background: transparent; }
    CommandLine #prompt { height: 1; width: 100%; background: $surface; }
    CommandLine #prompt > #colon { width: 2; height: 1; padding: 0 0 0 1; }
    CommandLine #prompt > #command { width: 1fr; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="command.cancel")]

    def compose(self) -> ComposeResult:
        with Horizontal(id="prompt"):
            yield Static(":", id="colon")
            yield CommandField(
                placeholder="queue status=failed · roi 7d · profiles 24h · help · q", compact=True, id="command"
            )
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(CommandField).focus()

    def on_input_submitted(self, event: CommandField.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
