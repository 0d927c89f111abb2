"""`?`: the bindings of the screen underneath, with their ids (for `[keymap]`)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 98%; height: 90%; border: thick $primary; background:
        $surface; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    @classmethod
    def of(cls, app: App, title: str) -> HelpScreen:
        """The active screen's keys: its own first, then the app's, Textual's internals (no
        id) last; titled with the screen's name as the key bar says it, not its class."""
        rows = [(app.get_key_display(a.binding), a.binding.description or a.binding.action, a.binding.id or "-")
                for a in app.screen.active_bindings.values()]  # fmt: skip
        rows.sort(key=lambda r: (r[2] == "-", "." not in r[2], r[2]))
        return cls(rows, title)

    def __init__(self, rows: list[tuple[str, str, str]], title: str) -> None:
        super().__init__()
        self.rows = rows
        self.title_text = title

    def compose(self) -> ComposeResult:
        table = Table(title=Text(f"{self.title_text} — keys (remap by id in config.toml [keymap])"), expand=True)
        table.add_column("key")
        table.add_column("action")
        table.add_column("id")
        for key, description, binding_id in self.rows:
            table.add_row(Text(key), Text(description), Text(binding_id))
        with VerticalScroll():
            yield Static(table)
            yield Static(
                Text(
                    "Filter language: status:failed type:T model:M worker:W idea:I id:1,2 since:2h "
                    "error~text payload~text (bare words search errors)\n"
                    "Command mode: :queue [filter]  :profiles  :roi [window]  :audit  :proposals  :help  :q"
                    " (any unique prefix, 1-5; tab completes; up/down history)\n"
                    "Workers panel: ● online / ○ offline (MQTT presence), · seen in the database only; "
                    "n▶ = tasks running now"
                )
            )
