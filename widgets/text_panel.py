"""Panels of text that redraw without asking for a new layout, and fit their rows to the
height they are given.

Static.update() always requests a layout pass: Textual re-measures the whole screen
(for a Rich Table, by rendering it) in case the new content changed the widget's size.
The queue screen's panels are redrawn several times a second while the fleet runs;
profiled under the simulator, those layout passes and the Rich Table measuring were
most of what was left of the app's CPU. A TextPanel holds Text and only repaints;
CountsPanel lays its grid out for its current width.

Rows (`show_rows`): heading lines, then one line per item. At paint time the panel
shows as many items as its height holds; when some are cut, the last visible line says
"… n more" (n counts every item not shown, loaded or not) — so a panel given more height
shows more, and a cut is never silent (issue 16 point 6). `fit_rows` is that rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from fsar_tui.domain.formatting import compact
from fsar_tui.widgets.safe_text import safe_text


def more_line(hidden: int, what: str = "", *, earlier: bool = False) -> Text:
    noun = f" {what}" if what else ""
    return Text(f"… {hidden:,} {'earlier' if earlier else 'more'}{noun}", style="dim")


def fit_rows(
    head: Sequence[Text],
    rows: Sequence[Text],
    height: int,
    *,
    total: int | None = None,
    what: str = "",
    keep: str = "first",
) -> Text:
    """`head`, then as many of `rows` as `height` lines hold. When rows are cut (or `total`
    says there are more than `rows`), one line says how many are not shown: the last
    line, or the first after the head when `keep="last"` keeps the newest rows of a
    series. A height of 0 (not laid out yet) shows everything."""
    total = max(len(rows), total if total is not None else 0)
    room = height - len(head) if height > 0 else len(rows)
    if total == 0 or total <= len(rows) <= room:
        shown, note = list(rows), None
    else:
        count = max(0, min(len(rows), room - 1))
        shown = list(rows[len(rows) - count :] if keep == "last" else rows[:count])
        note = more_line(total - count, what, earlier=keep == "last")
    lines = list(head)
    if note is not None and keep == "last":
        lines += [note, *shown]
    else:
        lines += shown + ([note] if note is not None else [])
    text = Text("\n", no_wrap=True, overflow="ellipsis", end="").join(lines)
    text.no_wrap, text.overflow, text.end = True, "ellipsis", ""
    return text


class TextPanel(Widget):
    DEFAULT_CSS = "TextPanel { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }"

    def __init__(self, text: Text | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._text = text or Text("")
        self.rows: tuple | None = None  # (head, rows, total, what, keep) while showing rows

    @property
    def text(self) -> Text:
        """What the panel paints at its current height."""
        if self.rows is None:
            return self._text
        head, rows, total, what, keep = self.rows
        return fit_rows(head, rows, self.size.height, total=total, what=what, keep=keep)

    @property
    def content(self) -> Text:
        return self.text

    def show(self, text: Text) -> None:
        if text != self._text or self.rows is not None:
            self._text, self.rows = text, None
            self.refresh()

    def show_rows(
        self,
        head: Text | Sequence[Text],
        rows: Sequence[Text],
        *,
        total: int | None = None,
        what: str = "",
        keep: str = "first",
    ) -> None:
        """Heading line(s) and item lines, fitted to the panel's height when painted
        (`fit_rows`)."""
        heads = [head] if isinstance(head, Text) else list(head)
        shown = (tuple(heads), tuple(rows), total, what, keep)
        if shown == self.rows:
            return
        lines = self.content_lines()
        self.rows = shown
        # A panel whose height follows its content (height: auto) needs a layout pass
        # when its line count changes; a panel sized by CSS only repaints.
        auto = self.styles.height is not None and self.styles.height.is_auto
        self.refresh(layout=auto and lines != self.content_lines())

    def content_lines(self) -> int:
        """Every line of the rows shown (max-height caps it; painting fits what is left)."""
        if self.rows is None:
            return 0
        head, rows, total, _, _ = self.rows
        return len(head) + len(rows) + (1 if total is not None and total > len(rows) else 0)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self.rows is not None:
            return self.content_lines()
        return super().get_content_height(container, viewport, width)

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
        self.lay_out(max(self.content_region.width, 30))

    def on_resize(self) -> None:
        if self.grid is not None:
            self.lay_out(max(self.content_region.width, 30))

    def lay_out(self, width: int) -> None:
        name_width = max(8, width - self.NUMBER_WIDTH * len(self.columns))
        head = Text(self.heading, style="bold")
        head.truncate(name_width, pad=True)
        for _, label in self.columns:
            head.append(label.rjust(self.NUMBER_WIDTH), style="bold")
        grid = self.grid or {}
        rows = []
        for name in sorted(grid):
            line = safe_text(name)
            line.truncate(name_width, overflow="ellipsis", pad=True)
            for status, _ in self.columns:
                line.append(compact(grid[name].get(status, 0)).rjust(self.NUMBER_WIDTH))
            rows.append(line)
        self.show_rows(head, rows, what="types")
