"""Fixed-size panels that redraw without asking for a new layout.

Static.update() always requests a layout pass: Textual re-measures the whole screen
(for a Rich Table, by rendering it) in case the new content changed the widget's size.
The queue screen's panels have sizes fixed by CSS and are redrawn several times a
second while the fleet runs; profiled under the simulator, those layout passes and
the Rich Table measuring were most of what was left of the app's CPU. A TextPanel
holds Text and only repaints; CountsPanel lays its grid out for its current width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.widget import Widget

from fsar_tui.domain.formatting import compact
from fsar_tui.widgets.safe_text import safe_text


class TextPanel(Widget):
    DEFAULT_CSS = "TextPanel { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }"

    def __init__(self, text: Text | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.text = text or Text("")

    @property
    def content(self) -> Text:
        return self.text

    def show(self, text: Text) -> None:
        if text != self.text:
            self.text = text
            self.refresh()

    def render(self) -> Text:
        return self.text


class CountsPanel(TextPanel):
    """Counts per status (columns) × task type or type / model (rows)."""

    NUMBER_WIDTH = 6

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs) -> None:
        super().__init__(Text("counts: loading…"), **kwargs)
        self.columns = list(columns)  # (status, short label)
        self.heading = "type"
        self.grid: Mapping[str, Mapping[str, int]] | None = None

    def show_counts(self, heading: str, grid: Mapping[str, Mapping[str, int]]) -> None:
        self.heading, self.grid = heading, grid
        self.text = self.lay_out(max(self.content_region.width, 30))
        self.refresh()

    def on_resize(self) -> None:
        if self.grid is not None:
            self.text = self.lay_out(max(self.content_region.width, 30))

    def lay_out(self, width: int) -> Text:
        name_width = max(8, width - self.NUMBER_WIDTH * len(self.columns))
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        head = Text(self.heading, style="bold")
        head.truncate(name_width, pad=True)
        text.append_text(head)
        for _, label in self.columns:
            text.append(label.rjust(self.NUMBER_WIDTH), style="bold")
        grid = self.grid or {}
        for name in sorted(grid):
            text.append("\n")
            cell = safe_text(name)
            cell.truncate(name_width, overflow="ellipsis", pad=True)
            text.append_text(cell)
            for status, _ in self.columns:
                text.append(compact(grid[name].get(status, 0)).rjust(self.NUMBER_WIDTH))
        return text
