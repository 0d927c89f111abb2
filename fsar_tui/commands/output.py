"""The CLI's output boundary: while a command runs, `sys.stdout` and `sys.stderr` are
wrapped so that every write — tables, markdown, CSV, JSON, progress lines, errors —
passes `strip_controls` (no C0/C1 control, ESC sequence, bidi or other invisible
format character reaches the terminal or a redirected file; tabs and newlines stay).

Structural on purpose: a command that prints a new agent-written column without
sanitising it still cannot emit an OSC 52 or a U+202E. Each write is cleaned on its
own; a sequence split across two writes loses its ESC in the first and is plain text
in the second, so splitting cannot smuggle one through. The app (Textual) writes to
the real terminal through its driver and has its own boundary
(widgets/terminal_filter.py), so `fsar-tui` without a command is not wrapped.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from fsar_tui.domain.sanitize import strip_controls


class TerminalSafeStream(io.TextIOBase):
    """A text stream writing what it is given, sanitised, to `inner`."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(strip_controls(text, keep_tabs=True))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.inner.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self.inner.errors


@contextmanager
def terminal_safe_output() -> Iterator[None]:
    """Sanitise everything written to stdout and stderr inside the block."""
    saved = sys.stdout, sys.stderr
    if isinstance(sys.stdout, TerminalSafeStream):  # already inside one (nested main())
        yield
        return
    sys.stdout = TerminalSafeStream(saved[0])
    sys.stderr = TerminalSafeStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
