"""The FSAR Proposal Report format: strict parsing and canonical rendering.

An FSAR Proposal Report is the text an agent files when it proposes a change:

    # FSAR Proposal Report
    - id: fsar_c0a1af7c-eef0-473b-9af3-11ec5f9b2b4a
    - timestamp: 2026-01-02T13:18:07.564Z
    - severity: 6
    - block_execution: false
    - proposal:

    self_improvement:  To address the issues identified, …
    ### 1. **Fixing Database Schema Issues**
    …
    ## Risks
    - Slow failure: …
    ## Mitigations
    - Add scheduled adversarial audits …

This module owns that format: `parse_report()` turns bytes or text into an `FsarReport`
or raises `ReportError` naming the 1-based line and what was expected; `render_report()`
writes the canonical text. Both are pure (no I/O); callers read and write the files.

Reports come from AI agents, so parsing is strict and fails closed:
- input is UTF-8 (a leading BOM is dropped), at most MAX_REPORT_BYTES; CRLF and lone CR
  line endings become LF, and `sha256` hashes that normalised text ending in exactly one
  newline (`digest()`), so a copy re-saved with other line endings, or by an editor that
  adds a final newline, is the same report;
- control characters are rejected, not stripped (a report is evidence; silently editing
  it would change what was proposed): ESC and every other C0 control except tab and
  newline, DEL, C1 controls (8-bit CSI, OSC, …), the bidi overrides and isolates used
  by "Trojan Source" (U+202A–U+202E, U+2066–U+2069), U+2028/U+2029 (line breaks to
  some tools but not to others, so line numbers would disagree) and, in str input,
  lone surrogates (not encodable as UTF-8);
- Rich markup such as `[bold red]x[/]` in the proposal body, the risks, the mitigations
  or unknown headers is NOT an error: it is ordinary text and kept literally. Screens
  show report text through `widgets/safe_text.inert()` / `safe_text()`, which never interpret
  markup. The known header values (id, timestamp, severity, block_execution) have
  patterns that markup cannot match.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from fsar_tui.domain.fsar_report_input import EXCERPT_CHARS, Doc, blank, decode, excerpt, reject_forbidden
from fsar_tui.domain.fsar_report_input import MAX_REPORT_BYTES as MAX_REPORT_BYTES  # re-exported
from fsar_tui.domain.fsar_report_input import ReportError as ReportError  # re-exported

MAX_BODY_BYTES = 1024 * 1024  # the proposal body (UTF-8) may be at most 1 MiB
REQUIRED_HEADERS = ("id", "timestamp", "severity", "block_execution", "proposal")

TITLE = "# FSAR Proposal Report"


@dataclass(frozen=True)
class Section:
    number: int
    title: str  # heading text with markdown emphasis ** / __ removed, stripped
    # Where the heading was found. Not compared: it is provenance (like a report's
    # source), and a re-rendered report lays its lines out differently.
    line: int = field(compare=False)


@dataclass(frozen=True)
class FsarReport:
    id: str
    reported_at: datetime  # timezone-aware
    severity: int  # 0..10
    block_execution: bool
    task_type: str  # first word before a colon at the start of the body
    body: str  # proposal text up to "## Risks", outer blank lines stripped
    sections: tuple[Section, ...]
    risks: tuple[str, ...]
    mitigations: tuple[str, ...]
    extra_headers: dict[str, str] = field(hash=False)  # unknown headers, in file order
    sha256: str  # digest(): the normalised text (no BOM, LF, one final newline)
    source: str


# ---------------------------------------------------------------- title and headers

_HEADER = re.compile(r"-[ \t]+([a-z][a-z0-9_]*):(?:[ \t](.*))?")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
# The RFC 3339 profile of ISO 8601 (with "T"); the groups tell "no time" and "no zone"
# apart from garbage, and fromisoformat then checks the ranges.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "²" and "٦"
_TASK_TYPE = re.compile(r"([a-z][a-z0-9_]*):(?:\s|$)")


class _Invalid(Exception):
    """A header value that fails its check; the reason becomes a ReportError."""


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise _Invalid(
            "id must be 1-128 characters (letters, digits, '_', '.', ':', '-') "
            f"starting with a letter or digit; found {excerpt(value)}"
        )
    return value


def _check_timestamp(value: str) -> datetime:
    example = "like '2026-01-02T13:18:07Z'"
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise _Invalid(f"timestamp must be an ISO 8601 date-time with a time zone, {example}; found {excerpt(value)}")
    if match.group(1) is None:
        raise _Invalid(f"timestamp has no time part (date only); expected a date-time {example}")
    if match.group(2) is None:
        raise _Invalid(f"timestamp has no time zone; add 'Z' or an offset such as '+02:00', {example}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"timestamp is not a valid date-time: {excerpt(value)}") from None


def _check_severity(value: str) -> int:
    digits = value.lstrip("0") or "0"
    # Length first: int() of thousands of digits is slow, then refused by Python.
    if not _DIGITS.fullmatch(value) or len(digits) > 2 or int(digits) > 10:
        raise _Invalid(f"severity must be an integer from 0 to 10, found {excerpt(value)}")
    return int(digits)


def _check_block_execution(value: str) -> bool:
    if value not in ("true", "false"):
        raise _Invalid(f"block_execution must be 'true' or 'false', found {excerpt(value)}")
    return value == "true"


_CHECKS = {
    "id": _check_id,
    "timestamp": _check_timestamp,
    "severity": _check_severity,
    "block_execution": _check_block_execution,
}


def _parse_title(doc: Doc) -> int:
    """Line number of the title, the first non-blank line."""
    for number, text in enumerate(doc.lines, 1):
        if blank(text):
            continue
        if text.rstrip(" \t") != TITLE:
            raise doc.error(number, f"expected the title {TITLE!r}, found {excerpt(text)}")
        return number
    raise doc.error(doc.last, f"expected the title {TITLE!r}; the report is empty")


def _missing(doc: Doc, seen: dict[str, int], number: int) -> None:
    missing = [key for key in REQUIRED_HEADERS if key not in seen]
    if missing:
        names = ", ".join(repr(key) for key in missing)
        raise doc.error(number, f"missing header{'s' if len(missing) > 1 else ''} {names}")


def _not_a_header(text: str) -> str:
    reason = f"expected a header line '- key: value', found {excerpt(text)}"
    if _TASK_TYPE.match(text):
        reason += "; is the '- proposal:' line missing?"
    return reason


def _parse_headers(doc: Doc, title: int) -> tuple[dict[str, object], dict[str, str], int, str]:
    """Checked values, unknown headers, the '- proposal:' line and its inline text."""
    seen: dict[str, int] = {}
    values: dict[str, object] = {}
    extra: dict[str, str] = {}
    for number in range(title + 1, doc.last + 1):
        text = doc.line(number)
        if blank(text):
            continue
        match = _HEADER.fullmatch(text)
        if match is None:
            raise doc.error(number, _not_a_header(text))
        key, value = match.group(1), (match.group(2) or "").strip()
        if key in seen:
            raise doc.error(number, f"duplicate header {key!r} (first on line {seen[key]})")
        seen[key] = number
        if key == "proposal":
            _missing(doc, seen, number)
            return values, extra, number, value
        check = _CHECKS.get(key)
        if check is None:
            extra[key] = value
            continue
        try:
            values[key] = check(value)
        except _Invalid as err:
            raise doc.error(number, str(err)) from None
    _missing(doc, seen, doc.last)
    raise AssertionError("unreachable: 'proposal' is required")  # pragma: no cover


# ---------------------------------------------------------------- body

_RISKS = re.compile(r"##[ \t]+Risks[ \t]*")
_MITIGATIONS = re.compile(r"##[ \t]+Mitigations[ \t]*")
_SECTION = re.compile(r"#{2,4}[ \t]+([0-9]+)\.[ \t]+(.+)")
_ANY_HEADING = re.compile(r"#{1,6}(?:[ \t]|$)")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


def _fence_opened(text: str) -> str | None:
    """The fence (``` or ~~~, any length) a line opens, if it opens one."""
    match = _FENCE_OPEN.fullmatch(text)
    if match is None:
        return None
    fence, info = match.groups()
    # "```code```" on one line is inline code, not a fence (CommonMark).
    if fence[0] == "`" and "`" in info:
        return None
    return fence


def _fence_closed(fence: str, text: str) -> bool:
    match = _FENCE_CLOSE.fullmatch(text)
    return match is not None and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)


def _without_closing_hashes(heading: str) -> str:
    """'Title ##' -> 'Title': Markdown's optional closing sequence of an ATX heading.

    String methods, not a regex: `[ \t]+#+[ \t]*$` backtracks quadratically on a long
    run of spaces followed by a long run of '#'.
    """
    trimmed = heading.rstrip(" \t")
    head = trimmed.rstrip("#")
    if head == trimmed or (head and head[-1] not in " \t"):
        return heading  # no closing sequence, or '#' is part of a word ("C#")
    return head


def _section(doc: Doc, number: int, match: re.Match[str], expected: int) -> Section:
    digits, heading = match.groups()
    # Compare as text first: int() of a huge digit run is slow, then refused by Python.
    if len(digits) > 9 or int(digits) != expected:
        found = digits if len(digits) <= EXCERPT_CHARS else digits[:EXCERPT_CHARS] + "…"
        raise doc.error(number, f"expected section {expected}, found {found}")
    title = _EMPHASIS.sub(r"\2", _without_closing_hashes(heading)).strip()
    if not title:
        raise doc.error(number, f"section {expected} has no title")
    return Section(expected, title, number)


def _task_type(doc: Doc, number: int, text: str) -> str:
    match = _TASK_TYPE.match(text)
    if match is None:
        raise doc.error(
            number,
            "expected the task type the proposal concerns, as 'task_type:' "
            f"at the start of the proposal, found {excerpt(text)}",
        )
    return match.group(1)


def _body_lines(doc: Doc, proposal: int, inline: str) -> list[tuple[int, str]]:
    """(line number, text) of everything after '- proposal:', inline text first."""
    lines = [(proposal, inline)] if inline else []
    lines.extend((number, doc.line(number)) for number in range(proposal + 1, doc.last + 1))
    return lines


@dataclass
class _Scan:
    """What one pass over the proposal finds."""

    lines: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    task_type: str | None = None
    fence: str | None = None  # the code fence still open, if any
    fence_line: int = 0
    risks: int | None = None  # the line of '## Risks'


def _scan_body(doc: Doc, proposal: int, inline: str) -> _Scan:
    scan = _Scan()
    for number, text in _body_lines(doc, proposal, inline):
        if scan.fence is not None:
            if _fence_closed(scan.fence, text):
                scan.fence = None
        elif blank(text):
            pass
        elif _RISKS.fullmatch(text):
            scan.risks = number
            break
        elif _MITIGATIONS.fullmatch(text):
            raise doc.error(
                number, "found '## Mitigations' before '## Risks'; '## Risks' comes first, then '## Mitigations'"
            )
        else:
            if scan.task_type is None:
                scan.task_type = _task_type(doc, number, text)
            if (fence := _fence_opened(text)) is not None:
                scan.fence, scan.fence_line = fence, number
            elif (match := _SECTION.fullmatch(text)) is not None:
                scan.sections.append(_section(doc, number, match, len(scan.sections) + 1))
        scan.lines.append(text)
    return scan


def _without_blank_ends(lines: list[str]) -> str:
    # Indices, not pop(0): a body of a million blank lines must stay linear.
    first = next((i for i, line in enumerate(lines) if not blank(line)), len(lines))
    end = len(lines)
    while end > first and blank(lines[end - 1]):
        end -= 1
    return "\n".join(lines[first:end])


def _parse_body(doc: Doc, proposal: int, inline: str) -> tuple[str, str, tuple[Section, ...], int]:
    """Body, task type, sections and the line of '## Risks'."""
    scan = _scan_body(doc, proposal, inline)
    if scan.task_type is None:  # no non-blank line before '## Risks' or the end
        raise doc.error(
            proposal,
            "the proposal is empty; expected the task type the proposal "
            "concerns, as 'task_type:' at the start of the proposal",
        )
    body = _without_blank_ends(scan.lines)
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise doc.error(proposal, f"proposal body is {size} bytes; at most 1 MiB ({MAX_BODY_BYTES}) allowed")
    if scan.risks is None:
        reason = "missing '## Risks' section"
        if scan.fence is not None:
            reason += f" (the code block opened on line {scan.fence_line} is never closed)"
        raise doc.error(doc.last, reason)
    return body, scan.task_type, tuple(scan.sections), scan.risks


# ---------------------------------------------------------------- risks and mitigations

_ITEM = re.compile(r"[-*](?:[ \t]+(.*))?")


def _parse_lists(doc: Doc, risks_line: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    # Each item is a list of its lines' texts, joined at the end: appending to a string
    # held in a list copies it every time, quadratic for a long run of continuations.
    risks: list[list[str]] = []
    mitigations: list[list[str]] = []
    items, heading = risks, "## Risks"
    mitigations_line: int | None = None
    for number in range(risks_line + 1, doc.last + 1):
        text = doc.line(number)
        if blank(text):
            continue
        if _MITIGATIONS.fullmatch(text):
            if mitigations_line is not None:
                raise doc.error(number, f"'## Mitigations' appears twice (first on line {mitigations_line})")
            mitigations_line, items, heading = number, mitigations, "## Mitigations"
            continue
        if _RISKS.fullmatch(text):
            raise doc.error(number, f"'## Risks' appears twice (first on line {risks_line})")
        if _ANY_HEADING.match(text):
            raise doc.error(
                number, f"unexpected section {excerpt(text)}; only '## Risks' and '## Mitigations' follow the proposal"
            )
        if text[0] in " \t" and items:
            items[-1].append(text.strip())  # an indented line continues the item above
            continue
        match = _ITEM.fullmatch(text)
        if match is None:
            raise doc.error(number, f"expected a list item '- …' under {heading!r}, found {excerpt(text)}")
        item = (match.group(1) or "").strip()
        if not item:
            raise doc.error(number, f"empty list item under {heading!r}")
        items.append([item])
    if mitigations_line is None:
        raise doc.error(doc.last, "missing '## Mitigations' section")
    return tuple(" ".join(item) for item in risks), tuple(" ".join(item) for item in mitigations)


# ---------------------------------------------------------------- public API


def digest(normalised: str) -> str:
    """The report's identity for idempotent ingestion: sha256 of the normalised text
    (no BOM, LF line endings) with its trailing newlines reduced to one."""
    return hashlib.sha256((normalised.rstrip("\n") + "\n").encode("utf-8")).hexdigest()


_T = TypeVar("_T")


def _checked(values: dict[str, object], key: str, kind: type[_T]) -> _T:
    """A required header's value as its check in _CHECKS made it (a `kind`)."""
    value = values[key]
    if not isinstance(value, kind):  # pragma: no cover - each check returns its kind
        raise TypeError(f"header {key!r} was checked into {type(value).__name__}, not {kind.__name__}")
    return value


def parse_report(data: bytes | str, source: str = "<stdin>") -> FsarReport:
    """Parse one FSAR Proposal Report; any deviation from the format is a ReportError."""
    text = decode(data, source)
    reject_forbidden(text, source)
    doc = Doc.of(source, text)
    title = _parse_title(doc)
    values, extra, proposal, inline = _parse_headers(doc, title)
    body, task_type, sections, risks_line = _parse_body(doc, proposal, inline)
    risks, mitigations = _parse_lists(doc, risks_line)
    return FsarReport(
        id=_checked(values, "id", str),
        reported_at=_checked(values, "timestamp", datetime),
        severity=_checked(values, "severity", int),
        block_execution=_checked(values, "block_execution", bool),
        task_type=task_type,
        body=body,
        sections=sections,
        risks=risks,
        mitigations=mitigations,
        extra_headers=extra,
        sha256=digest(text),
        source=source,
    )


def _format_timestamp(moment: datetime) -> str:
    offset = moment.utcoffset()
    if offset is not None and offset % timedelta(minutes=1):
        # The format's offsets are ±hh:mm; a historical offset with seconds becomes UTC.
        moment, offset = moment.astimezone(UTC), timedelta(0)
    if moment.microsecond == 0:
        timespec = "seconds"
    elif moment.microsecond % 1000 == 0:
        timespec = "milliseconds"
    else:
        timespec = "microseconds"
    stamp = moment.isoformat(timespec=timespec)
    if offset == timedelta(0):
        stamp = stamp.removesuffix("+00:00") + "Z"
    return stamp  # a naive datetime renders without zone and fails the read-back check


def _render(report: FsarReport) -> str:
    lines = [
        TITLE,
        f"- id: {report.id}",
        f"- timestamp: {_format_timestamp(report.reported_at)}",
        f"- severity: {report.severity}",
        f"- block_execution: {'true' if report.block_execution else 'false'}",
    ]
    lines += [f"- {key}: {value}" if value else f"- {key}:" for key, value in report.extra_headers.items()]
    lines += ["- proposal:", "", report.body, "", "## Risks"]
    lines += [f"- {item}" for item in report.risks]
    lines += ["", "## Mitigations"]
    lines += [f"- {item}" for item in report.mitigations]
    return "\n".join(lines) + "\n"


def render_report(report: FsarReport) -> str:
    """The canonical text of `report`: parse_report() reads it back as an equal report.

    Equal apart from sha256 and source (and Section.line, which equality ignores). The
    text is parsed back before it is returned, so a report whose fields the format cannot
    carry (a body containing '## Risks', an item with a newline, a naive timestamp, …)
    raises ValueError instead of being published as something else.
    """
    text = _render(report)
    try:
        again = parse_report(text, "<render_report>")
    except ReportError as err:
        raise ValueError(f"report cannot be rendered: {err.reason} (line {err.line} of the rendered text)") from err
    changed = [
        f.name
        for f in fields(FsarReport)
        if f.name not in ("sha256", "source") and getattr(again, f.name) != getattr(report, f.name)
    ]
    if changed:
        raise ValueError(f"report cannot be rendered faithfully: {', '.join(changed)} would read back differently")
    return text
