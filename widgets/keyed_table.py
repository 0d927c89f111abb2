"""The task table: rows keyed by an id, drawn line by line, the cursor pinned to its key.

Why not Textual's DataTable: it renders every visible cell through Rich's full layout
(padding, wrapping, cropping) and caches the result per cell. The queue screen replaces
its page every second while the fleet runs, so every refresh re-rendered ~400 cells;
profiled under the simulator at 1,000 events/s that was 40 % of the app's CPU and the
main cause of key-press latency and counts lag. Here a row is one Text assembled from
cells cut to their column width and rendered once (tens of microseconds); the header
stays on line 0 while the rows scroll under it.

Behaviour an operator relies on:
- the cursor follows its key, not its index, when rows are replaced underneath it;
- marked keys show `*` in the first column and survive refreshes;
- column widths fit the loaded content (capped, the last column takes what is left)
  and only grow while the same rows stay loaded, so columns do not jitter per refresh.
Cells must be `Text` (never markup): the screen sanitises untrusted text before.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

MAX_COLUMN_WIDTH = 40
GAP = 2


class KeyedTable(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        color: $foreground;
    }
    KeyedTable > .keyed-table--header {
        text-style: bold;
        background: $panel;
    }
    KeyedTable > .keyed-table--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
    }
    KeyedTable:focus > .keyed-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    KeyedTable > .keyed-table--marked {
        text-style: bold;
        color: $warning;
    }
    """
    COMPONENT_CLASSES = {"keyed-table--header", "keyed-table--cursor", "keyed-table--marked"}
    # Vim keys live here, once, for every table of every screen (not as wrappers on each
    # screen); remappable by id in config.toml [keymap].
    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="table.page_up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="table.page_down"),
        Binding("home,g", "cursor_home", "First", show=False, id="table.top"),
        Binding("end,G", "cursor_end", "Last", show=False, id="table.bottom"),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=True, repaint=False)

    class RowHighlighted(Message):
        def __init__(self, table: KeyedTable, cursor_row: int, key: Hashable) -> None:
            super().__init__()
            self.table, self.cursor_row, self.key = table, cursor_row, key

        @property
        def control(self) -> KeyedTable:
            return self.table

    class RowSelected(RowHighlighted):
        pass

    def __init__(self, columns: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.column_names = [" ", *columns]
        self.widths = [len(name) for name in self.column_names]
        self.marked: set[Hashable] = set()
        self.keys: list[Hashable] = []
        self._cells: dict[Hashable, list[Text]] = {}
        self._lines: dict[Hashable, list[Text]] = {}  # assembled rows (mark column excluded)

    # -- data -----------------------------------------------------------------------------

    def set_columns(self, columns: Sequence[str]) -> None:
        """Change the columns (widths start again from the headers); no-op if unchanged."""
        names = [" ", *columns]
        if names != self.column_names:
            self.column_names = names
            self.widths = [len(name) for name in names]
            self._lines.clear()
            self.refresh()

    @property
    def row_count(self) -> int:
        return len(self.keys)

    @property
    def current_key(self) -> Hashable | None:
        if not self.keys or not 0 <= self.cursor_row < len(self.keys):
            return None
        return self.keys[self.cursor_row]

    def get_row(self, key: Hashable) -> list[Text]:
        key = self._lookup(key)
        return [self._mark_cell(key), *self._cells[key]]

    def _lookup(self, key: Hashable) -> Hashable:
        if key in self._cells:
            return key
        for candidate in self.keys:  # tests and messages may hold the key as text
            if str(candidate) == str(key):
                return candidate
        raise KeyError(key)

    def replace_rows(self, rows: Sequence[tuple[Hashable, Sequence[Text]]]) -> None:
        keep, keep_index = self.current_key, self.cursor_row
        self.keys, self._cells, self._lines = [], {}, {}
        self._add(rows)
        if keep is not None and keep in self._cells:
            self._set_cursor(self.keys.index(keep), notify=False)
        else:
            self._set_cursor(min(keep_index, len(self.keys) - 1), notify=bool(self.keys))

    def append_rows(self, rows: Sequence[tuple[Hashable, Sequence[Text]]]) -> None:
        self._add(rows)

    def _add(self, rows: Sequence[tuple[Hashable, Sequence[Text]]]) -> None:
        for key, cells in rows:
            if key in self._cells:
                continue
            self.keys.append(key)
            self._cells[key] = list(cells)
            last = len(self.widths) - 1
            for i, cell in enumerate(cells, start=1):
                if i < last:
                    self.widths[i] = max(self.widths[i], min(cell.cell_len, MAX_COLUMN_WIDTH))
                elif i == last:  # the last column is never cut: it scrolls horizontally
                    self.widths[i] = max(self.widths[i], cell.cell_len)
        self._lines.clear()  # widths may have grown
        self._update_virtual_size()
        self.refresh()

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(sum(self.widths) + GAP * len(self.widths), len(self.keys) + 1)

    def toggle_mark(self) -> None:
        key = self.current_key
        if key is not None:
            self.marked.symmetric_difference_update({key})
            self.refresh()

    def clear_marks(self) -> None:
        self.marked.clear()
        self.refresh()

    def _mark_cell(self, key: Hashable) -> Text:
        return Text("*" if key in self.marked else " ")

    # -- cursor ---------------------------------------------------------------------------

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        self._set_cursor(row)

    def _set_cursor(self, row: int, notify: bool = True) -> None:
        row = max(0, min(row, len(self.keys) - 1)) if self.keys else 0
        self.cursor_row = row
        self._scroll_to_cursor()
        self.refresh()
        if notify and self.keys:
            self.post_message(self.RowHighlighted(self, row, self.keys[row]))

    def _visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        visible = self._visible_rows()
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def action_cursor_down(self) -> None:
        self._set_cursor(self.cursor_row + 1)

    def action_cursor_up(self) -> None:
        self._set_cursor(self.cursor_row - 1)

    def action_page_down(self) -> None:
        self._set_cursor(self.cursor_row + self._visible_rows())

    def action_page_up(self) -> None:
        self._set_cursor(self.cursor_row - self._visible_rows())

    def action_cursor_home(self) -> None:
        self._set_cursor(0)

    def action_cursor_end(self) -> None:
        self._set_cursor(len(self.keys) - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._set_cursor(round(self.scroll_y) + event.y - 1)
            if event.chain >= 2:
                self.post_message(self.RowSelected(self, self.cursor_row, self.keys[self.cursor_row]))

    def on_resize(self) -> None:
        self._scroll_to_cursor()

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter" and self.current_key is not None:
            event.stop()
            self.post_message(self.RowSelected(self, self.cursor_row, self.current_key))

    # -- drawing --------------------------------------------------------------------------

    def _assemble(self, cells: Sequence[Text]) -> list[Text]:
        """Cells cut or padded to their column, each followed by the gap. Kept as one
        piece per cell so an exported screenshot positions every cell on its own."""
        pieces = []
        last = len(self.widths) - 1
        for i, cell in enumerate(cells, start=1):
            piece = cell.copy()
            piece.no_wrap, piece.end = True, ""
            if i < last:
                piece.truncate(self.widths[i], overflow="ellipsis", pad=True)
            piece.append(" " * GAP)
            pieces.append(piece)
        return pieces

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x = round(self.scroll_x)
        base = self.rich_style
        lead = " " * (self.widths[0] - 1 + GAP)
        if y == 0:
            pieces = [Text(" " + lead), *self._assemble([Text(name) for name in self.column_names[1:]])]
            style = base + self.get_component_rich_style("keyed-table--header")
            return self._strip(pieces, scroll_x, width, style)
        index = round(self.scroll_y) + y - 1
        if index >= len(self.keys):
            return Strip.blank(width, base)
        key = self.keys[index]
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = self._assemble(self._cells[key])
        mark = Text("*" + lead if key in self.marked else " " + lead)
        if key in self.marked:
            mark.stylize(self.get_component_rich_style("keyed-table--marked"), 0, 1)
        style = base
        if index == self.cursor_row:
            style = base + self.get_component_rich_style("keyed-table--cursor")
        return self._strip([mark, *line], scroll_x, width, style)

    def _strip(self, pieces: Sequence[Text], scroll_x: int, width: int, style: Style) -> Strip:
        console = self.app.console
        segments = [
            Segment(s.text, style + s.style if s.style else style) for piece in pieces for s in piece.render(console)
        ]
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, style)
