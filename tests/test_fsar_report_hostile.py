"""FSAR Proposal Reports, hostile input: control characters and invalid UTF-8 refused
with their line, adversarial inputs parsed in linear time, the ReportError's own form,
render_report round-trips, and no input (hypothesis) makes the parser fail any other way."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import re
import string
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.domain.fsar_report import (
    MAX_BODY_BYTES,
    REQUIRED_HEADERS,
    FsarReport,
    ReportError,
    Section,
    parse_report,
    render_report,
)
from support.fsar_reports import FUZZ, SEED, SEED_LINES, assert_error, edited, error_of, same_report

# ---------------------------------------------------------------- hostile characters


@pytest.mark.parametrize(
    ("text", "line", "phrase"),
    [
        (
            edited(l12=SEED_LINES[11][:5] + "\x1b[31mred\x1b[0m"),
            12,
            "column 6: control character U+001B not allowed (terminal escape sequences are rejected)",
        ),
        (edited(l9="ok \x1b]52;c;ZXZpbA==\x07"), 9, "column 4: control character U+001B"),
        (edited(l9="\x07"), 9, "control character U+0007 not allowed"),
        (edited(l9="\x00"), 9, "control character U+0000 not allowed"),
        (edited(l9="a\x7f"), 9, "column 2: control character U+007F"),
        (edited(l9="x\x0cy"), 9, "control character U+000C"),
        (edited(l9="\x9b31m"), 9, "control character U+009B not allowed (C1 controls"),
        (edited(l9="\x85"), 9, "control character U+0085"),
        (edited(l38="- ok \u202egnp.exe"), 38, "bidirectional control U+202E not allowed"),
        (edited(l38="- \u2066x\u2069"), 38, "bidirectional control U+2066"),
        (edited(l9="a\u2028b"), 9, "line/paragraph separator U+2028"),
        (edited(l9="a\ud800b"), 9, "lone surrogate U+D800"),
        (edited(l2="- id: x\x1b[2J"), 2, "control character U+001B"),
        (edited(l2="- model: \x1b[2J"), 2, "control character U+001B"),
        ("\x1b[2J" + SEED, 1, "column 1: control character U+001B"),
    ],
    ids=[
        "csi",
        "osc52",
        "bel",
        "nul",
        "del",
        "ff",
        "c1-csi",
        "nel",
        "rlo",
        "lri-pdi",
        "u2028",
        "surrogate",
        "header",
        "extra-header",
        "before-title",
    ],
)
def test_control_characters_are_rejected(text, line, phrase):
    err = assert_error(text, line, phrase)
    if "\ud800" not in text:
        assert error_of(text.encode()).reason == err.reason
    assert str(err).isprintable()


def test_tab_is_allowed():
    assert "\tindented" in parse_report(edited(l9="\tindented")).body


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (edited(l12=SEED_LINES[11][:3] + "@").encode().replace(b"@", b"\xff"), 12),
        (edited(l12="@").replace("\n", "\r\n").encode().replace(b"@", b"\xc3("), 12),
        (edited(l12="@").replace("\n", "\r").encode().replace(b"@", b"\xed\xa0\x80"), 12),
        (SEED.encode() + b"\xe2\x80", len(SEED_LINES)),
        (b"\xef\xbb\xbf\xff", 1),
    ],
)
def test_invalid_utf8_names_the_line(data, line):
    assert_error(data, line, "not valid UTF-8")


def test_invalid_utf8_reason_names_the_byte():
    err = error_of(edited(l12="abc@").encode().replace(b"@", b"\xff"))
    assert err.reason == (
        "not valid UTF-8: invalid start byte (byte 0xFF at byte 4 of the line); reports must be UTF-8 text"
    )


HEAD = "\n".join(SEED_LINES[:6]) + "\nfix: a\n"
ADVERSARIAL = {
    # Each of these was, or would be, quadratic in a naive implementation.
    "closing-hashes": HEAD + "### 1. a" + " " * 150_000 + "#" * 150_000 + "x\n## Risks\n## Mitigations\n",
    "continuations": HEAD + "## Risks\n- a\n" + "  b\n" * 150_000 + "## Mitigations\n",
    "blank-lines": HEAD.replace("fix: a", "\n" * 300_000 + "fix: a") + " \n" * 150_000 + "## Risks\n## Mitigations\n",
    "emphasis": HEAD + "### 1. " + "__a**" * 60_000 + "\n## Risks\n## Mitigations\n",
    "sections": HEAD + "".join(f"## {i}. t\n" for i in range(1, 30_000)) + "## Risks\n## Mitigations\n",
    "fences": HEAD + "```\n" * 150_001 + "## Risks\n## Mitigations\n",
    "task-type": HEAD.replace("fix: a", "a" * 300_000 + "x"),
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_inputs_stay_linear(name):
    # Generous bound (a loaded machine is fine); a quadratic path takes minutes here.
    started = time.perf_counter()
    try:
        parse_report(ADVERSARIAL[name])
    except ReportError:
        pass
    assert time.perf_counter() - started < 5


def test_reports_are_hashable():
    assert hash(parse_report(SEED)) == hash(parse_report(SEED.replace("\n", "\r\n")))


# ---------------------------------------------------------------- ReportError


def test_report_error_form():
    err = ReportError("a.txt", 3, "expected x")
    assert (err.source, err.line, err.reason, str(err)) == ("a.txt", 3, "expected x", "a.txt:3: expected x")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.source, again.line, again.reason, str(again)) == (err.source, err.line, err.reason, str(err))


def test_report_error_escapes_source_and_reason():
    err = error_of("nope", source="evil\x1b]52;c;x\x07\nname")
    assert str(err).isprintable() and "\n" not in str(err)
    assert str(err) == f"{err.source}:1: {err.reason}"
    assert str(ReportError("s", 1, "a\x1b[2Jb\u202e")) == "s:1: a\\x1b[2Jb\\u202e"


def test_long_input_is_quoted_short():
    err = error_of(edited(l4="- severity: " + "9" * 500))
    assert len(err.reason) < 120 and err.reason.endswith("…")


# ---------------------------------------------------------------- render_report round trip

# Characters a report may carry: everything printable, plus tab and other format marks,
# minus what the parser refuses.
TEXT_CHARS = st.characters(
    exclude_categories=("Cc", "Cs", "Zl", "Zp"),
    exclude_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
)
TITLE_CHARS = string.ascii_letters + string.digits + " ,.'()/:-éß漢"


def stripped(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(TEXT_CHARS, max_size=max_size).map(str.strip).filter(lambda s: len(s) >= min_size)


# Strategies are built once: building them inside reports() costs more than the test.
BODY_LINES = st.text(TEXT_CHARS | st.just("\t"), max_size=60).filter(
    # Any text but the Markdown structure the parser reads: headings and code fences.
    lambda s: not s.lstrip().startswith(("#", "```", "~~~"))
)
TASK_TYPES = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
TITLES = st.text(TITLE_CHARS, min_size=1, max_size=30).map(str.strip).filter(bool)
OFFSETS = st.integers(-1439, 1439).map(lambda m: timedelta(minutes=m)) | st.integers(-86399, 86399).map(
    lambda s: timedelta(seconds=s)
)  # historical, with seconds
MOMENTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=OFFSETS.map(timezone))
IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", fullmatch=True)
ITEMS = st.lists(stripped(1), max_size=4).map(tuple)
EXTRA_HEADERS = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(lambda k: k not in REQUIRED_HEADERS),
    stripped(),
    max_size=3,
)


@st.composite
def reports(draw) -> FsarReport:
    task_type = draw(TASK_TYPES)
    lines = [task_type + ":" + draw(st.just("") | BODY_LINES.map(lambda s: " " + s))]
    sections: list[Section] = []
    for kind in draw(st.lists(st.sampled_from(["line", "blank", "section"]), max_size=12)):
        if kind == "section":
            title = draw(TITLES)
            shown = draw(st.sampled_from([title, f"**{title}**", f"__{title}__"]))
            lines.append(f"{'#' * draw(st.integers(2, 4))} {len(sections) + 1}. {shown}")
            sections.append(Section(len(sections) + 1, title, 0))
        else:
            lines.append(draw(BODY_LINES) if kind == "line" else "")
    while not lines[-1].strip():
        lines.pop()
    return FsarReport(
        id=draw(IDS),
        reported_at=draw(MOMENTS),
        severity=draw(st.integers(0, 10)),
        block_execution=draw(st.booleans()),
        task_type=task_type,
        body="\n".join(lines),
        sections=tuple(sections),
        risks=draw(ITEMS),
        mitigations=draw(ITEMS),
        extra_headers=draw(EXTRA_HEADERS),
        sha256="",
        source="",
    )


@settings(max_examples=250, deadline=None)
@given(reports())
def test_render_then_parse_gives_the_same_report(report):
    text = render_report(report)
    parsed = parse_report(text, "rendered")
    assert same_report(parsed, report)
    assert parsed.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert render_report(parsed) == text  # canonical: a fixed point


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"body": "fix: a\n## Risks\n- smuggled"}, "'## Risks' appears twice"),
        ({"body": "fix: a\n### 2. Two"}, "expected section 1, found 2"),
        ({"body": "fix: a", "task_type": "other"}, "task_type"),
        ({"risks": ("two\nlines",)}, "under '## Risks', found 'lines'"),
        ({"risks": (" padded",)}, "faithfully: risks would read back differently"),
        ({"extra_headers": {"severity": "9"}}, "duplicate header 'severity'"),
        ({"reported_at": datetime(2026, 1, 2)}, "no time zone"),
        ({"body": "fix: \x1b[31m"}, "control character U+001B"),
    ],
)
def test_render_refuses_reports_it_cannot_carry(change, phrase):
    report = dataclasses.replace(parse_report(SEED), **change)
    with pytest.raises(ValueError, match=re.escape(phrase)):
        render_report(report)


# ---------------------------------------------------------------- fuzzing


def line_count(data: bytes | str) -> int:
    if isinstance(data, str):
        return data.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1


def parse_or_error(data: bytes | str) -> FsarReport | ReportError:
    """Parse; a ReportError must be well formed, and a report must survive rendering."""
    try:
        report = parse_report(data, "fuzz.txt")
    except ReportError as err:
        message = str(err)
        assert re.fullmatch(r"fuzz\.txt:[1-9][0-9]*: \S.*", message), message
        assert message.isprintable(), message  # no control, bidi or line-break characters
        assert 1 <= err.line <= line_count(data)
        return err
    assert 0 <= report.severity <= 10 and report.reported_at.utcoffset() is not None
    assert [s.number for s in report.sections] == list(range(1, len(report.sections) + 1))
    assert report.body.startswith(report.task_type + ":")
    assert len(report.body.encode()) <= MAX_BODY_BYTES
    assert same_report(parse_report(render_report(report)), report)
    return report


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes(data):
    parse_or_error(data)


@FUZZ
@given(st.text(max_size=2000))
def test_fuzz_arbitrary_text(text):
    parse_or_error(text)


TRICKY_LINES = [
    "",
    "  ",
    "## Risks",
    "## Mitigations",
    "## Notes",
    "```",
    "~~~",
    "### 1. **One**",
    "### 6. Six",
    "- severity: 5",
    "- proposal:",
    "- proposal: fix: now",
    "- model: x",
    "# FSAR Proposal Report",
    "-",
    "* item",
    "  continued",
    "\tx",
    "fix: y",
    "\x1b[31m",
    "\u202e",
    "[bold]x[/]",
]


@st.composite
def seed_mutations(draw) -> bytes | str:
    text = SEED
    for _ in range(draw(st.integers(1, 3))):
        lines = text.split("\n")
        kind = draw(st.sampled_from(["delete", "duplicate", "insert", "replace", "truncate"]))
        at = draw(st.integers(0, len(lines) - 1))
        if kind == "delete":
            del lines[at]
        elif kind == "duplicate":
            lines.insert(at, lines[at])
        elif kind == "insert":
            lines.insert(at, draw(st.sampled_from(TRICKY_LINES) | st.text(max_size=30)))
        if kind in ("delete", "duplicate", "insert"):
            text = "\n".join(lines)
        elif kind == "replace" and text:
            pos = draw(st.integers(0, len(text) - 1))
            text = text[:pos] + draw(st.characters(codec=None)) + text[pos + 1 :]
        elif kind == "truncate":
            text = text[: draw(st.integers(0, len(text)))]
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = text.replace("\n", ending)
    return draw(st.sampled_from([text, text.encode("utf-8", "surrogatepass")]))


@FUZZ
@given(seed_mutations())
def test_fuzz_seed_mutations(data):
    parse_or_error(data)


@FUZZ
@given(st.binary(max_size=40), st.integers(0, len(SEED)))
def test_fuzz_bytes_spliced_into_the_seed(junk, at):
    raw = SEED.encode()
    parse_or_error(raw[:at] + junk + raw[at:])
