"""An Input that is also a command line: Tab completes the command word, the unique
word is suggested as you type (→ accepts it, as in any Input), and up / down walk the
history, newest first, back to what was being typed.

What the words and the history are is given (a `CommandWords` and a callable returning
the entries, newest first); this widget knows neither screens nor files. With a
`prefix` (the queue's filter bar, where commands start with `:`), it is a command line
only while its value starts with the prefix: otherwise Tab and the arrows do what they
did (the binding is skipped), and nothing is suggested.

Tab and up are shown on the key bar while the field has focus and is a command line
(widgets/key_bar.py); the field refreshes the bindings when it becomes one or stops
being one, and says what enter does (`enter_hint`: run a command, apply a filter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual import events
from textual.actions import SkipAction
from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input

from fsar_tui.domain.command_history import HistoryWalk
from fsar_tui.domain.command_words import CommandWords


class WordSuggester(Suggester):
    """Suggests the line with its command word completed, when one word fits."""

    def __init__(self, words: CommandWords, prefix: str) -> None:
        super().__init__(use_cache=True, case_sensitive=False)
        self.words = words
        self.prefix = prefix

    async def get_suggestion(self, value: str) -> str | None:
        if not value.startswith(self.prefix):
            return None
        return self.words.suggest(value)


class CommandInput(Input):
    BINDINGS = [
        Binding("tab", "complete", "Complete", id="command.complete"),
        Binding("up", "history(1)", "History", id="command.older"),
        Binding("down", "history(-1)", "Newer command", show=False, id="command.newer"),
    ]
    IN_ORDER = ("command.complete", "command.older", "command.newer")

    def __init__(
        self, *, words: CommandWords, history: Callable[[], Sequence[str]], prefix: str = "", **kwargs: Any
    ) -> None:
        super().__init__(suggester=WordSuggester(words, prefix), **kwargs)
        self.words = words
        self.history = history
        self.prefix = prefix
        self.walk: HistoryWalk | None = None
        self.recalled: str | None = None  # the value the walk last put here

    @property
    def in_command(self) -> bool:
        return self.value.startswith(self.prefix)

    @property
    def enter_hint(self) -> str:
        return "run" if self.in_command else "apply"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Hidden (and passed on: tab moves the focus) while the value is not a command.
        if action in ("complete", "history") and not self.in_command:
            return False
        return super().check_action(action, parameters)

    async def on_key(self, event: events.Key) -> None:
        """Tab, up and down run here, in the field's own queue, in order with the
        characters around them. As bindings they would run only once the key had bubbled
        back up to the app, behind the keys that followed it in the same burst: over SSH
        `prof⇥12h` arrives at once and would become "prof12h", then fail to complete.
        The bindings stay, for the key bar, `[keymap]` and a key this does not handle."""
        bindings = self._bindings.copy()
        bindings.apply_keymap(self.app._keymap)
        for binding in bindings.key_to_bindings.get(event.key, ()):
            if binding.id in self.IN_ORDER and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return

    def watch_value(self, old: str, new: str) -> None:
        if old.startswith(self.prefix) != new.startswith(self.prefix):
            self.refresh_bindings()

    def show(self, value: str) -> None:
        self.value = value
        self.cursor_position = len(value)

    def action_complete(self) -> None:
        if not self.in_command:
            raise SkipAction()
        done = self.words.complete(self.value)
        if done.line is not None:
            self.show(done.line)
        elif len(done.candidates) > 1:
            self.notify(f"ambiguous: {', '.join(done.candidates)}", timeout=4)

    def action_history(self, step: int) -> None:
        if not self.in_command:
            raise SkipAction()
        if self.walk is None or self.value != self.recalled:
            # A new walk from what is typed now (an edited recall starts a new one too).
            self.walk = HistoryWalk(self.history(), self.value[len(self.prefix) :])
        entry = self.walk.older() if step > 0 else self.walk.newer()
        if entry is None:
            return
        self.recalled = self.prefix + entry
        self.show(self.recalled)
