"""KeyedTable: the cursor follows its key across refreshes, marks survive, the header stays,
columns fit their content, and untrusted cell text is drawn as given (never as markup)."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from fsar_tui.widgets.keyed_table import KeyedTable


class TableApp(App):
    CSS = "KeyedTable { height: 1fr; width: 1fr; }"

    def compose(self) -> ComposeResult:
        yield KeyedTable(["id", "status", "error"])


def line(table: KeyedTable, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


def rows(keys, status="queued"):
    return [(k, [Text(str(k)), Text(status), Text("")]) for k in keys]


async def test_columns_fit_content_and_the_header_stays_on_top():
    app = TableApp()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.replace_rows([(k, [Text(str(k)), Text("succeeded"), Text("[bold]x[/] boom")]) for k in range(20, 0, -1)])
        await pilot.pause()
        assert "succeeded" in line(table, 1) and "[bold]x[/] boom" in line(table, 1)
        assert line(table, 0).split() == ["id", "status", "error"]
        for _ in range(12):
            table.action_cursor_down()
        await pilot.pause()
        assert table.current_key == 8 and round(table.scroll_y) > 0
        assert line(table, 0).split() == ["id", "status", "error"]  # still the header
        assert any(line(table, y).split()[:1] == ["8"] for y in range(1, 8))  # the cursor row is visible


async def test_cursor_stays_on_its_key_and_marks_survive_replacement():
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.replace_rows(rows([5, 4, 3, 2]))
        table.move_cursor(row=2)  # key 3
        await pilot.pause()
        table.replace_rows(rows([7, 6, 5, 4, 3, 2], "running"))
        await pilot.pause()
        assert table.current_key == 3 and table.cursor_row == 4
        table.toggle_mark()
        table.replace_rows(rows([3, 2], "running"))
        await pilot.pause()
        assert table.current_key == 3 and table.marked == {3}
        assert line(table, 1).startswith("*") and str(table.get_row("3")[2]) == "running"
        table.replace_rows(rows([9, 8]))  # its key is gone: the cursor keeps its place
        assert table.cursor_row == 0 and table.current_key == 9


async def test_enter_and_arrows_post_messages():
    seen = []

    class Listening(TableApp):
        def on_keyed_table_row_selected(self, message: KeyedTable.RowSelected) -> None:
            seen.append(message.key)

    app = Listening()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.replace_rows(rows([5, 4, 3]))
        table.focus()
        await pilot.press("down", "down", "up", "enter", "end", "enter")
        assert seen == [4, 3]
