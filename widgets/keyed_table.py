"""A DataTable of rows keyed by an id, that keeps the cursor on the same row.

Rows are replaced in place when data refreshes; the cursor follows its key, not its
index, so an operator's selection never jumps while the table updates underneath.
Marked keys show a `*` in the first column. Cells should be `Text` (never markup).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from rich.text import Text
from textual.widgets import DataTable


class KeyedTable(DataTable):
    BINDINGS = []

    def __init__(self, columns: Sequence[str], **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._column_names = [" ", *columns]
        self.marked: set[Hashable] = set()
        self.keys: list[Hashable] = []

    def on_mount(self) -> None:
        self.add_columns(*self._column_names)

    def _update_dimensions(self, new_rows) -> None:
        # Textual (8.2) caches rendered cells under a key that leaves out the column
        # width: cells painted before the idle-time width pass keep their header-wide
        # truncation until the next data refresh. Drop the caches when widths change.
        before = [column.get_render_width(self) for column in self.ordered_columns]
        super()._update_dimensions(new_rows)
        if before != [column.get_render_width(self) for column in self.ordered_columns]:
            self._clear_caches()
            self.refresh()

    @property
    def current_key(self) -> Hashable | None:
        if not self.keys or self.cursor_row < 0 or self.cursor_row >= len(self.keys):
            return None
        return self.keys[self.cursor_row]

    def _mark_cell(self, key: Hashable) -> Text:
        return Text("*" if key in self.marked else " ")

    def replace_rows(self, rows: Sequence[tuple[Hashable, Sequence[Text]]]) -> None:
        keep = self.current_key
        keep_index = self.cursor_row
        self.clear()
        self.keys = []
        self.append_rows(rows)
        if keep is not None and keep in self.keys:
            self.move_cursor(row=self.keys.index(keep), animate=False)
        elif self.keys:
            self.move_cursor(row=min(keep_index, len(self.keys) - 1), animate=False)

    def append_rows(self, rows: Sequence[tuple[Hashable, Sequence[Text]]]) -> None:
        for key, cells in rows:
            if key in self.keys:
                continue
            self.keys.append(key)
            self.add_row(self._mark_cell(key), *cells, key=str(key))

    def toggle_mark(self) -> None:
        key = self.current_key
        if key is None:
            return
        self.marked.symmetric_difference_update({key})
        self.update_cell(str(key), self.columns[next(iter(self.columns))].key, self._mark_cell(key))

    def clear_marks(self) -> None:
        for key in list(self.marked):
            self.marked.discard(key)
            if key in self.keys:
                self.update_cell(str(key), self.columns[next(iter(self.columns))].key, self._mark_cell(key))
