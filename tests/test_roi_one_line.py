"""Agent-written names on one line (issue 17 review, point 8): a line break in a model name
or an idea id must not split the "attempts without a price" notice, the "unattributed"
line or a breakdown row — in `roi`'s table, the report's Markdown and on screen 3 at 80×24.
sanitize.one_line shows each line break as ␤."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.domain.sanitize import NEWLINE_MARK, has_unsafe, one_line, strip_controls
from support.pilot import make_app, until
from support.sql import q, x
from test_exact_cost import claim_at, end, new_task, summary_laid_out

MODEL = "gpt-4o\nFORGED LINE"
IDEA = "idea_q\nFORGED ROW"


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_one_line_is_one_safe_line(text):
    line = one_line(text)
    assert "\n" not in line and len(line.splitlines()) <= 1
    assert not has_unsafe(line)
    assert line.count(NEWLINE_MARK) - text.count(NEWLINE_MARK) == strip_controls(text).count("\n")
    if not any(c in text for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        assert line == strip_controls(text)  # nothing else changes


def test_one_line_marks_each_break():
    assert one_line("a\nb\r\nc") == "a␤b␤c"
    assert one_line("a\u2028b") == "a b" and one_line("a\x1b[2Jb") == "ab"


def hostile_names(dsn: str) -> None:
    """A task of a model with no price (two attempts with tokens), whose model name has a
    line break; revenue of an idea (id with a line break) nobody implemented."""
    (now,) = q(dsn, "SELECT now()")[0]
    task = new_task(dsn, MODEL)
    x(dsn, "UPDATE execution_tasks SET idea_id = %s WHERE id = %s", (IDEA, task))
    claim_at(dsn, task, now - timedelta(minutes=30))
    end(dsn, task, "queued", 5_000, 500, None)
    claim_at(dsn, task, now - timedelta(minutes=10))
    end(dsn, task, "failed", 5_000, 500, now - timedelta(minutes=5))
    x(
        dsn,
        """INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id)
              VALUES ('test', 'r-1', 'revenue', 500, 'USD', now() - interval '1 hour', %s)""",
        (IDEA,),
    )


def test_roi_keeps_names_with_line_breaks_on_one_line(db_dsn, run_cli):
    hostile_names(db_dsn)
    for by in ("type", "model", "idea"):
        out = run_cli("roi", "--dsn", db_dsn, "--window", "2d", "--by", by)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert not [line for line in lines if line.startswith("FORGED")], out.stdout
        (unpriced,) = [line for line in lines if "without a price" in line]
        assert "gpt-4o␤FORGED LINE ×2" in unpriced
        (unattributed,) = [line for line in lines if line.startswith("unattributed")]
        assert "idea_q␤FORGED ROW" in unattributed
        if by == "idea":
            assert any(line.startswith("idea_q␤FORGED ROW ") for line in lines), out.stdout
    report = run_cli("report", "--dsn", db_dsn, "--period", "2d", "--format", "md")
    assert report.returncode == 0, report.stderr
    assert not [line for line in report.stdout.splitlines() if line.startswith("FORGED")]


async def test_screen_3_keeps_names_with_line_breaks_on_one_line(db_dsn):
    hostile_names(db_dsn)
    app = make_app(db_dsn)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: app.session.ready)
        await pilot.press("3")
        assert await until(pilot, lambda: summary_laid_out(app))
        summary = app.screen.query_one("#summary").content.plain
        first, *rest = summary.splitlines()
        assert "gpt-4o␤FORGED LINE ×2" in first and not any(line.startswith("FORGED") for line in rest)
        await pilot.press("b")  # by model: the breakdown is redrawn as the key is handled
        assert await until(pilot, lambda: app.screen.by == "model")
        table = app.screen.query_one("#breakdown")
        keys = [table.get_row(k)[1].plain for k in table.keys]
        assert table.column_names[1] == "model" and keys, keys
        assert not [k for k in keys if "\n" in k], keys
