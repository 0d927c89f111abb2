"""The bottom line of every screen: the bindings that apply right now, in one widget.

Textual's Footer composes one widget per binding and recomposes all of them whenever
focus or bindings change; on the queue screen that cost ~300 ms of style work on first
paint alone (profiled). This bar renders the same information — keys the operator can
press now, described — as a single line of Text, redrawn from the screen's
`bindings_updated_signal`. Disabled bindings are dimmed; remapped keys show as
remapped (it reads the live bindings, so `[keymap]` in config.toml applies). Help and
quit come first, so a narrow terminal cuts the screen's keys, never those two.
"""

from __future__ import annotations

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static

FIRST = ("help", "app.help", "quit", "app.quit")


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
    }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.bindings_changed(self.screen)

    def bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen:
            self.update(self.describe(screen))

    def describe(self, screen: Screen) -> Text:
        key_style = "bold reverse"
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        seen: set[str] = set()
        palette = None
        # `?` and `q` first: on 80 columns the line is cut at its end, and those two are
        # what a lost operator needs.
        bindings = sorted(screen.active_bindings.values(), key=lambda a: a.binding.action not in FIRST)
        for active in bindings:
            binding = active.binding
            if binding.key == self.app.COMMAND_PALETTE_BINDING:
                palette = active
                continue
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            style = "" if active.enabled else "dim"
            text.append(f" {self.app.get_key_display(binding)} ", style=f"{key_style} {style}".strip())
            text.append(f" {binding.description} ", style=style)
        if palette is not None:
            text.append(f" {self.app.get_key_display(palette.binding)} ", style=key_style)
            text.append(" palette")
        return text
