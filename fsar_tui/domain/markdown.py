"""Markdown-escaping of operator- and agent-written text (pure): gate names, proposal
ids, ideas, task types, reasons, errors — whatever a report prints that someone other
than this code wrote. The text then reads literally in any CommonMark / GFM renderer: no
link (`[@click=…](…)`), emphasis (`_x_`, `*x*`), code span, HTML, entity (`&amp;`),
strikethrough or table cell boundary (`|`) of its own, and one line (line breaks become
spaces, so it cannot open a heading, list or quote on a line of its own).

Every ASCII punctuation character may be backslash-escaped in CommonMark, so escaping
one more than needed is harmless; those escaped anywhere are the ones that start or end
an inline construct. A few characters only matter at the start of a line (`#`, `-`, `+`,
`=`, `>`, `1.` / `1)`): they are escaped there, since a caller may put the text first.
"""

from __future__ import annotations

import re

INLINE = frozenset("\\`*_[]<>|~&!")
_LINE_BREAK = re.compile(r"\r\n|[\r\n\u2028\u2029\x85\v\f]")
_ORDERED = re.compile(r"(\s*\d{1,9})([.)])")


def md_escape(text: object) -> str:
    """`text` (str() of it) as Markdown that shows it literally, on one line."""
    flat = _LINE_BREAK.sub(" ", "" if text is None else str(text))
    out = "".join("\\" + c if c in INLINE else c for c in flat)
    stripped = out.lstrip()
    lead = out[: len(out) - len(stripped)]
    if stripped[:1] in ("#", "-", "+", "=", ">"):
        return lead + "\\" + stripped
    ordered = _ORDERED.match(out)
    if ordered:
        return ordered.group(1) + "\\" + ordered.group(2) + out[ordered.end() :]
    return out
