"""FSAR Proposal Reports: the seed parses exactly, every malformation is a ReportError
naming its line, control characters are refused, render_report round-trips, and no input
makes the parser fail any other way."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from fsar_tui.domain.fsar_report import (
    MAX_BODY_BYTES,
    MAX_REPORT_BYTES,
    REQUIRED_HEADERS,
    Section,
    parse_report,
    render_report,
)
from support.fsar_reports import SEED, SEED_FILE, SEED_LINES, assert_error, edited, same_report

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


@pytest.mark.parametrize(
    "variant",
    [
        SEED,
        SEED.replace("\n", "\r\n").encode(),
        SEED.replace("\n", "\r").encode(),
        b"\xef\xbb\xbf" + SEED.encode(),
        b"\xef\xbb\xbf" + SEED.replace("\n", "\r\n").encode(),
        "\ufeff" + SEED.replace("\n", "\r\n"),
        SEED + "\n",
        SEED + "\r\n\r\n",
    ],
    ids=["str", "crlf", "cr", "bom", "bom-crlf", "str-bom-crlf", "final-newline", "final-newlines"],
)
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
    assert_error(
        "# FSAR Proposal Report\n- id: x\n- severity: 1\n\n",
        4,
        "missing headers 'timestamp', 'block_execution', 'proposal'",
    )


def test_duplicate_header_names_the_first():
    assert_error(
        edited(l5="- block_execution: false\n- severity: 7"), 6, "duplicate header 'severity' (first on line 4)"
    )


@pytest.mark.parametrize(
    "line", ["severity: 6", "- Severity: 6", "-severity: 6", "- severity:6", "text", "  - severity: 6", "## Risks"]
)
def test_non_header_line_in_header_list(line):
    assert_error(edited(l4=line), 4, "expected a header line '- key: value'")


@pytest.mark.parametrize("value", ["", "-x", "_x", "a" * 129, "has space", "[bold]x[/]", "ünï"])
def test_bad_id(value):
    assert_error(edited(l2=f"- id: {value}"), 2, "id must be 1-128 characters")


def test_longest_id():
    assert parse_report(edited(l2="- id: " + "a" * 128)).id == "a" * 128


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
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
    ],
)
def test_bad_timestamp(value, phrase):
    assert_error(edited(l3=f"- timestamp: {value}"), 3, phrase)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T13:18:07+05:30", datetime(2026, 1, 2, 7, 48, 7, tzinfo=UTC)),
        ("2026-01-02T13:18-01:00", datetime(2026, 1, 2, 14, 18, tzinfo=UTC)),
        ("2026-01-02T13:18:07.123456789Z", datetime(2026, 1, 2, 13, 18, 7, 123456, tzinfo=UTC)),
    ],
)
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
    assert_error(
        edited(l8="To address the issues"),
        8,
        "expected the task type the proposal concerns, as 'task_type:' at the start",
    )
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
    report = parse_report(edited(l10="## 1. __Plain__ and **bold** ##", l15="#### 2.  Two", l20="### 03. Three"))
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


@pytest.mark.parametrize(
    ("line", "phrase"),
    [
        ("Slow failure", "expected a list item '- …' under '## Risks'"),
        ("-Slow failure", "expected a list item '- …' under '## Risks'"),
        ("1. Slow failure", "expected a list item '- …' under '## Risks'"),
        ("-", "empty list item under '## Risks'"),
        ("*   ", "empty list item under '## Risks'"),
        ("## Notes", "unexpected section '## Notes'; only '## Risks' and '## Mitigations' follow the proposal"),
        ("# Title", "unexpected section"),
        ("## Risks", "'## Risks' appears twice (first on line 37)"),
    ],
)
def test_bad_risk_item(line, phrase):
    assert_error(edited(l38=line), 38, phrase)


def test_bad_mitigation_item():
    assert_error(edited(l43="text"), 43, "expected a list item '- …' under '## Mitigations'")
    assert_error(edited(l43="## Mitigations"), 43, "'## Mitigations' appears twice (first on line 42)")
    assert_error(edited(l42="## Mitigations\n  dangling"), 43, "under '## Mitigations'")


def test_list_items_star_and_continuation_lines():
    report = parse_report(edited(l39="* Star item\n    continued here\n\n\tand here"))
    assert report.risks == (
        "Slow failure: unnoticed degradation accumulating by 2028-01-02",
        "Star item continued here and here",
        "Incentive drift: stakeholders habituate to optimistic outputs, raising risk of silent defects",
    )


def test_empty_lists_are_allowed():
    report = parse_report("\n".join(SEED_LINES[:36] + ["## Risks", "## Mitigations", ""]))
    assert report.risks == () and report.mitigations == ()
