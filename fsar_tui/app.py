"""The Textual App: connects in a worker, shows the database it is on, hosts screens.

Until the queue-screen issue lands, the only screen is a placeholder that says so on
screen. The header line shows the masked DSN, server version and connection state;
all database I/O runs in a Textual worker so the UI never waits on the network.
"""

from __future__ import annotations

from textual import work
from textual.app import App
from textual.binding import Binding

from fsar_tui.config import Settings
from fsar_tui.db.connect import open_pool
from fsar_tui.db.server import aserver_facts
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import FsarError
from fsar_tui.screens.placeholder import PlaceholderScreen
from fsar_tui.widgets.status_line import StatusLine


class FsarApp(App):
    TITLE = "fsar-tui"
    BINDINGS = [Binding("q", "quit", "Quit", id="quit")]

    def __init__(self, *, settings: Settings, dsn: str) -> None:
        super().__init__()
        self.settings = settings
        self.dsn = dsn
        self.pool = None
        self.set_keymap(settings.keymap)

    def on_mount(self) -> None:
        self.push_screen(PlaceholderScreen(
            "task queue",
            "The live queue screen is not built yet (issue: control-panel shell and queue screen).\n"
            "Press q to quit."))
        self._set_status(f"{mask_dsn(self.dsn)} · connecting…")
        self.connect()

    def _set_status(self, text: str) -> None:
        for line in self.screen.query(StatusLine):
            line.text = text

    @work(exclusive=True, group="db")
    async def connect(self) -> None:
        try:
            self.pool = await open_pool(self.dsn, statement_timeout_ms=self.settings.statement_timeout_ms,
                                        read_only=self.settings.read_only)
            async with self.pool.connection() as conn:
                facts = await aserver_facts(conn)
        except FsarError as err:
            self._set_status(f"{mask_dsn(self.dsn)} · {err.message}")
            return
        mode = " · read-only" if self.settings.read_only else ""
        self._set_status(f"{mask_dsn(self.dsn)} · PostgreSQL {facts.version} as {facts.role} · connected{mode}")

    async def on_unmount(self) -> None:
        if self.pool is not None:
            await self.pool.close()
