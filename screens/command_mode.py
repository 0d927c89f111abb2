"""What `:` commands and the command palette (ctrl+p) do: the app's command words, the
dispatch of a command line, its history, and the palette's entries.

Commands: the screens by name (`:queue status=failed`, `:roi 7d`: the rest of the line
goes to the screen as its filter or window), `help`, `quit`; any unique prefix works
(`:prof`, `:rol`… — `:pro` is ambiguous and says so), aliases `q`, `h`/`?` and the
screen numbers `:1`–`:5` (domain/command_words.py). Every line entered, known or not,
goes to the front of the history, kept across runs in the XDG state dir
(screens/command_history_file.py; in memory only when that cannot be written).

The palette offers the screen switches, the actions of the screen it was opened on
(as bound there now), and the actions of every other screen: picking "ROI: Breakdown
(b)" switches to ROI and runs the action there, as its key would (an action the
screen refuses now — read-only, nothing selected — is refused with a toast).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingsMap
from textual.screen import Screen

from fsar_tui.domain.command_history import remember
from fsar_tui.domain.command_words import CommandWords, describe
from fsar_tui.messages import ApplyFilter
from fsar_tui.screens import command_history_file

SCREENS = {
    "queue": ("1", "Queue"),
    "profiles": ("2", "Profiles"),
    "roi": ("3", "ROI"),
    "audit": ("4", "Audit & Rollback"),
    "proposals": ("5", "Proposals"),
}

COMMAND_WORDS = CommandWords(
    words=(*SCREENS, "help", "quit"),
    aliases={"q": "quit", "h": "help", "?": "help", **{key: mode for mode, (key, _) in SCREENS.items()}},
)


class CommandMode:
    """The app's `:` commands and palette entries; `history` is newest first."""

    def __init__(self, app: App, modes: Mapping[str, object], history_path: Path | None = None) -> None:
        self.app = app
        # The app's MODES: mode -> its screen class.
        self.modes = {m: c for m, c in modes.items() if isinstance(c, type) and issubclass(c, Screen) and m in SCREENS}
        self.history_path = history_path or command_history_file.default_path()
        self.history = command_history_file.load(self.history_path)

    # -- `:` ------------------------------------------------------------------------------

    def run(self, text: str | None) -> None:
        line = (text or "").strip().lstrip(":").strip()
        if not line:
            return
        self.history = remember(self.history, line)
        command_history_file.save(self.history_path, self.history)  # False: kept in memory only
        typed, _, rest = line.partition(" ")
        found = COMMAND_WORDS.resolve(typed)
        app = self.app
        if found.word is None:
            app.notify(describe(found, COMMAND_WORDS.words), severity="error")
        elif found.word == "quit":
            app.exit()
        elif found.word == "help":
            app.call_later(app.run_action, "help")
        else:
            app.switch_mode(found.word)
            if rest.strip():
                # The queue and the audit log take a filter, profiles and ROI a window
                # (`:profiles 24h`, `:roi 14d`, `:audit actor:ops since:1d`), proposals
                # a status or task type (`:proposals new`, `:proposals self_improvement`).
                app.call_after_refresh(lambda: app.screen.post_message(ApplyFilter(rest)))

    # -- the palette ----------------------------------------------------------------------

    def palette(self, screen: Screen) -> Iterable[SystemCommand]:
        app = self.app
        for mode, (key, title) in SCREENS.items():
            yield SystemCommand(
                f"Screen {key}: {title}", f"switch to the {title} screen", lambda mode=mode: app.switch_mode(mode)
            )
        here = getattr(screen, "HELP_TITLE", None) or SCREENS.get(app.current_mode, ("", ""))[1]
        for active in screen.active_bindings.values():
            binding = active.binding
            if binding.id and binding.description and not binding.id.startswith("screen."):
                title = self.entry_title(binding, here if active.node is screen else "")
                yield SystemCommand(
                    title,
                    f"id {binding.id}",
                    lambda action=binding.action, title=title: self.run_here(screen, action, title),
                )
        for mode, screen_class in self.modes.items():
            if isinstance(screen, screen_class):
                continue  # its bindings are above, as they stand now
            title_of_mode = SCREENS[mode][1]
            for binding in self.declared(screen_class):
                title = self.entry_title(binding, title_of_mode)
                yield SystemCommand(
                    title,
                    f"switch to {title_of_mode} and run it · id {binding.id}",
                    self.runner(mode, screen_class, binding.action, title),
                )

    def entry_title(self, binding: Binding, screen_title: str) -> str:
        what = f"{binding.description} ({self.app.get_key_display(binding)})"
        return f"{screen_title}: {what}" if screen_title else what

    def declared(self, screen_class: type[Screen]) -> list[Binding]:
        """The screen's own bindings with an id and a description, keys as remapped."""
        bindings = BindingsMap(screen_class.BINDINGS)
        bindings.apply_keymap(self.app._keymap)  # [keymap] of config.toml, as the screens apply it
        return [b for _, b in bindings if b.id and b.description and not b.id.startswith("screen.")]

    async def run_here(self, screen: Screen, action: str, title: str) -> None:
        if not await self.app.run_action(action, screen):
            self.app.notify(f"{title}: not available now", severity="warning", timeout=4)

    def runner(self, mode: str, screen_class: type[Screen], action: str, title: str) -> Callable:
        async def run() -> None:
            await self.app.switch_mode(mode)
            # The mode's own screen (a detail screen may be open above it in that mode).
            target = next((s for s in self.app.screen_stack if isinstance(s, screen_class)), self.app.screen)
            await self.run_here(target, action, title)

        return run
