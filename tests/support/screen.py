"""Searching a captured terminal screen (tmux capture-pane) for text the app wrote,
wherever the layout wrapped it.

A capture is rows of cells: a dialog's sentence may wrap onto the next row, between
its borders, with the dimmed screen behind it showing on either side. `shows` finds a
needle, whitespace collapsed, in any of:
- the whole screen as one line (rows joined, whitespace collapsed);
- the same with box-drawing and block characters (borders, scrollbars, input frames)
  taken as spaces;
- each column of the screen as one line: every row is cut at those characters, and
  the pieces starting at the same column are joined top to bottom, so the inside of a
  bordered box reads as the text it holds, its wraps undone.
"""

from __future__ import annotations

import re

FRAME = re.compile(r"[\u2500-\u259f]+")  # Box Drawing and Block Elements


def flat(text: str) -> str:
    return " ".join(text.split())


def readings(screen: str) -> list[str]:
    columns: dict[int, list[str]] = {}
    for row in screen.splitlines():
        start = 0
        for frame in [*FRAME.finditer(row), None]:
            end = frame.start() if frame else len(row)
            if row[start:end].strip():
                columns.setdefault(start, []).append(row[start:end])
            if frame:
                start = frame.end()
    return [flat(screen), flat(FRAME.sub(" ", screen)), *(flat(" ".join(pieces)) for pieces in columns.values())]


def shows(screen: str, needle: str) -> bool:
    needle = flat(needle)
    return any(needle in reading for reading in readings(screen))
