"""Making untrusted text inert before it reaches the terminal.

Task payloads, errors and worker names come from AI agents. Before display:
- terminal control sequences are removed: CSI (`ESC [ … final`), OSC (`ESC ] … BEL/ST`,
  e.g. OSC 52 clipboard writes), DCS/SOS/PM/APC strings, other ESC sequences and every
  remaining C0/C1 control character except newline and tab (tab becomes spaces);
- Rich markup is never interpreted: widgets/safe_text.py builds a `rich.text.Text` from
  the plain string (never `Text.from_markup`), so `[bold red]x[/]` shows as typed.
Then `redact.py` hides secrets and personal data. `safe_str()` does both (pure: this
module imports nothing outside the standard library and the domain).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

# OSC, DCS, SOS, PM, APC strings run to BEL or ST (ESC \\ or the 8-bit \x9c).
_STRING_SEQ = re.compile(r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)", re.S)
_CSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?")
_ESC = re.compile(r"\x1b[ -/]*[0-~]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    text = _STRING_SEQ.sub("", text)
    text = _CSI.sub("", text)
    text = _ESC.sub("", text)
    text = _CONTROLS.sub("", text)
    return text.replace("\t", "    ")


def first_line(text: str, default: str = "") -> str:
    """A message cut to its first line (driver errors run to several; leading blank lines
    and surrounding whitespace dropped), or `default` when there is no text: for
    one-line reports. `fsar_tui.errors.first_line(exc)` is this for an exception."""
    text = text.strip()
    return text.splitlines()[0] if text else default


@dataclass
class Reveal:
    """Whether this session shows raw text instead of redacted. The CLI and the app each
    install one at start (`install_reveal`); it is switched on only after the reveal was
    allowed and logged (`--reveal`: the app's connect, the CLI's reveal_for_cli)."""

    on: bool = False


# A ContextVar, not a module global: tasks created after `install_reveal` share the
# session's Reveal (the app's workers and screens see the switch), while a test or a
# second app in the same process installs its own and leaks nothing.
_REVEAL: ContextVar[Reveal | None] = ContextVar("fsar_reveal", default=None)


def install_reveal(reveal: Reveal) -> Reveal:
    _REVEAL.set(reveal)
    return reveal


def revealed() -> bool:
    current = _REVEAL.get()
    return current is not None and current.on


def safe_str(value: object, *, reveal: bool | None = None) -> str:
    """Untrusted value → a string that is inert and, unless revealed, redacted."""
    from fsar_tui.domain.redact import redact

    reveal = revealed() if reveal is None else reveal
    raw = "" if value is None else str(value)
    cleaned = strip_controls(raw)
    return cleaned if reveal else redact(cleaned)
