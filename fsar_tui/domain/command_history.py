"""The rules of `:` command history (pure): what an entry may hold, how the list grows,
and walking it with up / down.

The list is newest first, one entry per distinct command (running an older command
again moves it to the front), at most `cap` entries. Entries come from the history
file, which the user (or anything running as them) can write: every entry is cleaned
as it is read — control sequences and invisible format characters removed
(sanitize.strip_controls), whitespace collapsed, length capped — so what the command
line shows is plain text. A command is one line of at most MAX_LINE characters: a
longer line in the file is not a command anyone typed and is skipped whole — never cut
into pieces, never kept in part (what reads the file splits it at newlines only).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fsar_tui.domain.sanitize import strip_controls

CAP = 200  # entries kept (and written to the file)
MAX_ENTRY = 500  # characters kept of one entry
MAX_LINE = 1000  # characters of a line of the file that can be a command; longer ones are skipped


def clean(entry: str) -> str:
    """An entry as it may be shown: no control or format characters, one line, single
    spaces, no leading colons (the command line adds its own), at most MAX_ENTRY."""
    text = " ".join(strip_controls(entry).split())
    return text.lstrip(":").strip()[:MAX_ENTRY].strip()


def remember(history: Sequence[str], entry: str, cap: int = CAP) -> list[str]:
    """`history` (newest first) with `entry` at the front, once; unchanged for an empty entry."""
    entry = clean(entry)
    if not entry:
        return list(history)
    return [entry, *(e for e in history if e != entry)][: max(cap, 0)]


def from_newest(lines: Iterable[str], cap: int = CAP) -> list[str]:
    """The history from the file's lines read newest first, cleaned; lines longer than
    MAX_LINE are skipped. Stops reading once `cap` entries are found."""
    history: list[str] = []
    seen: set[str] = set()
    for line in lines:
        if len(history) >= cap:
            break
        if len(line) > MAX_LINE:
            continue
        entry = clean(line)
        if entry and entry not in seen:
            seen.add(entry)
            history.append(entry)
    return history


def from_lines(lines: Iterable[str], cap: int = CAP) -> list[str]:
    """The history (newest first) from the file's lines (oldest first), cleaned."""
    return from_newest(reversed(list(lines)), cap)


def to_lines(history: Sequence[str]) -> list[str]:
    """The file's lines (oldest first) for `history` (newest first)."""
    return [clean(e) for e in reversed(history) if clean(e)]


class HistoryWalk:
    """Up / down through `entries` (newest first) from a draft: up gives older entries,
    down newer ones and finally the draft again. None: nothing further that way."""

    def __init__(self, entries: Sequence[str], draft: str) -> None:
        self.entries = tuple(entries)
        self.draft = draft
        self.index = -1  # -1: the draft

    def older(self) -> str | None:
        if self.index + 1 >= len(self.entries):
            return None
        self.index += 1
        return self.entries[self.index]

    def newer(self) -> str | None:
        if self.index < 0:
            return None
        self.index -= 1
        return self.draft if self.index < 0 else self.entries[self.index]
