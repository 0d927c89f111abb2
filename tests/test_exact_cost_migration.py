"""Revision 0024 on a database holding costed history (issue 17 point 1, "Existing rows: a
migration recomputes what can be recomputed from tokens and prices, and says what it could
not"): single-attempt tasks repriced exactly, retried ones kept and their waste derived, an
unpriced attempt counted, the rollups equal to a recount, the counts printed by `migrate`,
and the way back down rounding to whole minor units."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fsar_tui.db import migrations
from fsar_tui.db.roi import COST_DRIFT_SQL
from support.sql import q, x

pytestmark = pytest.mark.services

BEFORE = "0023_explicit_tick"
TASK = (
    "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, max_attempts, queued_at, started_at, "
    "finished_at, worker_id, input_tokens, output_tokens, cost_minor, currency, compute_cost_minor) VALUES "
    "('implement_idea', %s, %s, %s, 3, now() - interval '2 hours', now() - interval '1 hour', "
    "now() - interval '1 hour' + interval '90 seconds', 'w1', %s, %s, %s, %s, %s) RETURNING id"
)


def add(dsn, model, status, attempt, tokens_in, tokens_out, cost, compute) -> int:
    currency = "USD" if cost is not None else None
    return q(dsn, TASK, (model, status, attempt, tokens_in, tokens_out, cost, currency, compute))[0][0]


def test_history_is_repriced_where_it_can_be_and_the_rest_said(empty_dsn, run_cli):
    migrations.migrate(empty_dsn, BEFORE)
    x(
        empty_dsn,
        "INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, effective_from) "
        "VALUES ('mini', 'USD', 15, 60, now() - interval '1 day')",
    )
    x(
        empty_dsn,
        "INSERT INTO compute_rates (currency, minor_per_hour, effective_from) "
        "VALUES ('USD', 7, now() - interval '1 day')",
    )
    # Before 0024 a cheap attempt was rounded to whole minor units: 0.045 stored as 0.
    cheap = add(empty_dsn, "mini", "succeeded", 1, 1000, 500, 0, 0)
    retried_ok = add(empty_dsn, "mini", "succeeded", 2, 200_000, 100_000, 21, 1)
    failed = add(empty_dsn, "mini", "failed", 3, 1000, 1000, 7, 1)
    unpriced = add(empty_dsn, "no-such-price", "succeeded", 1, 10, 10, None, None)

    out = run_cli("migrate", "--dsn", empty_dsn)
    assert out.returncode == 0, out.stderr
    assert "3 repriced exactly" not in out.stdout  # only single-attempt tasks are
    assert "1 repriced exactly" in out.stdout and "2 kept as their old whole-minor-unit sum" in out.stdout
    assert "1 finished attempt(s) with tokens but no price in force" in out.stdout

    sql = "SELECT id, cost_minor, compute_cost_minor, waste_minor, unpriced_attempts FROM execution_tasks"
    rows = {r[0]: r[1:] for r in q(empty_dsn, sql)}
    run_90s = Decimal(90) * 7 / 3600  # 0.175
    assert rows[cheap] == (Decimal("0.045"), run_90s, None, 0)  # 1000 × 15 + 500 × 60 per million
    # Retried: the old sums stay (earlier attempts' tokens were never kept); the waste is
    # the sum less the last attempt recomputed: 200k × 15 + 100k × 60 per million = 9.
    assert rows[retried_ok][:2] == (21, 1) and rows[retried_ok][2] == 21 + 1 - 9 - run_90s
    assert rows[failed][2] == 8  # all of a failed task is waste
    assert rows[unpriced] == (None, None, None, 1)
    assert q(empty_dsn, COST_DRIFT_SQL) == []  # the rollups moved with the tasks

    migrations.downgrade(empty_dsn, BEFORE)
    assert q(empty_dsn, "SELECT cost_minor, compute_cost_minor FROM execution_tasks WHERE id = %s", (cheap,)) == [
        (0, 0)
    ]
    migrations.migrate(empty_dsn)


MID = (
    "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, max_attempts, queued_at, started_at, "
    "worker_id, cost_minor, currency, compute_cost_minor) VALUES ('implement_idea', 'mini', %s, %s, 3, "
    "now() - interval '2 hours', %s, %s, %s, 'USD', %s) RETURNING id"
)


def test_tasks_mid_retry_keep_their_cost_as_waste(empty_dsn, run_cli):
    """A task queued again after an attempt, or running a later one, at the upgrade: the
    cost it carries is of attempts that did not succeed — all waste, none dropped."""
    migrations.migrate(empty_dsn, BEFORE)
    queued = q(empty_dsn, MID, ("queued", 1, None, None, 12, 2))[0][0]
    now = datetime.now(UTC)
    running = q(empty_dsn, MID, ("running", 2, now, "w1", 30, 3))[0][0]
    fresh = q(empty_dsn, MID, ("running", 1, now, "w1", None, None))[0][0]

    out = run_cli("migrate", "--dsn", empty_dsn)
    assert out.returncode == 0, out.stderr
    assert "2 kept as their old whole-minor-unit sum" in out.stdout and "of which 2 mid-retry" in out.stdout
    assert "(more than one attempt:" not in out.stdout  # the queued attempt-1 task had one

    sql = "SELECT id, cost_minor, compute_cost_minor, waste_minor FROM execution_tasks"
    rows = {r[0]: r[1:] for r in q(empty_dsn, sql)}
    assert rows[queued] == (12, 2, 14)
    assert rows[running] == (30, 3, 33)
    assert rows[fresh] == (None, None, None)
    assert q(empty_dsn, COST_DRIFT_SQL) == []
