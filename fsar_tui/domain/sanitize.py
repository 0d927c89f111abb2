"""Making untrusted text inert before it reaches the terminal.

Task payloads, errors and worker names come from AI agents. Before display:
- terminal control sequences are removed: CSI (`ESC [ … final`), OSC (`ESC ] … BEL/ST`,
  e.g. OSC 52 clipboard writes), DCS/SOS/PM/APC strings, other ESC sequences and every
  remaining C0/C1 control character except newline and tab (tab becomes spaces);
- invisible format characters are removed: every character of Unicode category Cf —
  the bidi embeddings, overrides and isolates (U+202A–202E, U+2066–2069, U+200E/F,
  U+061C) that make text read differently from what it is, zero-width spaces, the BOM,
  soft hyphens, interlinear annotations and the tag characters (U+E0000 block, used to
  smuggle hidden text) — except ZWNJ and ZWJ (U+200C/D), which scripts and emoji need
  to render; the variation selectors but VS15/VS16 (a run of them hides one byte per
  selector); lone surrogates (a JSON `"\ud800"` decodes to one and cannot be encoded
  for a terminal) too; the line and paragraph separators U+2028/2029 become spaces;
- Rich markup is never interpreted: widgets/safe_text.py builds a `rich.text.Text` from
  the plain string (never `Text.from_markup`), so `[bold red]x[/]` shows as typed.
Then `redact.py` hides secrets and personal data. `safe_str()` does both (pure: this
module imports nothing outside the standard library and the domain). A name shown where
one line is expected (a table row, a notice line: model names, idea ids) also goes through
`one_line`, which shows each line break as NEWLINE_MARK.
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
# Unicode category Cf (Unicode 14, Python 3.11's unicodedata; tests/test_sanitize
# checks this class against unicodedata for every code point) minus U+200C/U+200D,
# plus the surrogates.
FORMAT_CHARS = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f\ud800-\udfff"
    # Variation selectors (category Mn) but VS15/VS16, which pick text or emoji
    # presentation: runs of them carry hidden bytes (one selector per byte) and render as
    # nothing.
    "\ufe00-\ufe0d\U000e0100-\U000e01ef"
)
_FORMAT = re.compile(f"[{FORMAT_CHARS}]")
_SEPARATORS = re.compile("[\u2028\u2029]")
# Anything strip_controls would change: the fast path tests this once and returns
# the text untouched when nothing matches (most text, and every 10 MB clean payload).
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\t\u2028\u2029{FORMAT_CHARS}]")


def strip_controls(text: str, *, keep_tabs: bool = False) -> str:
    """`text` with every terminal control sequence, control character and invisible
    format character removed: what is printed is what is there. Tabs become four
    spaces (widgets lay text out by cells), or stay with `keep_tabs` (CLI output,
    where a tab may separate columns)."""
    if _UNSAFE.search(text) is None:
        return text
    text = _STRING_SEQ.sub("", text)
    text = _CSI.sub("", text)
    text = _ESC.sub("", text)
    text = _CONTROLS.sub("", text)
    text = _FORMAT.sub("", text)
    text = _SEPARATORS.sub(" ", text)
    return text if keep_tabs else text.replace("\t", "    ")


NEWLINE_MARK = "\u2424"  # ␤, one cell wide: where an agent-written name had a line break


def one_line(text: str) -> str:
    """`text` made safe (strip_controls, which removes every other line-breaking character
    and turns U+2028/2029 into spaces) and on one line: each newline shown as NEWLINE_MARK,
    so that "a\\nb" can neither pass for two rows nor split a notice, and stays told apart
    from "a b"."""
    return strip_controls(text).replace("\n", NEWLINE_MARK)


MAX_HOST_CHARS = 253  # a DNS name's longest: a longer --host is cut where an error quotes it


def clip(text: str, limit: int) -> str:
    """one_line(text), cut to `limit` characters with "…" when longer: for an input an
    error message quotes (a 3,000-character --host came back whole)."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def has_unsafe(text: str) -> bool:
    """Whether `text` holds anything strip_controls removes (tests and output guards)."""
    return _UNSAFE.search(text.replace("\n", "").replace("\t", "")) is not None


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
