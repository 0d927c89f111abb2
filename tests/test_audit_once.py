"""The audit pass runs once per interval in total, however many panels are open (issue 18,
point 4): the app's pass skips the evaluation when another panel's verdicts are younger
than its `min_interval_s`; callers without it (audit run's twin, the tests) evaluate."""

from __future__ import annotations

from fsar_tui.services.audit_pass import CHECK_EVERY_S, PASS_SLACK_S, scheduled_check
from support.sql import q, x

INTERVAL = CHECK_EVERY_S - PASS_SLACK_S  # what the app passes


def runs(dsn: str) -> int:
    return q(dsn, "SELECT count(*) FROM audit_runs")[0][0]


def test_a_second_panels_pass_within_the_interval_reads_the_first_ones_verdicts(db_dsn):
    enabled = q(db_dsn, "SELECT count(*) FROM audit_gates WHERE enabled")[0][0]
    first = scheduled_check(db_dsn, read_only=False, min_interval_s=INTERVAL)
    assert first.gates_evaluated == enabled and runs(db_dsn) == enabled
    # Another panel, a moment later: not its turn, nothing recorded twice.
    second = scheduled_check(db_dsn, read_only=False, min_interval_s=INTERVAL)
    assert second.gates_evaluated is None and runs(db_dsn) == enabled
    assert second.rehearsed  # its own rollback rehearsals still ran
    # An interval later (the verdicts aged by it), the next pass evaluates again.
    x(db_dsn, "UPDATE audit_runs SET at = at - make_interval(secs => %s)", (CHECK_EVERY_S,))
    third = scheduled_check(db_dsn, read_only=False, min_interval_s=INTERVAL)
    assert third.gates_evaluated == enabled and runs(db_dsn) == 2 * enabled
    # Without an interval (as the tests and direct callers), every pass evaluates.
    assert scheduled_check(db_dsn, read_only=False).gates_evaluated == enabled
