"""The bottom line of every screen: the bindings that apply right now, in one widget.

Textual's Footer composes one widget per binding and recomposes all of them whenever
focus or bindings change; on the queue screen that cost ~300 ms of style work on first
paint alone (profiled). This bar renders the same information — keys the operator can
press now, described — as a single line of Text, redrawn from the screen's
`bindings_updated_signal`. Disabled bindings are dimmed; remapped keys show as
remapped (it reads the live bindings, so `[keymap]` in config.toml applies).

The `?` / `q` rule. When no input has focus, `?` Help and `q` Quit are always on the
bar and come first, so a narrow terminal cuts the screen's keys, never those two.
When an input has focus (the queue's filter bar, the `:` command line) `?` and `q`
are characters typed into it, so the bar says what works there instead: ⏎ (Run a
command / Apply a filter), esc (Back), and for a command line tab (Complete) and ↑
(History); and, as k9s keeps its header hints while filtering, it still shows `?`
Help and `q` Quit, dimmed and marked "after esc" — they work once esc has left the
input. Those come before tab and ↑, so 80 columns keep them.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static

FIRST = ("help", "app.help", "quit", "app.quit")
KEY_STYLE = "bold reverse"


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
        if isinstance(screen.focused, Input):
            return self.typing(screen, screen.focused)
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        seen: set[str] = set()
        palette = None
        # `?` and `q` first: on 80 columns the line is cut at its end, and those two are
        # what a lost operator needs.
        bindings = sorted(screen.active_bindings.values(), key=lambda a: a.binding.action not in FIRST)
        for active in bindings:
            binding = active.binding
            if binding.key == self.app.COMMAND_PALETTE_BINDING:
                palette = active.binding
                continue
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            self.key(text, binding, binding.description, "" if active.enabled else "dim")
        if palette is not None:
            self.palette(text, palette)
        return text

    def typing(self, screen: Screen, field: Input) -> Text:
        """The bar while `field` has focus: what works in it, then `?` / `q` for after esc."""
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        active = screen.active_bindings
        own = [a.binding for a in active.values() if a.node is field and a.enabled]
        for binding in own:
            if binding.action == "submit":
                self.key(text, binding, str(getattr(field, "enter_hint", "Submit")).capitalize())
                break
        if "escape" in active:
            self.key(text, active["escape"].binding, "Back")
        for binding in self.app_keys(FIRST):
            self.key(text, binding, binding.description, "dim")
        text.append("after esc ", style="dim")
        for binding in own:
            if binding.show and binding.action != "submit":
                self.key(text, binding, binding.description)
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is not None:
            self.palette(text, palette.binding)
        return text

    def app_keys(self, actions: tuple[str, ...]) -> list[Binding]:
        """The app's own bindings for `actions`, keys as remapped by `[keymap]`."""
        bindings = self.app._bindings.copy()
        bindings.apply_keymap(self.app._keymap)
        return [binding for _, binding in bindings if binding.action in actions and binding.show]

    def key(self, text: Text, binding: Binding, description: str, style: str = "") -> None:
        text.append(f" {self.app.get_key_display(binding)} ", style=f"{KEY_STYLE} {style}".strip())
        text.append(f" {description} ", style=style)

    def palette(self, text: Text, binding: Binding) -> None:
        text.append(f" {self.app.get_key_display(binding)} ", style=KEY_STYLE)
        text.append(" palette")
