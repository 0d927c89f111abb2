"""domain/markdown.md_escape and the Markdown report (issue 16, review point 10): names
someone else wrote — gate names, proposal ids, ideas, task types, reasons — read in any
CommonMark / GFM renderer exactly as written: no link, emphasis, code, HTML, entity,
strikethrough or table cell of their own. Checked by parsing with markdown-it-py (the
CommonMark parser Rich uses), in a sentence, a table cell and at a line's start."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from fsar_tui import cli
from fsar_tui.domain.markdown import md_escape
from support.sql import x

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
# Text that reaches a report: control characters are gone (safe_str); Markdown's own
# characters, brackets, entities and every other printable one are likely.
untrusted = st.text(
    st.one_of(st.sampled_from(list("\\`*_[]()<>|~&!#-+=.:;/ 1a\n")), st.characters(blacklist_categories=("Cc", "Cs"))),
    max_size=40,
)


def flat(text: str) -> str:
    return re.sub(r"\r\n|[\r\n\u2028\u2029\x85\v\f]", " ", text)


def inline_tokens(source: str) -> list:
    """The inline tokens of the one block `source` parses to."""
    inlines = [t for t in MD.parse(source) if t.type == "inline"]
    assert len(inlines) == 1, source
    return inlines[0].children or []


def text_of(children: list) -> str:
    assert all(t.type == "text" for t in children), [(t.type, t.content) for t in children]
    return "".join(t.content for t in children)


@given(untrusted)
def test_a_name_in_a_sentence_reads_as_written(name):
    source = f"gate {md_escape(name)} failed"
    assert text_of(inline_tokens(source)) == f"gate {flat(name)} failed".strip()


@given(untrusted)
def test_a_name_in_a_table_cell_stays_in_its_cell(name):
    tokens = MD.parse(f"| name | verdict |\n|---|---|\n| {md_escape(name)} | fail |\n")
    cells = [t for t in tokens if t.type == "inline"]
    assert len(cells) == 4  # two header cells, two body cells: no "|" of the name made more
    assert text_of(cells[2].children or []) == flat(name).strip()
    assert text_of(cells[3].children or []) == "fail"


@given(untrusted.filter(lambda s: flat(s)[:1] not in (" ", "\t") and flat(s).strip()))
def test_a_name_at_the_start_of_a_line_opens_no_block(name):
    tokens = MD.parse(md_escape(name))
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], name
    assert text_of(tokens[1].children or []) == flat(name).strip()


def test_examples():
    assert md_escape("[@click=app.quit]zz[/]_x") == r"\[@click=app.quit\]zz\[/\]\_x"
    assert md_escape("idea_one") == r"idea\_one"
    assert md_escape("a|b\nc") == r"a\|b c"
    assert md_escape("# not a heading") == r"\# not a heading"
    assert md_escape("1. not a list") == r"1\. not a list"
    assert md_escape("plain name 2.0") == "plain name 2.0"


HOSTILE = {
    "gate": "[@click=app.quit]zz[/]_" + "x" * 20,
    "proposal": "fsar_[docs](https://evil.example)_`x`",
    "task_type": "implement|idea <b>",
    "idea": "_idea_ *bold* ~~gone~~ &amp;",
}


def hostile_names(dsn: str) -> None:
    """The reviewer's report: a gate, a blocking proposal and a disputed idea, each named
    by someone else."""
    from datetime import UTC, datetime, timedelta

    from test_fraud import charge, ledger

    x(
        dsn,
        "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold, hard) "
        "VALUES (%s, 'failure_rate', '1 day', '<', 0.2, true)",
        (HOSTILE["gate"],),
    )
    x(
        dsn,
        "INSERT INTO fsar_proposals (id, reported_at, severity, block_execution, task_type, body, source_sha256) "
        "VALUES (%s, now(), 9, true, %s, 'x', repeat('a', 64))",
        (HOSTILE["proposal"], HOSTILE["task_type"]),
    )
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)  # today, UTC: in the report's 1d
    ledger(dsn, [charge(day + timedelta(minutes=i), f"cus_{i}", HOSTILE["idea"]) for i in range(20)])
    ledger(dsn, [("dispute", day + timedelta(minutes=30 + i), f"cus_{i}", HOSTILE["idea"], {}) for i in range(2)])


@pytest.mark.services
def test_the_markdown_report_shows_every_name_as_written(db_dsn, capsys):
    hostile_names(db_dsn)
    assert cli.main(["report", "--dsn", db_dsn, "--period", "1d"]) == 0
    md = capsys.readouterr().out
    tokens = MD.parse(md)
    inline = [c for t in tokens if t.type == "inline" for c in (t.children or [])]
    kinds = {t.type for t in inline}
    # Only the report's own **BLOCKING**: no link, emphasis, code, HTML or strikethrough of a name's.
    assert kinds <= {"text", "softbreak", "strong_open", "strong_close"}, kinds
    plain = "\n".join("".join(c.content for c in t.children or []) for t in tokens if t.type == "inline")
    assert plain.count("BLOCKING") == 1
    for name in HOSTILE.values():
        assert name in plain, (name, md)
