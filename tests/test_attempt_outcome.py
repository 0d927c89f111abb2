"""domain/attempts.outcome_label (issue 16, review point 5): an attempt put back after an
error reads "failed → retry", one the lease reaper ended "lease lost", one put back
without an error "requeued" — never "queued", which reads as if it had not failed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fsar_tui.domain.attempts import Attempt, outcome_label

AT = datetime(2026, 1, 2, tzinfo=UTC)
REAPED = "lease expired at 2026-01-02 00:00:00+00: worker w-1 stopped renewing (attempt 1)"


@pytest.mark.parametrize(
    ("outcome", "error", "label"),
    [
        ("queued", "openai.RateLimitError: 429", "failed → retry"),
        ("queued", REAPED, "lease lost"),
        ("failed", REAPED, "lease lost"),  # the last attempt's lease ran out: failed for good
        ("queued", None, "requeued"),  # an operator's requeue, or before revision 0022
        ("failed", "ValueError: bad diff", "failed"),
        ("succeeded", None, "succeeded"),
        ("cancelled", None, "cancelled"),
        ("running", None, "running"),
    ],
)
def test_an_attempt_says_how_it_ended(outcome, error, label):
    ended = None if outcome == "running" else AT
    assert outcome_label(Attempt(1, "w-1", AT, AT, ended, outcome, error, error is not None)) == label
