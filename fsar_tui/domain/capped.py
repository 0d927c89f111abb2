"""What a screen or the CLI shows of an agent's text that may be huge: the first SHOWN
characters of an error, payload or result, inert and (unless revealed) redacted, and how
many bytes were left out — so a 10 MB payload costs what 64 KiB does (issue 15: a 1 MB
log text rendered in 2 s and the next key was handled 43 s later; a 10 MB payload, 13 s
then 52 s).

Where the cut falls: a secret cut in two would show its first half undetected (12 digits
of a card number), so the cut is moved forward, by at most MARGIN characters, to where
no detector reads across it: for text, the next line break (or else the next space);
for JSON, the end of the string or number it falls in. Past MARGIN the cut is hard, and
what is shown of a value it splits is redacted by what is shown of it.

JSON is shown pretty-printed from its text (jsonb's `{"a": 1}` form or json.dumps'),
never parsed: a document 3,000 levels deep shows like any other (levels past
MAX_INDENT stay on one line). The redaction policy's JSON rules (fields, keys) run on
the text (domain/json_scrub.py), then its detectors over the shown text, as before.
Pure: no I/O; the caller fetched the text (db/tasks.py reads SHOWN + MARGIN characters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fsar_tui.domain import json_scrub
from fsar_tui.domain.json_scrub import string_tokens
from fsar_tui.domain.json_text import JsonText, loads_bounded
from fsar_tui.domain.redact import policy
from fsar_tui.domain.sanitize import strip_controls

SHOWN = 64 * 1024
MARGIN = 4 * 1024
HEAD = SHOWN + MARGIN  # characters to fetch of a text to show it
MAX_INDENT = 16  # levels of JSON laid out one item a line; deeper ones stay on one line

_SPACE = re.compile(r"\s")
_BARE_END = re.compile(r"[^\s{}\[\]:,\"]*")
_STRUCTURE = re.compile(r"[{}\[\]:,]|[^\s{}\[\]:,]+")


@dataclass(frozen=True)
class Capped:
    """A text as shown: `text` is inert and (unless revealed) redacted; `more_bytes` of
    the stored text (UTF-8) are not in it, out of `total_bytes`."""

    text: str
    more_bytes: int
    total_bytes: int

    def cap_line(self, key_hint: str) -> str:
        """The line that says what was left out ('' when nothing was)."""
        if not self.more_bytes:
            return ""
        return f"… {self.more_bytes:,} more bytes not shown (of {self.total_bytes:,}) — {key_hint}"


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def text_cut(raw: str, limit: int = SHOWN, margin: int = MARGIN) -> int:
    """Where to cut a plain text shown up to `limit` characters (see the module docstring)."""
    if len(raw) <= limit:
        return len(raw)
    newline = raw.find("\n", limit, limit + margin)
    if newline >= 0:
        return newline
    space = _SPACE.search(raw, limit, limit + margin)
    return space.start() if space is not None else min(len(raw), limit + margin)


def json_cut(raw: str, limit: int = SHOWN, margin: int = MARGIN) -> int:
    """Where to cut a JSON text shown up to `limit` characters: not inside a string or a
    number (see the module docstring)."""
    if len(raw) <= limit:
        return len(raw)
    tokens = string_tokens(raw[:limit])
    last = tokens[-1] if tokens else ""
    if last and not _complete_token(last):  # the cut falls inside a string: to its end
        end = raw.find('"', limit - 1, limit + margin)
        while end >= 0 and _escaped(raw, end):
            end = raw.find('"', end + 1, limit + margin)
        return end + 1 if end >= 0 else min(len(raw), limit + margin)
    bare = _BARE_END.match(raw, limit, limit + margin)  # inside a number or a literal: to its end
    return bare.end() if bare is not None else limit


def _complete_token(token: str) -> bool:
    return len(token) >= 2 and token.endswith('"') and not _escaped(token, len(token) - 1)


def _escaped(text: str, at: int) -> bool:
    """Whether the character at `at` is escaped (an odd run of backslashes before it)."""
    run = 0
    while at - run - 1 >= 0 and text[at - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def capped_text(raw: str | None, total_bytes: int | None = None, *, reveal: bool, limit: int = SHOWN) -> Capped:
    """An error or log text as shown: its first `limit` characters (cut as above)."""
    if raw is None:
        return Capped("-", 0, 0)
    cut = text_cut(raw, limit)
    shown = strip_controls(raw[:cut])
    total = _utf8_len(raw) if total_bytes is None else total_bytes
    return Capped(shown if reveal else policy().text(shown), max(0, total - _utf8_len(raw[:cut])), total)


def capped_json(raw: str | None, total_bytes: int | None = None, *, reveal: bool, limit: int = SHOWN) -> Capped:
    """A JSON document's text as shown: pretty-printed, its first `limit` characters."""
    if raw is None:
        return Capped("-", 0, 0)
    cut = json_cut(raw, limit)
    head = raw[:cut]
    partial = cut < len(raw) or (total_bytes is not None and total_bytes > _utf8_len(raw))
    if reveal:
        head = json_scrub.scrub(head, _same, frozenset(), partial=partial, clean=inert_strings)
    else:
        head = policy().json_text(head, partial=partial, clean=inert_strings)
    shown = strip_controls(pretty_json(head))
    total = _utf8_len(raw) if total_bytes is None else total_bytes
    return Capped(shown if reveal else policy().text(shown), max(0, total - _utf8_len(raw[:cut])), total)


