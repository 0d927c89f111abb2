"""Error grouping and attempts (pure): examples, and properties — normalising is idempotent,
and messages that differ only in numbers and ids fall in one group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain.attempts import attempts
from fsar_tui.domain.error_groups import NO_ERROR, Failure, filter_fragment, group_errors, headline, normalise
from fsar_tui.domain.sanitize import safe_str
from fsar_tui.domain.task_filter import parse_filter

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "message,key",
    [
        ("TimeoutError: call 123 exceeded 120s", "TimeoutError: call <n> exceeded <n>s"),
        ("TimeoutError: call 456 exceeded 120s", "TimeoutError: call <n> exceeded <n>s"),
        ("pytest: 3 failed, 41 passed in 12.4s", "pytest: <n> failed, <n> passed in <n>s"),
        (
            'psycopg.errors.UndefinedColumn: column "ai_model" of relation "execution_tasks" does not exist',
            "psycopg.errors.UndefinedColumn: column <str> of relation <str> does not exist",
        ),
        ("KeyError: 'task-17'", "KeyError: <str>"),
        ("can't reach `db-3` (it's down)", "can't reach <str> (it's down)"),
        ("lost task 3fa85f64-5717-4562-b3fc-2c963f66afa6 on w-2", "lost task <uuid> on w-<n>"),
        ("object at 0x7f3a2c1e9d80 is gone", "object at <n> is gone"),
        ("commit 9fceb02d0ae598e95dc970b74767f19372d61af8 rejected", "commit <n> rejected"),
        ("blob deadbeefcafebabe0 and word facade stay", "blob <n> and word facade stay"),
        ("  spaced\t out   text  ", "spaced out text"),
    ],
)
def test_normalise_examples(message, key):
    assert normalise(message) == key


def test_headline_is_the_first_line_or_a_tracebacks_exception():
    assert headline("\n  RuntimeError: boom \nsecond line") == "RuntimeError: boom"
    tb = 'Traceback (most recent call last):\n  File "x.py", line 3, in f\n    g()\nValueError: bad 42\n'
    assert headline(tb) == "ValueError: bad 42"
    assert headline(None) == "" and headline(" \n ") == ""
    assert len(headline("x" * 5000)) == 300


def test_issue_example_groups_two_timeouts_with_counts_and_the_newest_task():
    failures = [
        Failure(11, T0, "TimeoutError: call 123 exceeded 120s"),
        Failure(12, T0 + timedelta(seconds=5), "TimeoutError: call 456 exceeded 120s"),
        Failure(13, T0 + timedelta(seconds=1), "RateLimitError: 429", count=1),
        Failure(14, T0 + timedelta(seconds=2), None),
    ]
    groups = group_errors(failures)
    assert [(g.key, g.count, g.newest_task_id) for g in groups] == [
        ("TimeoutError: call <n> exceeded <n>s", 2, 12),
        (NO_ERROR, 1, 14),  # as frequent as the next, newer
        ("RateLimitError: <n>", 1, 13),
    ]
    assert groups[0].example == "TimeoutError: call 456 exceeded 120s"
    assert groups[0].fragment == "TimeoutError: call"
    assert groups[1].fragment is None
    assert parse_filter(f"error~{groups[0].fragment!r}").error_contains == "TimeoutError: call"


def test_secrets_are_redacted_before_their_digits_go():
    groups = group_errors([Failure(1, T0, "auth failed for key sk_live_4eC39HqLyjWDarjtT1zdp7dc")], safe_str)
    assert "HqLyjWDarjtT" not in groups[0].key and "REDACTED" in groups[0].key
    # The filter never carries redacted text: the fragment is typed in the stored error.
    assert groups[0].fragment == "auth failed for key"


def test_fragment_must_be_in_the_message_as_typed():
    assert filter_fragment("a <n> b", "a 1 b") is None  # no piece of 3 characters with a letter
    # Two spaces where the group has one: the longest run of words the message holds as typed.
    assert filter_fragment("Timeout talking to <str>", "Timeout  talking to 'x'") == "talking to"


def test_rows_already_counted_together_add_up():
    groups = group_errors([Failure(1, T0, "x 1", count=40), Failure(2, T0, "x 2", count=2)])
    assert [(g.key, g.count, g.newest_task_id) for g in groups] == [("x <n>", 42, 2)]


# -- properties ----------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80) | st.text(
    "0123456789abcdefABx'\"` -._<>ns\n\t", max_size=60
)  # any text, and text made of what the passes look for


@given(text)
def test_normalise_is_idempotent(message):
    once = normalise(message)
    assert normalise(once) == once


# Templates of words around slots; a slot holds a number, a hex id or a uuid — the same
# kind in both messages, different values.
word = st.text(st.characters(whitelist_categories=("L", "P", "Zs"), blacklist_characters="'\"`"), max_size=12)
hex_id = st.text("0123456789abcdef", min_size=8, max_size=40).filter(lambda s: any(c.isdigit() for c in s))
slot_kinds = {
    "n": st.integers(min_value=0, max_value=10**12).map(str),
    "hex": hex_id,
    "uuid": st.uuids().map(str),
}


@st.composite
def twin_messages(draw):
    words = draw(st.lists(word, min_size=1, max_size=5))
    kinds = draw(st.lists(st.sampled_from(sorted(slot_kinds)), min_size=len(words) - 1, max_size=len(words) - 1))
    a, b = [words[0]], [words[0]]
    for kind, w in zip(kinds, words[1:], strict=True):
        a += [" ", draw(slot_kinds[kind]), " ", w]
        b += [" ", draw(slot_kinds[kind]), " ", w]
    return "".join(a), "".join(b)


@given(twin_messages())
def test_messages_differing_only_in_numbers_and_ids_share_a_group(pair):
    a, b = pair
    assert normalise(a) == normalise(b)
    groups = group_errors([Failure(1, T0, a), Failure(2, T0, b)])
    assert len(groups) == 1 and groups[0].count == 2


# -- attempts from the trail -----------------------------------------------------------------


def ev(frm, to, attempt, worker, minutes, error=None):
    return {"from_status": frm, "to_status": to, "attempt": attempt, "worker_id": worker,
            "at": T0 + timedelta(minutes=minutes), "error": error}  # fmt: skip


def task(**kw):
    row = {"status": "failed", "attempt": 3, "worker_id": "w-c", "queued_at": T0, "started_at": T0,
           "finished_at": T0, "error": "third"}  # fmt: skip
    return row | kw


def test_three_attempts_each_with_its_recorded_error():
    events = [ev(None, "queued", 0, None, 0), ev("queued", "running", 1, "w-a", 1),
              ev("running", "queued", 1, "w-a", 2, "first"), ev("queued", "running", 2, "w-b", 3),
              ev("running", "queued", 2, "w-b", 4, "second"), ev("queued", "running", 3, "w-c", 5),
              ev("running", "failed", 3, "w-c", 6, "third")]  # fmt: skip
    got = attempts(events, task())
    assert [(a.number, a.worker_id, a.outcome, a.error, a.error_kept) for a in got] == [
        (1, "w-a", "queued", "first", True),
        (2, "w-b", "queued", "second", True),
        (3, "w-c", "failed", "third", True),
    ]
    assert got[1].queued_at == T0 + timedelta(minutes=2) and got[1].started_at == T0 + timedelta(minutes=3)


def test_a_trail_from_before_0022_keeps_only_the_last_error():
    events = [ev("queued", "running", 1, "w-a", 1), ev("running", "queued", 1, "w-a", 2),
              ev("queued", "running", 2, "w-b", 3), ev("running", "failed", 2, "w-b", 4)]  # fmt: skip
    got = attempts(events, task(attempt=2, error="last"))
    assert [(a.error, a.error_kept) for a in got] == [(None, False), ("last", True)]


def test_an_operator_requeue_does_not_take_the_attempt_befores_error():
    events = [ev("queued", "running", 1, "w-a", 1), ev("running", "queued", 1, "w-a", 2, "boom"),
              ev("queued", "running", 2, "w-b", 3), ev("running", "queued", 2, "w-b", 4)]  # fmt: skip
    got = attempts(events, task(status="queued", attempt=2, error="boom", finished_at=None))
    assert [(a.error, a.error_kept) for a in got] == [("boom", True), (None, False)]


def test_no_trail_one_attempt_from_the_row():
    got = attempts([], task(attempt=1))
    assert [(a.number, a.outcome, a.error) for a in got] == [(1, "failed", "third")]
    assert attempts([], task(attempt=0, started_at=None)) == []
