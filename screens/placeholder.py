"""A screen that says plainly that it is a placeholder for a screen not built yet."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Static

from fsar_tui.widgets.key_bar import KeyBar
from fsar_tui.widgets.status_header import StatusHeader


class PlaceholderScreen(Screen):
    def __init__(self, title: str, note: str) -> None:
        super().__init__()
        self.title_text = title
        self.note = note

    def on_mount(self) -> None:
        self.app.sync_header(self.query_one(StatusHeader))

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        with Middle():
            with Center():
                yield Static(Text(f"PLACEHOLDER — {self.title_text}\n\n{self.note}", justify="center"), id="placeholder")
        yield KeyBar()
