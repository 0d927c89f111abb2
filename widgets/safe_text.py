"""Untrusted text as Rich `Text` for widgets and screens: inert (control sequences
removed, markup never interpreted: built with `Text(str)`, never `Text.from_markup`)
and redacted unless this session's reveal was allowed (domain/sanitize.py)."""

from __future__ import annotations

from rich.text import Text

from fsar_tui.domain.sanitize import one_line, safe_str, strip_controls


def inert(text: str) -> Text:
    """A Text that shows `text` literally (no markup), control sequences removed."""
    return Text(strip_controls(text))


def safe_text(value: object, *, reveal: bool | None = None) -> Text:
    """Untrusted value → Text that is inert and, unless revealed, redacted."""
    return Text(safe_str(value, reveal=reveal))


def safe_line(value: object, *, reveal: bool | None = None) -> Text:
    """safe_text on one line (sanitize.one_line): for a name in a table row or a notice."""
    return Text(one_line(safe_str(value, reveal=reveal)))
