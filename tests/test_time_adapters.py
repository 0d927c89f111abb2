"""Times Python cannot hold load clamped, not as a failed read (db/time_adapters.py): an
executing side may write 'infinity', year 20000 or a BC date into created_at / at, and
PostgreSQL accepts them; before, one such row made `tasks list`, `tasks show` and the
screens that read it fail with "timestamp too large (after year 10K)"."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.db.connect import connect
from support.sql import x

TZ_MAX, TZ_MIN = datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)
CASES = [
    ("'infinity'::timestamptz", TZ_MAX),
    ("'-infinity'::timestamptz", TZ_MIN),
    ("'20000-01-01 00:00+00'::timestamptz", TZ_MAX),
    ("'4713-01-01 00:00+00 BC'::timestamptz", TZ_MIN),
    ("'infinity'::timestamp", datetime.max),
    ("'0044-03-15 BC'::timestamp", datetime.min),
    ("'infinity'::date", date.max),
    ("'-infinity'::date", date.min),
    ("'12345-06-07'::date", date.max),
    ("'2026-11-30 12:34:56.789+00'::timestamptz", datetime(2026, 11, 30, 12, 34, 56, 789000, tzinfo=UTC)),
    ("'9999-12-31'::date", date(9999, 12, 31)),
]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_out_of_range_times_load_clamped_and_the_rest_exactly(db_dsn, binary):
    with connect(db_dsn) as conn:
        for expr, want in CASES:
            got = conn.cursor(binary=binary).execute(f"SELECT {expr}").fetchone()
            assert got is not None
            assert got[0] == want, expr


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_every_time_python_can_hold_loads_unchanged(server_dsn, when):
    with connect(server_dsn) as conn:
        for binary in (False, True):
            got = conn.cursor(binary=binary).execute("SELECT %s::timestamptz", (when,)).fetchone()
            assert got is not None and got[0] == when


def test_a_task_created_at_infinity_lists_and_shows(db_dsn, run_cli):
    x(
        db_dsn,
        "INSERT INTO execution_tasks (id, task_type, status, created_at, queued_at) "
        "VALUES (7, 'implement_idea', 'queued', 'infinity', '20000-01-01')",
    )
    listed = run_cli("tasks", "list", "--dsn", db_dsn)
    assert listed.returncode == 0, listed.stderr
    assert "9999-12-31 23:59:59" in listed.stdout and "1 task" in listed.stdout
    shown = run_cli("tasks", "show", "7", "--dsn", db_dsn)
    assert shown.returncode == 0 and "created   9999-12-31 23:59:59 UTC" in shown.stdout, shown.stderr


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_clock_time_always_shows_four_digit_years(at):
    from fsar_tui.domain.formatting import clock_time

    shown = clock_time(at)
    assert shown[:4] == f"{at.year:04d}" and shown[4] == "-"
    assert shown[5:] == at.strftime("%m-%d %H:%M:%S")


def test_a_task_queued_at_minus_infinity_shows_year_one_as_a_date(db_dsn, run_cli):
    x(
        db_dsn,
        "INSERT INTO execution_tasks (id, task_type, status, created_at, queued_at) "
        "VALUES (8, 'implement_idea', 'queued', '-infinity', '-infinity')",
    )
    shown = run_cli("tasks", "show", "8", "--dsn", db_dsn)
    assert shown.returncode == 0 and "created   0001-01-01 00:00:00 UTC" in shown.stdout, shown.stdout
