"""A one-line status bar whose text is always shown literally (never Rich markup)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class StatusLine(Widget):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    text: reactive[str] = reactive("")

    def render(self) -> Text:
        # Text(...) rather than a str: a str would be parsed as markup.
        return Text(self.text, no_wrap=True, overflow="ellipsis")
