"""KeyedTable: cursor follows its key across refreshes; cells painted before the width pass are repainted."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from fsar_tui.widgets.keyed_table import KeyedTable


class TableApp(App):
    CSS = "KeyedTable { height: 1fr; width: 1fr; }"  # as on the queue screen: no resize when rows arrive

    def compose(self) -> ComposeResult:
        yield KeyedTable(["id", "status"])


def row_text(table: KeyedTable, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


async def test_cells_painted_before_the_width_pass_are_repainted_at_full_width():
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        await pilot.pause()  # focus and styles settle first, as in the running app
        table.replace_rows([(1, [Text("1"), Text("succeeded")])])
        # Paint now, before the idle-time pass has measured the new cells: "status" is
        # six wide, so the cell renders truncated and lands in Textual's cell cache.
        assert "succeeded" not in row_text(table, 1)
        await pilot.pause()
        await pilot.pause()
        assert "succeeded" in row_text(table, 1)


async def test_cursor_stays_on_its_key_when_rows_are_replaced():
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.replace_rows([(k, [Text(str(k)), Text("queued")]) for k in (5, 4, 3, 2)])
        table.move_cursor(row=2)  # key 3
        await pilot.pause()
        table.replace_rows([(k, [Text(str(k)), Text("running")]) for k in (7, 6, 5, 4, 3, 2)])
        await pilot.pause()
        assert table.current_key == 3
        table.toggle_mark()
        table.replace_rows([(k, [Text(str(k)), Text("running")]) for k in (3, 2)])
        await pilot.pause()
        assert table.current_key == 3 and table.marked == {3}
        assert row_text(table, 1).lstrip().startswith("*")
