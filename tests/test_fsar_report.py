"""FSAR Proposal Reports: the seed parses exactly, every malformation is a ReportError
naming its line, control characters are refused, render_report round-trips, and no input
makes the parser fail any other way."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import re
import string
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fsar_tui.sim.seed import SEED_REPORT
from fsar_tui.domain.fsar_report import (
    MAX_BODY_BYTES,
    MAX_REPORT_BYTES,
    REQUIRED_HEADERS,
    FsarReport,
    ReportError,
    Section,
    parse_report,
    render_report,
)

# The one real report: the copy the package ships (the demo seeds it), so the suite does
# not depend on a file outside the repository; the test below checks it is verbatim.
SEED = SEED_REPORT.read_text(encoding="utf-8")
SEED_FILE = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_b9e95e59ee95b13b.txt"

SEED_LINES = SEED.split("\n")
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def edited(**changes: str | None) -> str:
    """The seed with whole lines replaced (by 1-based number; None deletes the line)."""
    lines = list(SEED_LINES)
    for key, new in sorted(changes.items(), key=lambda kv: -int(kv[0][1:])):
        number = int(key[1:])
        if new is None:
            del lines[number - 1]
        else:
            lines[number - 1] = new
    return "\n".join(lines)


def error_of(data: bytes | str, source: str = "r.txt") -> ReportError:
    with pytest.raises(ReportError) as info:
        parse_report(data, source)
    return info.value


def assert_error(data: bytes | str, line: int, phrase: str) -> ReportError:
    err = error_of(data)
    assert (err.line, err.source) == (line, "r.txt"), str(err)
    assert phrase in err.reason, str(err)
    assert str(err) == f"r.txt:{line}: {err.reason}"
    return err


# ---------------------------------------------------------------- the seed

def test_embedded_seed_is_the_shared_seed():
    if not SEED_FILE.exists():
        pytest.skip("shared seed directory not present")
    assert SEED_FILE.read_bytes() == SEED.encode()


def test_seed_parses_with_every_field_right():
    report = parse_report(SEED.encode(), "seed.txt")
    assert report.id == "fsar_c0a1af7c-eef0-473b-9af3-11ec5f9b2b4a"
    assert report.reported_at == datetime(2026, 1, 2, 13, 18, 7, 564000, tzinfo=UTC)
    assert report.reported_at.utcoffset() == timedelta(0)
    assert report.severity == 6
    assert report.block_execution is False
    assert report.task_type == "self_improvement"
    assert [(s.number, s.title, s.line) for s in report.sections] == [
        (1, "Fixing Database Schema Issues", 10),
        (2, "Optimizing Task Execution Time", 15),
        (3, "Enhancing ROI Visibility", 20),
        (4, "Ethical Considerations in Code", 25),
        (5, "Streamlining Monetization Flows", 30),
    ]
    assert report.risks == (
        "Slow failure: unnoticed degradation accumulating by 2028-01-02",
        "Unintended consequence: incentives shift toward short-term metrics, long-term reliability decays",
        "Incentive drift: stakeholders habituate to optimistic outputs, raising risk of silent defects",
    )
    assert report.mitigations == (
        "Add scheduled adversarial audits with hard pass/fail gates",
        "Track leading indicators for drift and trust inflation; alert on trend change",
        "Prefer reversible rollouts; keep rollback artifacts warm and tested",
    )
    assert report.extra_headers == {}
    assert report.body == "\n".join(SEED_LINES[7:35])
    assert report.body.startswith("self_improvement:  To address the issues identified")
    assert report.body.endswith("while maintaining a robust ethical framework.")
    assert report.sha256 == hashlib.sha256((SEED + "\n").encode()).hexdigest()
    assert report.source == "seed.txt"


@pytest.mark.parametrize("variant", [
    SEED,
    SEED.replace("\n", "\r\n").encode(),
    SEED.replace("\n", "\r").encode(),
    b"\xef\xbb\xbf" + SEED.encode(),
    b"\xef\xbb\xbf" + SEED.replace("\n", "\r\n").encode(),
    "\ufeff" + SEED.replace("\n", "\r\n"),
    SEED + "\n",
    SEED + "\r\n\r\n",
], ids=["str", "crlf", "cr", "bom", "bom-crlf", "str-bom-crlf", "final-newline", "final-newlines"])
def test_line_endings_and_bom_do_not_change_the_report(variant):
    assert parse_report(variant, "seed.txt") == parse_report(SEED.encode(), "seed.txt")
    assert parse_report(variant).sha256 == hashlib.sha256((SEED + "\n").encode()).hexdigest()


def test_seed_renders_to_itself_plus_final_newline():
    assert render_report(parse_report(SEED)) == SEED + "\n"


# ---------------------------------------------------------------- title and headers

def test_title_is_required():
    assert_error(edited(l1="# FSAR Report"), 1, "expected the title '# FSAR Proposal Report'")
    assert_error("", 1, "the report is empty")
    assert_error("\n\n  \n", 3, "the report is empty")


def test_blank_lines_before_title_and_between_headers_and_trailing_spaces_are_fine():
    text = "\n\n" + edited(l1="# FSAR Proposal Report  ", l3="\n- timestamp: 2026-01-02T13:18:07.564Z\n")
    report = parse_report(text)
    assert same_report(report, parse_report(SEED))
    assert report.sections[0].line == 14  # lines are those of the file as given


@pytest.mark.parametrize("key", REQUIRED_HEADERS[:-1])
def test_each_required_header_is_required(key):
    line = 2 + REQUIRED_HEADERS.index(key)
    assert SEED_LINES[line - 1].startswith(f"- {key}:")
    assert_error(edited(**{f"l{line}": None}), 5, f"missing header {key!r}")


def test_missing_proposal_line():
    # The proposal text is then where a header should be; the hint says what is wrong.
    err = assert_error(edited(l6=None), 7, "expected a header line '- key: value'")
    assert "is the '- proposal:' line missing?" in err.reason
    assert_error("# FSAR Proposal Report\n- id: x\n- severity: 1\n\n", 4,
                 "missing headers 'timestamp', 'block_execution', 'proposal'")


def test_duplicate_header_names_the_first():
    assert_error(edited(l5="- block_execution: false\n- severity: 7"), 6,
                 "duplicate header 'severity' (first on line 4)")


@pytest.mark.parametrize("line", ["severity: 6", "- Severity: 6", "-severity: 6", "- severity:6", "text",
                                  "  - severity: 6", "## Risks"])
def test_non_header_line_in_header_list(line):
    assert_error(edited(l4=line), 4, "expected a header line '- key: value'")


@pytest.mark.parametrize("value", ["", "-x", "_x", "a" * 129, "has space", "[bold]x[/]", "ünï"])
def test_bad_id(value):
    assert_error(edited(l2=f"- id: {value}"), 2, "id must be 1-128 characters")


def test_longest_id():
    assert parse_report(edited(l2="- id: " + "a" * 128)).id == "a" * 128


@pytest.mark.parametrize(("value", "phrase"), [
    ("2026-01-02T13:18:07", "timestamp has no time zone"),
    ("2026-01-02T13:18:07.564", "timestamp has no time zone"),
    ("2026-01-02", "timestamp has no time part"),
    ("", "timestamp must be an ISO 8601 date-time with a time zone"),
    ("yesterday", "timestamp must be an ISO 8601 date-time with a time zone"),
    ("2026-01-02 13:18:07Z", "timestamp must be an ISO 8601 date-time"),
    ("2026-01-02T13:18:07z", "timestamp must be an ISO 8601 date-time"),
    ("1767359887", "timestamp must be an ISO 8601 date-time"),
    ("2026-13-02T13:18:07Z", "timestamp is not a valid date-time"),
    ("2026-01-02T24:00:00Z", "timestamp is not a valid date-time"),
    ("2026-01-02T13:18:07+24:00", "timestamp is not a valid date-time"),
])
def test_bad_timestamp(value, phrase):
    assert_error(edited(l3=f"- timestamp: {value}"), 3, phrase)


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-01-02T13:18:07+05:30", datetime(2026, 1, 2, 7, 48, 7, tzinfo=UTC)),
    ("2026-01-02T13:18-01:00", datetime(2026, 1, 2, 14, 18, tzinfo=UTC)),
    ("2026-01-02T13:18:07.123456789Z", datetime(2026, 1, 2, 13, 18, 7, 123456, tzinfo=UTC)),
])
def test_good_timestamps(value, expected):
    reported_at = parse_report(edited(l3=f"- timestamp: {value}")).reported_at
    assert reported_at == expected and reported_at.tzinfo is not None


@pytest.mark.parametrize("value", ["-1", "11", "6.5", "6.0", "six", "", "+6", "0x6", "\u0666", "1" * 5000])
def test_bad_severity(value):
    assert_error(edited(l4=f"- severity: {value}"), 4, "severity must be an integer from 0 to 10")


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("10", 10), ("06", 6)])
def test_good_severity(value, expected):
    assert parse_report(edited(l4=f"- severity: {value}")).severity == expected


@pytest.mark.parametrize("value", ["yes", "True", "", "FALSE", "0", "false!"])
def test_bad_block_execution(value):
    assert_error(edited(l5=f"- block_execution: {value}"), 5, "block_execution must be 'true' or 'false'")


def test_block_execution_true():
    assert parse_report(edited(l5="- block_execution: true")).block_execution is True


def test_unknown_headers_are_kept_in_order():
    report = parse_report(edited(l2="- zeta: last word\n- id: x1\n- model: gpt-x\n- note:"))
    assert report.extra_headers == {"zeta": "last word", "model": "gpt-x", "note": ""}
    assert list(report.extra_headers) == ["zeta", "model", "note"]
    assert report.id == "x1"


# ---------------------------------------------------------------- body

def test_inline_proposal_text_starts_the_body():
    report = parse_report(edited(l6="- proposal: bug_fix: inline first line", l8="second line"))
    assert report.task_type == "bug_fix"
    assert report.body.startswith("bug_fix: inline first line\n\nsecond line\n")


def test_header_lines_after_proposal_are_body_text():
    report = parse_report(edited(l9="- severity: 9\n- id: other\n- proposal:"))
    assert report.severity == 6 and report.id.startswith("fsar_")
    assert "identified, we should focus" in report.body.split("\n")[0]
    assert "\n- severity: 9\n- id: other\n- proposal:\n### 1." in report.body


def test_task_type_is_required():
    # The first non-blank line of the body, here the header-like text, must be the task type.
    assert_error(edited(l7="- severity: 9"), 7, "expected the task type the proposal concerns")
    assert_error(edited(l8="To address the issues"), 8,
                 "expected the task type the proposal concerns, as 'task_type:' at the start")
    for bad in ["Self_improvement: x", " self_improvement: x", "self_improvement:x", "self-improvement: x"]:
        assert_error(edited(l8=bad), 8, "expected the task type")


def test_task_type_alone_on_its_line():
    assert parse_report(edited(l8="self_improvement:")).task_type == "self_improvement"


def test_empty_body():
    text = "\n".join(SEED_LINES[:6] + ["", "   ", ""] + SEED_LINES[35:])
    assert_error(text, 6, "the proposal is empty")


def test_body_at_most_one_mebibyte():
    body = "\n".join(SEED_LINES[7:35])
    filler = "x" * (MAX_BODY_BYTES - len(body.encode()) - 1)
    fits = edited(l35=SEED_LINES[34] + "\n" + filler)
    assert len(parse_report(fits).body.encode()) == MAX_BODY_BYTES
    too_big = edited(l35=SEED_LINES[34] + "\n" + filler + "é")
    assert_error(too_big, 6, f"proposal body is {MAX_BODY_BYTES + 2} bytes; at most 1 MiB (1048576) allowed")


@pytest.mark.parametrize("as_bytes", [True, False])
def test_report_at_most_two_mebibytes(as_bytes):
    text = SEED + "\n" + "x" * (MAX_REPORT_BYTES - len(SEED))
    assert_error(text.encode() if as_bytes else text, 1, "at most 2 MiB (2097152) allowed")
    assert_error("é" * (MAX_REPORT_BYTES // 2 + 1), 1, "at most 2 MiB")


def test_rich_markup_in_body_and_lists_is_kept_literally():
    markup = "[bold red]x[/] [link=http://evil]click[/link]"
    report = parse_report(edited(l9=markup, l38=f"- {markup}"))
    assert markup + "\n### 1." in report.body
    assert report.risks[0] == markup


# ---------------------------------------------------------------- sections

def test_section_numbering_gap():
    assert_error(edited(l20="### 5. **Enhancing ROI Visibility**"), 20, "expected section 3, found 5")


def test_section_numbering_repeat_and_start():
    assert_error(edited(l20="### 2. **Again**"), 20, "expected section 3, found 2")
    assert_error(edited(l10="## 0. Zero"), 10, "expected section 1, found 0")
    assert_error(edited(l10="#### " + "9" * 5000 + ". Huge"), 10, "expected section 1, found 999")


def test_section_heading_forms():
    report = parse_report(edited(
        l10="## 1. __Plain__ and **bold** ##", l15="#### 2.  Two", l20="### 03. Three"))
    assert [s.title for s in report.sections[:3]] == ["Plain and bold", "Two", "Three"]
    # Not section headings: level 1 and 5, no space, no dot, a decimal.
    report = parse_report(edited(l9="# 9. a\n##### 9. b\n###9. c\n### 9 d\n### 9.5 e"))
    assert len(report.sections) == 5 and report.sections[0].line == 14


def test_closing_hashes_only_after_a_space():
    report = parse_report(edited(l10="### 1. Port to C#", l15="### 2. Two #", l20="### 3. Three\t##  "))
    assert [s.title for s in report.sections[:3]] == ["Port to C#", "Two", "Three"]


def test_section_without_title():
    assert_error(edited(l10="### 1. ** **"), 10, "section 1 has no title")
    assert_error(edited(l10="### 1. ##"), 10, "section 1 has no title")  # only a closing sequence


def test_headings_inside_code_fences_are_not_sections():
    fenced = "```markdown\n### 7. not a section\n## Mitigations\n## Risks\n``` \n~~~~\n### 8. no\n~~~\n~~~~"
    report = parse_report(edited(l9=fenced))
    assert [s.number for s in report.sections] == [1, 2, 3, 4, 5]
    assert "### 7. not a section\n## Mitigations\n## Risks" in report.body
    # Inline code with triple backticks does not open a fence.
    assert len(parse_report(edited(l9="```x``` ok")).sections) == 5


def test_unclosed_fence_is_named():
    err = assert_error(edited(l9="```"), len(SEED_LINES), "missing '## Risks' section")
    assert "code block opened on line 9 is never closed" in err.reason


def test_section_equality_ignores_the_line():
    assert Section(1, "a", 3) == Section(1, "a", 9) and hash(Section(1, "a", 3)) == hash(Section(1, "a", 9))
    assert Section(1, "a", 3) != Section(2, "a", 3)


# ---------------------------------------------------------------- risks and mitigations

def test_missing_risks():
    assert_error("\n".join(SEED_LINES[:35]), 35, "missing '## Risks' section")
    assert_error("\n".join(SEED_LINES[:35]) + "\n", 35, "missing '## Risks' section")


def test_missing_mitigations():
    assert_error("\n".join(SEED_LINES[:40]), 40, "missing '## Mitigations' section")
    assert_error("\n".join(SEED_LINES[:41]), 40, "missing '## Mitigations' section")  # final newline


def test_mitigations_before_risks():
    swapped = "\n".join(SEED_LINES[:36] + SEED_LINES[41:] + [""] + SEED_LINES[36:40])
    assert_error(swapped, 37, "found '## Mitigations' before '## Risks'")


@pytest.mark.parametrize(("line", "phrase"), [
    ("Slow failure", "expected a list item '- …' under '## Risks'"),
    ("-Slow failure", "expected a list item '- …' under '## Risks'"),
    ("1. Slow failure", "expected a list item '- …' under '## Risks'"),
    ("-", "empty list item under '## Risks'"),
    ("*   ", "empty list item under '## Risks'"),
    ("## Notes", "unexpected section '## Notes'; only '## Risks' and '## Mitigations' follow the proposal"),
    ("# Title", "unexpected section"),
    ("## Risks", "'## Risks' appears twice (first on line 37)"),
])
def test_bad_risk_item(line, phrase):
    assert_error(edited(l38=line), 38, phrase)


def test_bad_mitigation_item():
    assert_error(edited(l43="text"), 43, "expected a list item '- …' under '## Mitigations'")
    assert_error(edited(l43="## Mitigations"), 43, "'## Mitigations' appears twice (first on line 42)")
    assert_error(edited(l42="## Mitigations\n  dangling"), 43, "under '## Mitigations'")


def test_list_items_star_and_continuation_lines():
    report = parse_report(edited(l39="* Star item\n    continued here\n\n\tand here"))
    assert report.risks == ("Slow failure: unnoticed degradation accumulating by 2028-01-02",
                            "Star item continued here and here",
                            "Incentive drift: stakeholders habituate to optimistic outputs, raising risk of silent defects")


def test_empty_lists_are_allowed():
    report = parse_report("\n".join(SEED_LINES[:36] + ["## Risks", "## Mitigations", ""]))
    assert report.risks == () and report.mitigations == ()


# ---------------------------------------------------------------- hostile characters

@pytest.mark.parametrize(("text", "line", "phrase"), [
    (edited(l12=SEED_LINES[11][:5] + "\x1b[31mred\x1b[0m"), 12,
     "column 6: control character U+001B not allowed (terminal escape sequences are rejected)"),
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
], ids=["csi", "osc52", "bel", "nul", "del", "ff", "c1-csi", "nel", "rlo", "lri-pdi", "u2028", "surrogate",
        "header", "extra-header", "before-title"])
def test_control_characters_are_rejected(text, line, phrase):
    err = assert_error(text, line, phrase)
    if "\ud800" not in text:
        assert error_of(text.encode()).reason == err.reason
    assert str(err).isprintable()


def test_tab_is_allowed():
    assert "\tindented" in parse_report(edited(l9="\tindented")).body


@pytest.mark.parametrize(("data", "line"), [
    (edited(l12=SEED_LINES[11][:3] + "@").encode().replace(b"@", b"\xff"), 12),
    (edited(l12="@").replace("\n", "\r\n").encode().replace(b"@", b"\xc3("), 12),
    (edited(l12="@").replace("\n", "\r").encode().replace(b"@", b"\xed\xa0\x80"), 12),
    (SEED.encode() + b"\xe2\x80", len(SEED_LINES)),
    (b"\xef\xbb\xbf\xff", 1),
])
def test_invalid_utf8_names_the_line(data, line):
    assert_error(data, line, "not valid UTF-8")


def test_invalid_utf8_reason_names_the_byte():
    err = error_of(edited(l12="abc@").encode().replace(b"@", b"\xff"))
    assert err.reason == ("not valid UTF-8: invalid start byte (byte 0xFF at byte 4 of the line); "
                          "reports must be UTF-8 text")


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
    exclude_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
TITLE_CHARS = string.ascii_letters + string.digits + " ,.'()/:-éß漢"


def stripped(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(TEXT_CHARS, max_size=max_size).map(str.strip).filter(lambda s: len(s) >= min_size)


# Strategies are built once: building them inside reports() costs more than the test.
BODY_LINES = st.text(TEXT_CHARS | st.just("\t"), max_size=60).filter(
    # Any text but the Markdown structure the parser reads: headings and code fences.
    lambda s: not s.lstrip().startswith(("#", "```", "~~~")))
TASK_TYPES = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
TITLES = st.text(TITLE_CHARS, min_size=1, max_size=30).map(str.strip).filter(bool)
OFFSETS = (st.integers(-1439, 1439).map(lambda m: timedelta(minutes=m))
           | st.integers(-86399, 86399).map(lambda s: timedelta(seconds=s)))  # historical, with seconds
MOMENTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                       timezones=OFFSETS.map(timezone))
IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", fullmatch=True)
ITEMS = st.lists(stripped(1), max_size=4).map(tuple)
EXTRA_HEADERS = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(lambda k: k not in REQUIRED_HEADERS),
    stripped(), max_size=3)


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


def same_report(parsed: FsarReport, original: FsarReport) -> bool:
    return dataclasses.replace(parsed, sha256=original.sha256, source=original.source) == original


@settings(max_examples=250, deadline=None)
@given(reports())
def test_render_then_parse_gives_the_same_report(report):
    text = render_report(report)
    parsed = parse_report(text, "rendered")
    assert same_report(parsed, report)
    assert parsed.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert render_report(parsed) == text  # canonical: a fixed point


@pytest.mark.parametrize(("change", "phrase"), [
    ({"body": "fix: a\n## Risks\n- smuggled"}, "'## Risks' appears twice"),
    ({"body": "fix: a\n### 2. Two"}, "expected section 1, found 2"),
    ({"body": "fix: a", "task_type": "other"}, "task_type"),
    ({"risks": ("two\nlines",)}, "under '## Risks', found 'lines'"),
    ({"risks": (" padded",)}, "faithfully: risks would read back differently"),
    ({"extra_headers": {"severity": "9"}}, "duplicate header 'severity'"),
    ({"reported_at": datetime(2026, 1, 2)}, "no time zone"),
    ({"body": "fix: \x1b[31m"}, "control character U+001B"),
])
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


TRICKY_LINES = ["", "  ", "## Risks", "## Mitigations", "## Notes", "```", "~~~", "### 1. **One**", "### 6. Six",
                "- severity: 5", "- proposal:", "- proposal: fix: now", "- model: x", "# FSAR Proposal Report",
                "-", "* item", "  continued", "\tx", "fix: y", "\x1b[31m", "\u202e", "[bold]x[/]"]


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
            text = text[:pos] + draw(st.characters(codec=None)) + text[pos + 1:]
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
