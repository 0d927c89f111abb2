"""Making untrusted text inert before it reaches the terminal.

Task payloads, errors and worker names come from AI agents. Before display:
- terminal control sequences are removed: CSI (`ESC [ … final`), OSC (`ESC ] … BEL/ST`,
  e.g. OSC 52 clipboard writes), DCS/SOS/PM/APC strings, other ESC sequences and every
  remaining C0/C1 control character except newline and tab (tab becomes spaces);
- Rich markup is never interpreted: callers get a `rich.text.Text` built from the
  plain string (never `Text.from_markup`), so `[bold red]x[/]` shows as typed.
Then `redact.py` hides secrets and personal data. `safe_text()` does both.
"""

from __future__ import annotations

import re

from rich.text import Text

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


def inert(text: str) -> Text:
    """A Text that shows `text` literally (no markup), control sequences removed."""
    return Text(strip_controls(text))


_revealed = False


def set_revealed(flag: bool) -> None:
    """For a session whose reveal was allowed and logged (`--reveal`, governance.py):
    text stays inert, no longer redacted."""
    global _revealed
    _revealed = flag


def revealed() -> bool:
    return _revealed


def safe_text(value: object, *, reveal: bool | None = None) -> Text:
    """Untrusted value → Text that is inert and, unless revealed, redacted."""
    from fsar_tui.domain.redact import redact

    reveal = _revealed if reveal is None else reveal
    raw = "" if value is None else str(value)
    cleaned = strip_controls(raw)
    return Text(cleaned if reveal else redact(cleaned))


def safe_str(value: object, *, reveal: bool | None = None) -> str:
    return safe_text(value, reveal=reveal).plain
