"""The app's last line of defence at the terminal: a Textual line filter that removes,
from every rendered segment of every widget, what `strip_controls` removes (C0/C1
controls, ESC sequences, bidi and other invisible format characters).

Screens already build untrusted text with `safe_text`/`inert` (which also keep markup
inert and redact); this filter makes the boundary structural — a new column, toast or
dialog that forgets to sanitise still cannot put an OSC 52 or a U+202E on the
operator's terminal. The removed characters are zero-width in Rich's cell maths, so
dropping them never moves what is drawn. Segments Textual marks as control (cursor
moves it emits itself) pass untouched.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from fsar_tui.domain.sanitize import has_unsafe, strip_controls


class TerminalTextFilter(LineFilter):
    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if not any(seg.control is None and has_unsafe(seg.text) for seg in segments):
            return segments
        return [
            Segment(strip_controls(seg.text), seg.style, seg.control)
            if seg.control is None and has_unsafe(seg.text)
            else seg
            for seg in segments
        ]
