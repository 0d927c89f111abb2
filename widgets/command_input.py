"""An Input that is also a command line: Tab completes the command word, the unique
word is suggested as you type (→ accepts it, as in any Input), and up / down walk the
history, newest first, back to what was being typed.

What the words and the history are is given (a `CommandWords` and a callable returning
the entries, newest first); this widget knows neither screens nor files. With a
`prefix` (the queue's filter bar, where commands start with `:`), it is a command line
only while its value starts with the prefix: otherwise Tab and the arrows do what they
did (the binding is skipped), and nothing is suggested.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
        Binding("tab", "complete", "Complete", show=False, id="command.complete"),
        Binding("up", "history(1)", "Older command", show=False, id="command.older"),
        Binding("down", "history(-1)", "Newer command", show=False, id="command.newer"),
    ]

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