def full_json(raw: str, *, reveal: bool) -> str:
    """A whole JSON document, for an export: valid JSON (compact, as stored), redacted
    unless revealed, control characters escaped as JSON does (never raw)."""
    if reveal:
        text = json_scrub.scrub(raw, _same, frozenset(), clean=inert_strings)
    else:
        text = policy().json_text(raw, clean=inert_strings)
    return strip_controls(text)


def _same(texts: list[str]) -> list[str]:
    return texts


# Joins a batch of strings for one strip_controls pass; a batch whose pass changed the
# count of separators (an unterminated escape sequence reads on, as it would in a
# terminal) is done string by string.
_CLEAN_SEPARATOR = "\n<<fsar:next>>\n"


def inert_strings(texts: list[str]) -> list[str]:
    """[strip_controls(t) for t in texts] in one pass where it gives the same."""
    joined = _CLEAN_SEPARATOR.join(texts)
    if joined.count(_CLEAN_SEPARATOR) == len(texts) - 1:
        out = strip_controls(joined).split(_CLEAN_SEPARATOR)
        if len(out) == len(texts):
            return out
    return [strip_controls(t) for t in texts]


def json_for_output(text: str | None, *, reveal: bool) -> Any:
    """A stored JSON document (its text) for JSON output (`tasks show --format json`):
    parsed (bounded: domain/json_text), control sequences out of every string (keys too),
    then redacted unless revealed. One kept as text is {"unparsed_json": …, "why": …}."""
    if text is None:
        return None
    value = loads_bounded(text)
    if isinstance(value, JsonText):
        shown = value if reveal else policy().value(value)
        return {"unparsed_json": strip_controls(shown.text), "why": value.why}
    cleaned = _inert_strings(value)
    return cleaned if reveal else policy().value(cleaned)


def _inert_strings(value: Any) -> Any:
    """Every string of a JSON value (keys too) without control sequences; at most MAX_DEPTH
    levels deep (loads_bounded), so recursion is safe here."""
    if isinstance(value, dict):
        return {(strip_controls(k) if isinstance(k, str) else k): _inert_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_inert_strings(v) for v in value]
    return strip_controls(value) if isinstance(value, str) else value


def pretty_json(text: str, indent: int = 2) -> str:
    """JSON text (possibly cut) laid out as json.dumps(indent=2) would, without parsing it:
    any depth. Levels deeper than MAX_INDENT stay on one line (`{"a": {"a": …}}`), so a
    document 3,000 deep does not become 3,000 ever longer lines of spaces."""
    out: list[str] = []
    depth = 0
    opened = False  # a container just opened: its first item goes on a new line

    def newline(level: int, compact: str) -> str:
        return "\n" + " " * (indent * level) if level <= MAX_INDENT else compact

    for k, part in enumerate(string_tokens(text, with_between=True)):
        if k % 2:
            if opened:
                out.append(newline(depth, ""))
                opened = False
            out.append(part)
            continue
        for tok in _STRUCTURE.findall(part):
            if tok == "{" or tok == "[":
                if opened:
                    out.append(newline(depth, ""))
                out.append(tok)
                depth += 1
                opened = True
            elif tok == "}" or tok == "]":
                out.append(tok if opened or depth > MAX_INDENT else newline(depth - 1, "") + tok)
                depth = max(0, depth - 1)
                opened = False
            elif tok == ",":
                out.append("," + newline(depth, " "))
            elif tok == ":":
                out.append(": ")
            else:
                if opened:
                    out.append(newline(depth, ""))
                    opened = False
                out.append(tok)
    return "".join(out)
