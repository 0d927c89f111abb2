"""The filter language (pure): examples, errors, and a round-trip property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain.durations import parse_duration
from fsar_tui.domain.task_filter import STATUSES, FilterError, TaskFilter, parse_filter


def test_issue_example():
    f = parse_filter("status:failed type:self_improvement model:gpt-4o since:2h error~timeout")
    assert f == TaskFilter(
        statuses=("failed",), types=("self_improvement",), models=("gpt-4o",), since_s=7200, error_contains="timeout"
    )


def test_command_mode_equals_lists_quotes_and_bare_words():
    f = parse_filter('status=failed,cancelled error~"connection refused" id:4,5 429')
    assert f.statuses == ("failed", "cancelled") and f.ids == (4, 5)
    assert f.error_contains == "connection refused 429"
    assert parse_filter("").empty


@pytest.mark.parametrize(
    "text,message",
    [
        ("status:exploded", "unknown status 'exploded'"),
        ("colour:red", "unknown filter key 'colour'"),
        ("since:yesterday", "bad duration"),
        ("type~foo", "does not support ~"),
        ('error~"open', "unbalanced quotes"),
        ("id:abc", "expects numbers"),
        ("status:", "needs a value"),
    ],
)
def test_errors_name_the_problem(text, message):
    with pytest.raises(FilterError, match=message):
        parse_filter(text)


def test_durations():
    assert [parse_duration(d) for d in ("45s", "15m", "2h", "7d", "1w")] == [45, 900, 7200, 604800, 604800]


words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=",\x00"), min_size=1, max_size=12
).filter(lambda s: s.strip() == s and s != "")
filters = st.builds(
    TaskFilter,
    statuses=st.lists(st.sampled_from(STATUSES), unique=True, max_size=3).map(tuple),
    types=st.lists(words, unique=True, max_size=2).map(tuple),
    models=st.lists(words, unique=True, max_size=2).map(tuple),
    ids=st.lists(st.integers(min_value=1, max_value=10**9), unique=True, max_size=3).map(tuple),
    priorities=st.lists(st.integers(min_value=-32768, max_value=32767), unique=True, max_size=3).map(tuple),
    since_s=st.none() | st.integers(min_value=1, max_value=10**7),
    error_contains=st.none() | words,
    payload_contains=st.none() | words,
)


@given(filters)
def test_round_trip(f):
    assert parse_filter(f.to_query()) == f


def test_a_window_is_a_positive_duration():
    from fsar_tui.domain.durations import DurationError, parse_window

    assert parse_window("36h") == 36 * 3600
    for bad in ("0h", "soon", ""):
        with pytest.raises(DurationError):
            parse_window(bad)


def test_priority_filter():
    assert parse_filter("priority:0,-1 status:queued").priorities == (0, -1)
    for bad in ("priority:high", "priority:99999", "priority:1.5"):
        with pytest.raises(FilterError, match="priority: expects integers"):
            parse_filter(bad)
