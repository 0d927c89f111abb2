"""The canary rules that are not statistics: what artifact may be deployed, what steps mean,
what the judge does with a verdict, how a stored judgement reads (domain/canary.py,
domain/canary_view.py), and the canary bucket the claim computes in SQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain.canary import (
    MAX_ARTIFACT_BYTES,
    ArtifactError,
    StepsError,
    next_move,
    parse_artifact,
    parse_steps,
    staleness,
)
from fsar_tui.domain.canary_view import metric_rows

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": 1e400}', "infinity"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"a": "x\\u0000y"}', "NUL"),
        (b'{"a": "\\ud800"}', "surrogate"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested deeper"),
        (b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}", "nested deeper"),
        (b'{"a": "' + b"x" * MAX_ARTIFACT_BYTES + b'"}', "at most 1,048,576"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_bad_artifacts_are_refused_with_one_line(data, why):
    with pytest.raises(ArtifactError) as refused:
        parse_artifact(data)
    assert why in str(refused.value) and "\n" not in str(refused.value)


def test_a_good_artifact_is_read_as_is():
    artifact = {"prompt_version": "v9", "simulate": {"failure_rate_multiplier": 2}, "ünï": [1, 2.5, None]}
    assert parse_artifact(json.dumps(artifact).encode()) == artifact


@pytest.mark.parametrize(
    ("text", "first", "steps"),
    [
        ("10,50,100", None, [10, 50, 100]),
        ("100", 10, [10, 100]),
        ("50,100", 20, [20, 50, 100]),
        (" 5 , 100", None, [5, 100]),
    ],
)
def test_steps(text, first, steps):
    assert parse_steps(text, first) == steps


@pytest.mark.parametrize(
    "text", ["10,50", "50,10,100", "0,100", "10,10,100", "x", "", "10,101", ",".join(["5"] * 21), "10,,100", "10,100,"]
)
def test_bad_steps(text):
    with pytest.raises(StepsError):
        parse_steps(text)


def _move(verdict, *, started=T0, interval=0, manual=False, now=T0 + timedelta(minutes=1)):
    return next_move(
        verdict, why="why", step_started_at=started, interval_s=interval, manual=manual, now=now, weight=20
    )


def test_the_judges_moves():
    assert _move("fail").action == "abort"
    assert _move("fail", manual=True, interval=3600).action == "abort"  # an abort never waits
    assert _move("pass").action == "promote"
    held = _move("pass", interval=3600)
    assert held.action is None and "interval" in (held.hold or "")
    manual = _move("pass", manual=True)
    assert manual.action is None and "operator" in (manual.hold or "")
    for verdict in ("inconclusive", "error"):
        move = _move(verdict)
        assert move.action is None and "held at 20 %" in (move.hold or "")


def test_staleness():
    assert staleness(T0, T0, T0 + timedelta(seconds=60)) is None
    assert "min ago" in (staleness(T0, T0, T0 + timedelta(minutes=10)) or "")
    assert "no analysis" in (staleness(None, T0, T0 + timedelta(minutes=10)) or "")
    # A slow canary: the audit pass runs (the judge waits for attempts) — not stale.
    later = T0 + timedelta(minutes=10)
    assert staleness(T0, T0, later, pass_at=later - timedelta(seconds=30)) is None
    assert "min ago" in (staleness(T0, T0, later, pass_at=T0 + timedelta(minutes=1)) or "")


@given(
    st.recursive(
        st.none() | st.text() | st.floats() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_metric_rows_of_any_stored_judgement_never_raise(judgement):
    rows = metric_rows(judgement if isinstance(judgement, dict) else {"metrics": judgement})
    assert all(len(r) == 6 and all(isinstance(c, str) for c in r) for r in rows)


def test_metric_rows_strip_controls_and_markup_stays_text():
    rows = metric_rows(
        {
            "metrics": [
                {
                    "metric": "gate:\x1b[2J[red]x",
                    "verdict": "fail",
                    "canary": 0.2,
                    "stable": 0.1,
                    "effect": 2.0,
                    "ci": [1.5, 2.6],
                    "why": "\x07boom",
                }
            ]
        }
    )
    (name, verdict, canary, stable, effect, why) = rows[0]
    assert "\x1b" not in name and "[red]" in name and "\x07" not in why
    assert (canary, stable, effect) == ("0.2", "0.1", "×2.00 [1.50–2.60]")


def test_control_topics_keep_levels_but_not_wildcards():
    from fsar_tui.domain.events import topic_segment

    assert topic_segment("prompt/implement_idea") == "prompt/implement_idea"
    assert topic_segment("x+#\x00\x1b y") == "x%2B%23%00%1B%20y"
    assert len(topic_segment("é" * 1000)) <= 200 * 6


def test_an_unpriced_fleet_is_judged_without_cost_and_can_pass():
    from decimal import Decimal

    from fsar_tui.domain.canary_judge import ArmSample, decide, judge
    from fsar_tui.domain.histogram import bucket

    def arm(revision, priced):
        run = {bucket(12_000 * (1 + i / 50)): 40 for i in range(50)}
        tok = {bucket(90_000 * (1 + i / 50)): 40 for i in range(50)}
        cost = Decimal(2000 * 40) if priced else Decimal(0)
        return ArmSample(revision, 2_100, 100, run, tok, 2_000, 1_900, cost, cost * 40, cost, "USD" if priced else None)

    unpriced = judge(arm(3, False), arm(2, False))
    assert "cost_per_success" not in {m.metric for m in unpriced.metrics} and "not judged" in unpriced.summary
    assert unpriced.verdict == decide(arm(3, False), arm(2, False))
    one_side = judge(arm(3, False), arm(2, True))  # prices on one side only: it holds
    cost = next(m for m in one_side.metrics if m.metric == "cost_per_success")
    assert cost.verdict == "inconclusive" and one_side.verdict != "pass"


def test_status_lines_are_bounded_and_inert_whatever_was_stored():
    from fsar_tui.domain.canary import Canary
    from fsar_tui.domain.canary_view import status_lines

    huge = "\x1b]52;c;AAAA\x07[red]" + "r" * 10_000
    judgement = {
        "verdict": "pass",
        "summary": huge,
        "metrics": [{"metric": "gate:" + huge, "verdict": "pass", "why": huge}],
    }
    c = Canary(
        1,
        huge,
        "x",
        "running",
        3,
        2,
        3,
        2,
        [10, 100],
        0,
        10,
        0,
        False,
        T0,
        huge,
        huge,
        T0,
        None,
        None,
        None,
        judgement,
        T0,
        huge,
        huge,
        None,
        T0 + timedelta(minutes=1),
    )
    lines = status_lines(c)
    assert all(len(line) <= 400 and "\x1b" not in line and "\x07" not in line for line in lines)
    assert any("recorded by" in line for line in lines)
