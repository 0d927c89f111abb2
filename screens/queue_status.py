"""The queue screen's status line, under the filter bar, as Rich Text (no widgets, no
database): what the next key press will do first, then the view.

At 80 columns the line is cut at its end, so the order is by what the operator must not
miss: an armed bulk action (`a`: the next r/c/e acts on the whole filter) and a paused
live feed — in reverse video, which NO_COLOR keeps — then marks, the sort in force (it
persists across filters, as in k9s: a new filter opens at the top of this sort), the
counts, and last the filter text, which the bar above shows too.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from fsar_tui.widgets.safe_text import safe_text

# What each sort's direction puts first, in words (descending, ascending).
SORT_WORDS = {
    "id": ("newest first", "oldest first"),
    "created": ("newest first", "oldest first"),
    "started": ("latest start first", "earliest start first"),
    "finished": ("latest end first", "earliest end first"),
    "attempt": ("most attempts first", "fewest attempts first"),
    "cost": ("dearest first", "cheapest first"),
}


@dataclass(frozen=True)
class StatusLine:
    filter_text: str
    matching: int | None  # None: not counted yet
    cap: int  # counting stops above this many (shown as "cap+")
    sort: str
    descending: bool
    loaded: int
    marked: int
    armed: bool
    paused: bool


def sort_words(sort: str, descending: bool, *, long: bool = True) -> str:
    words = f"sort {sort} {'desc' if descending else 'asc'}"
    if long:
        words += f" ({SORT_WORDS.get(sort, ('descending', 'ascending'))[0 if descending else 1]})"
    return words


def filter_status_line(s: StatusLine, width: int) -> Text:
    """The line for `width` columns: the alarms, then the longest wording that fits —
    the sort in words, then without them, then without the loaded count; what is still
    too long is cut at its end (the filter text, which the bar above shows whole)."""
    line = Text(no_wrap=True, overflow="ellipsis")
    alarms = [text for on, text in ((s.armed, "NEXT ACTION: WHOLE FILTER"), (s.paused, "LIVE PAUSED")) if on]
    for text in alarms:
        line.append(f" {text} ", style="bold reverse")
        line.append(" ")
    if s.matching is None:
        matching = "…"
    else:
        matching = f"{s.matching - 1:,}+" if s.matching > s.cap else f"{s.matching:,}"
    shown = safe_text(s.filter_text or "(none)")  # a drill-down's filter holds error text
    marked = [f"{s.marked:,} marked"] if s.marked else []
    loaded = [f"{s.loaded:,} loaded"]
    wordings = [
        [*marked, sort_words(s.sort, s.descending), f"{matching} matching", *loaded],
        [*marked, sort_words(s.sort, s.descending, long=False), f"{matching} matching", *loaded],
        [*marked, sort_words(s.sort, s.descending, long=False), f"{matching} matching"],
    ]
    room = width - line.cell_len - len(" · filter: ") - shown.cell_len
    parts = next((w for w in wordings if len(" · ".join(w)) <= room), wordings[-1])
    line.append(" · ".join([*parts, "filter: "]))
    line.append_text(shown)
    return line
