"""The raw input of an FSAR Proposal Report, before its structure is parsed: the size
limit, UTF-8 decoding, line endings, the characters a report may not hold (see
fsar_report's docstring for why), the numbered lines errors point at, and the error
itself (`ReportError`, re-exported by fsar_report). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_REPORT_BYTES = 2 * 1024 * 1024  # whole input; bigger -> error at line 1 before parsing

# Quoted input in error messages is cut to this many characters.
EXCERPT_CHARS = 40


class ReportError(ValueError):
    """A report that breaks the format: where (source, 1-based line) and why.

    `str(err)` is one line, "<source>:<line>: <reason>". Source and reason are escaped
    so the message is safe to print or log: no control character from a hostile file
    name or report can reach a terminal through it.
    """

    def __init__(self, source: str, line: int, reason: str):
        self.source = printable(str(source))
        self.line = int(line)
        self.reason = printable(reason)
        super().__init__(f"{self.source}:{self.line}: {self.reason}")

    def __reduce__(self) -> tuple[type[ReportError], tuple[str, int, str]]:
        # Exceptions pickle as cls(*args); ours takes three arguments, not the message.
        return (type(self), (self.source, self.line, self.reason))


# Forbidden anywhere in a report; fsar_report's docstring says why.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with every non-printable character (controls, bidi, newlines) escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def excerpt(text: str) -> str:
    """A short, quoted, escaped piece of input for an error message."""
    if len(text) > EXCERPT_CHARS:
        return repr(text[:EXCERPT_CHARS]) + "…"
    return repr(text)


def _too_big(size: str, source: str) -> ReportError:
    return ReportError(source, 1, f"report is {size} bytes; at most 2 MiB ({MAX_REPORT_BYTES}) allowed")


def decode(data: bytes | str, source: str) -> str:
    """Size-checked, decoded text without BOM, with LF line endings."""
    if isinstance(data, str):
        # Every character is at least one byte, so a long string is too big unencoded.
        if len(data) > MAX_REPORT_BYTES:
            raise _too_big(f"at least {len(data)}", source)
        size = len(data.encode("utf-8", "surrogatepass"))
        if size > MAX_REPORT_BYTES:
            raise _too_big(str(size), source)
        text = data
    else:
        raw = bytes(data)
        if len(raw) > MAX_REPORT_BYTES:
            raise _too_big(str(len(raw)), source)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _utf8_error(raw, err, source) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _utf8_error(raw: bytes, err: UnicodeDecodeError, source: str) -> ReportError:
    before = raw[: err.start]
    line = before.replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
    column = err.start - max(before.rfind(b"\n"), before.rfind(b"\r"))
    return ReportError(
        source,
        line,
        f"not valid UTF-8: {err.reason} (byte 0x{raw[err.start]:02X} at byte {column} of the line); "
        "reports must be UTF-8 text",
    )


def _why_forbidden(ch: str) -> str:
    code = ord(ch)
    if ch == "\x1b":
        return f"control character U+{code:04X} not allowed (terminal escape sequences are rejected)"
    if 0x80 <= code <= 0x9F:
        return f"control character U+{code:04X} not allowed (C1 controls act as terminal escape sequences)"
    if code < 0x80:
        return f"control character U+{code:04X} not allowed (only tab and newline may appear)"
    if code in (0x2028, 0x2029):
        return f"line/paragraph separator U+{code:04X} not allowed (use a newline)"
    if 0xD800 <= code <= 0xDFFF:
        return f"lone surrogate U+{code:04X} not allowed (it cannot be encoded as UTF-8)"
    return (
        f"bidirectional control U+{code:04X} not allowed "
        "(it makes text display differently from how it reads: 'Trojan Source')"
    )


def reject_forbidden(text: str, source: str) -> None:
    # Checked over the whole text before parsing, so everything after (including the
    # excerpts quoted in errors) works on clean text.
    match = _FORBIDDEN.search(text)
    if match is None:
        return
    pos = match.start()
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    raise ReportError(source, line, f"column {column}: {_why_forbidden(match.group())}")


@dataclass(frozen=True)
class Doc:
    """The report's lines, numbered from 1 as in error messages."""

    source: str
    lines: tuple[str, ...]

    @classmethod
    def of(cls, source: str, text: str) -> Doc:
        lines = text.split("\n")  # not splitlines(): that also splits on \x1c, \x85, …
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()  # the final newline ends the last line; it does not start one
        return cls(source, tuple(lines))

    @property
    def last(self) -> int:
        return len(self.lines)

    def line(self, number: int) -> str:
        return self.lines[number - 1]

    def error(self, number: int, reason: str) -> ReportError:
        return ReportError(self.source, number, reason)


def blank(text: str) -> bool:
    return not text.strip()
