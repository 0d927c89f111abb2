"""ROI against a real database: the figures match an independent SQL computation to the
cent on a fixture with several currencies, refunds, disputes and unattributable revenue;
the cost rollups stay exact after edits, retries and deletes; costs are fixed at finish;
and the pure arithmetic (split, attribution) holds its invariants for any input."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.db import roi as roi_queries
from fsar_tui.db.connect import connect
from fsar_tui.domain import json_decimal, roi
from fsar_tui.services.roi_report import records
from support.sql import q, x

# (type, model, idea, currency, status, model cost, compute cost, days ago)
TASKS = [
    ("implement_idea", "gpt-4o", "idea_a", "USD", "succeeded", 1234, 100, 0),
    ("implement_idea", "gpt-4o", "idea_a", "USD", "failed", 999, 50, 1),
    ("implement_idea", "gpt-4o-mini", "idea_a", "USD", "succeeded", 17, 3, 2),
    ("idea_implementation", "claude-3-5-sonnet", "idea_a", "USD", "succeeded", 4321, 211, 0),
    ("idea_implementation", "gpt-4o", "idea_b", "EUR", "succeeded", 777, 23, 1),
    ("idea_implementation", "gpt-4o", "idea_b", "EUR", "cancelled", 5, 0, 1),
    ("implement_idea", "gpt-4o", "idea_c", "JPY", "succeeded", 31, 2, 0),
    ("self_improvement", "gpt-4o", None, "USD", "succeeded", 2500, 300, 0),
    ("self_improvement", "gpt-4o", None, "USD", "failed", 1800, 250, 3),
    ("implement_idea", "gpt-4o", "idea_a", "USD", "succeeded", 999_999, 1, 40),  # outside a 30-day window
]

# (kind, amount, currency, idea, days ago)
LEDGER = [
    ("revenue", 19_900, "USD", "idea_a", 0),
    ("payment_fee", -607, "USD", "idea_a", 0),
    ("revenue", 4_900, "USD", "idea_a", 2),
    ("refund", -4_900, "USD", "idea_a", 1),
    ("revenue", 9_900, "USD", "idea_a", 1),
    ("dispute", -9_900, "USD", "idea_a", 0),
    ("dispute_fee", -1_500, "USD", "idea_a", 0),
    ("dispute_won", 9_900, "USD", "idea_a", 0),
    ("revenue", 2_500, "EUR", "idea_b", 1),
    ("payment_fee", -103, "EUR", "idea_b", 1),
    ("revenue", 1_000, "JPY", "idea_c", 0),
    ("revenue", 3_333, "USD", "idea_z", 0),  # an idea with no tasks: unattributed
    ("revenue", 1_111, "USD", None, 0),  # no idea: unattributed
    ("revenue", 7_777, "GBP", "idea_a", 0),  # idea_a's tasks cost in USD only: attributed by those weights
    ("model_cost", -450, "USD", None, 1),  # an invoice that belongs to no task
    ("revenue", 50_000, "USD", "idea_a", 45),  # outside the window
]


def load_fixture(dsn: str) -> None:
    for task_type, model, idea, currency, status, cost, compute, ago in TASKS:
        x(
            dsn,
            """INSERT INTO execution_tasks (task_type, ai_model, idea_id, status, attempt, queued_at, started_at,
                                               finished_at, cost_minor, compute_cost_minor, currency)
                  VALUES (%s, %s, %s, %s, 1, now() - make_interval(days => %s, hours => 2),
                          now() - make_interval(days => %s, hours => 1), now() - make_interval(days => %s),
                          %s, %s, %s)""",
            (task_type, model, idea, status, ago, ago, ago, cost, compute, currency),
        )
    for i, (kind, amount, currency, idea, ago) in enumerate(LEDGER):
        x(
            dsn,
            """INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id)
                  VALUES ('test', %s, %s, %s, %s, now() - make_interval(days => %s), %s)""",
            (f"e{i}", kind, amount, currency, ago, idea),
        )


def read(dsn: str, days: int = 30) -> roi_queries.RoiData:
    with connect(dsn) as conn:
        return roi_queries.roi_data_sync(conn, *roi_queries.window_days(days))


INDEPENDENT_SQL = """
    WITH w AS (SELECT (now() AT TIME ZONE 'UTC')::date - 29 AS first),
    l AS (SELECT currency,
                 sum(amount_minor) FILTER (WHERE kind = 'revenue') AS revenue,
                 sum(amount_minor) FILTER (WHERE kind IN ('revenue', 'refund', 'dispute', 'dispute_won',
                                                          'dispute_fee', 'payment_fee')) AS net,
                 coalesce(-sum(amount_minor) FILTER (WHERE kind = 'model_cost'), 0) AS ledger_model
          FROM ledger_entries, w WHERE (occurred_at AT TIME ZONE 'UTC')::date >= w.first GROUP BY 1),
    t AS (SELECT currency, sum(cost_minor) AS model, sum(compute_cost_minor) AS compute,
                 count(*) FILTER (WHERE status = 'succeeded') AS ok,
                 sum(cost_minor + compute_cost_minor) FILTER (WHERE status <> 'succeeded') AS failed_cost
          FROM execution_tasks, w WHERE (finished_at AT TIME ZONE 'UTC')::date >= w.first GROUP BY 1)
    SELECT currency, coalesce(l.revenue, 0), coalesce(l.net, 0),
           coalesce(t.model, 0) + coalesce(l.ledger_model, 0), coalesce(t.compute, 0), coalesce(t.ok, 0),
           coalesce(t.failed_cost, 0)
    FROM l FULL JOIN t USING (currency) ORDER BY 1
"""


def test_roi_matches_an_independent_sql_computation_to_the_cent(db_dsn):
    load_fixture(db_dsn)
    data = read(db_dsn)
    figures = roi.summary(data.costs, data.ledger)
    expected = q(db_dsn, INDEPENDENT_SQL)
    assert [c for c, *_ in expected] == list(figures) == ["EUR", "GBP", "JPY", "USD"]
    for currency, revenue, net, model, compute, ok, failed_cost in expected:
        f = figures[currency]
        assert (f.revenue, f.net_revenue, f.model_cost, f.compute_cost, f.succeeded, f.failed_cost) == (
            revenue,
            net,
            model,
            compute,
            ok,
            failed_cost,
        ), currency
        assert f.profit == net - model - compute
    usd = figures["USD"]
    # Hand-checked: net revenue 19900-607+4900-4900+9900-9900-1500+9900+3333+1111 = 32137.
    assert usd.net_revenue == 32_137
    assert usd.model_cost == 1234 + 999 + 17 + 4321 + 2500 + 1800 + 450
    # cost per success: the tasks' AI cost (failures included) over successes, exact to
    # 10⁻⁶ minor units (rounded once, at display).
    task_cost = sum(c + k for _, _, _, cur, _, c, k, ago in TASKS if cur == "USD" and ago < 30)
    assert usd.cost_per_success == Decimal(task_cost) / 4 == Decimal("2946.25")


def test_attribution_splits_each_idea_exactly_and_keeps_unattributed_revenue(db_dsn):
    load_fixture(db_dsn)
    data = read(db_dsn)
    figures = roi.summary(data.costs, data.ledger)
    for dim in ("type", "model", "rollout", "idea"):
        rows = roi.breakdown(data.costs, data.ledger, dim)
        for currency, f in figures.items():
            mine = [r for (key, cur), r in rows if cur == currency]
            assert sum(r.profit for r in mine) == f.profit, (dim, currency)
            assert sum(r.net_revenue for r in mine) == f.net_revenue, (dim, currency)
    attribution = roi.attribute(data.costs, data.ledger)
    assert attribution.unattributed == {"USD": 3_333 + 1_111}
    assert sorted(attribution.reasons["USD"]) == ["(no idea): no idea", "idea_z: no task cost in the window"]
    # idea_a's USD net revenue (28,593 after refunds, disputes and fees) over its three
    # (type, model) groups by AI cost 1234+100+999+50=2383, 17+3=20, 4321+211=4532.
    idea_a = 19_900 - 607 + 4_900 - 4_900 + 9_900 - 9_900 - 1_500 + 9_900
    by_group = {k[0]: v for k, v in attribution.by_group.items() if k[1] == "USD"}
    assert sum(by_group.values()) == idea_a
    assert by_group[("implement_idea", "gpt-4o", 0)] == pytest.approx(idea_a * 2383 / 6935, abs=1)
    # GBP revenue of idea_a is split by its USD cost weights (proportions have no unit).
    assert sum(v for k, v in attribution.by_group.items() if k[1] == "GBP") == 7_777


def test_window_excludes_older_days_and_the_day_series_adds_up(db_dsn):
    load_fixture(db_dsn)
    data = read(db_dsn, days=2)
    assert data.last - data.first == timedelta(days=1)
    usd = roi.summary(data.costs, data.ledger)["USD"]
    assert usd.revenue == 19_900 + 9_900 + 3_333 + 1_111  # today and yesterday only
    days = roi.by_period(data.day_costs, data.day_ledger, weekly=False)
    assert sum(d.profit for d in days if d.currency == "USD") == usd.profit
    weeks = roi.by_period(data.day_costs, data.day_ledger, weekly=True)
    assert sum(d.profit for d in weeks if d.currency == "USD") == usd.profit
    assert all(w.day.weekday() == 0 for w in weeks)


def test_cost_rollups_stay_exact_after_edits_retries_and_deletes(db_dsn):
    load_fixture(db_dsn)
    assert q(db_dsn, roi_queries.COST_DRIFT_SQL) == []
    x(db_dsn, "UPDATE execution_tasks SET status = 'queued', finished_at = NULL WHERE status = 'failed'")  # retry
    x(db_dsn, "UPDATE execution_tasks SET compute_cost_minor = compute_cost_minor + 7 WHERE id % 2 = 0")
    x(db_dsn, "UPDATE execution_tasks SET idea_id = 'idea_b' WHERE idea_id = 'idea_c'")
    x(db_dsn, "DELETE FROM execution_tasks WHERE task_type = 'self_improvement'")
    assert q(db_dsn, roi_queries.COST_DRIFT_SQL) == []
    before = records(read(db_dsn), "type")
    x(db_dsn, "SELECT fsar_fold_duration_samples()")
    assert q(db_dsn, "SELECT count(*) FROM task_duration_samples") == [(0,)]
    assert q(db_dsn, roi_queries.COST_DRIFT_SQL) == []
    assert records(read(db_dsn), "type") == before  # pending samples were already counted
    x(
        db_dsn,
        "UPDATE cost_rollups SET model_cost_minor = model_cost_minor + 1 "
        "WHERE ctid = (SELECT min(ctid) FROM cost_rollups)",
    )
    assert q(db_dsn, roi_queries.COST_DRIFT_SQL) != []  # the check can fail


def test_ledger_daily_follows_inserts_updates_and_deletes(db_dsn):
    load_fixture(db_dsn)
    assert q(db_dsn, roi_queries.LEDGER_DRIFT_SQL) == []
    x(db_dsn, "UPDATE ledger_entries SET occurred_at = occurred_at - interval '3 days' WHERE kind = 'refund'")
    x(db_dsn, "UPDATE ledger_entries SET idea_id = 'idea_b' WHERE kind = 'dispute'")
    x(db_dsn, "DELETE FROM ledger_entries WHERE kind = 'payment_fee'")
    assert q(db_dsn, roi_queries.LEDGER_DRIFT_SQL) == []


def test_compute_cost_is_fixed_at_finish_and_not_repriced(db_dsn):
    x(
        db_dsn,
        "INSERT INTO compute_rates (currency, minor_per_hour, effective_from) "
        "VALUES ('USD', 3600, now() - interval '1 day')",
    )
    x(
        db_dsn,
        "INSERT INTO model_prices (ai_model, currency, input_minor_per_mtok, output_minor_per_mtok, effective_from) "
        "VALUES ('gpt-4o', 'USD', 2500000, 2500000, now() - interval '1 day')",
    )
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, "
        "worker_id, currency) VALUES ('implement_idea', 'gpt-4o', 'running', 1, now() - interval '20 seconds', "
        "now() - interval '10 seconds', 'w1', 'USD')",
    )
    from fsar_tui.db.executor import FINISH_SQL

    params = {
        "status": "succeeded",
        "retry_in_s": 0,
        "result": None,
        "error": None,
        "input_tokens": 1,
        "output_tokens": 1,
        "worker": "w1",
        "attempt": 1,
    }
    task_id = q(db_dsn, "SELECT id FROM execution_tasks")[0][0]
    x(db_dsn, FINISH_SQL, {**params, "id": task_id})
    ((compute, cost, run_s),) = q(
        db_dsn,
        "SELECT compute_cost_minor, cost_minor, extract(epoch FROM finished_at - started_at) FROM execution_tasks",
    )
    # Priced by the database (revision 0024): 2 tokens at 2,500,000 minor units per Mtok;
    # the run time at 3600 minor units per hour — a minor unit a second, to 10⁻⁶.
    assert cost == 5 and compute == round(run_s, 6) and compute >= 10
    x(db_dsn, "INSERT INTO compute_rates (currency, minor_per_hour, effective_from) VALUES ('USD', 999999, now())")
    assert q(db_dsn, "SELECT compute_cost_minor FROM execution_tasks") == [(compute,)]
    with pytest.raises(Exception, match="append-only"):
        x(db_dsn, "UPDATE compute_rates SET minor_per_hour = 1")
    assert q(db_dsn, roi_queries.COST_DRIFT_SQL) == []


def test_roi_cli_prints_the_same_numbers_as_the_screen_code(db_dsn, run_cli):
    load_fixture(db_dsn)
    out = run_cli("roi", "--dsn", db_dsn, "--format", "json", "--by", "idea")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(json_decimal.dumps(records(read(db_dsn), "idea")))
    table = run_cli("roi", "--dsn", db_dsn, "--window", "7d")
    assert table.returncode == 0 and "321.37 USD" in table.stdout  # USD net revenue 32,137 minor units
    assert "1,000 JPY" in table.stdout  # zero-decimal currency printed without cents
    bad = run_cli("roi", "--dsn", db_dsn, "--window", "soon")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    csv_out = run_cli("roi", "--dsn", db_dsn, "--format", "csv")
    assert csv_out.stdout.splitlines()[0].startswith("type,currency,revenue_minor")


# -- pure arithmetic -----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(10**12), 10**12),
    st.lists(st.integers(0, 10**9), min_size=1, max_size=30).filter(lambda w: sum(w) > 0),
)
def test_split_adds_up_exactly_and_stays_within_one_unit_of_the_proportion(amount, weights):
    parts = roi.split(amount, weights)
    assert sum(parts) == amount
    total = sum(weights)
    for part, w in zip(parts, weights, strict=False):
        assert abs(part * total - amount * w) < total  # |part - amount·w/total| < 1
        if w == 0:
            assert part == 0


cost_rows = st.builds(
    roi.CostRow,
    st.sampled_from(["t1", "t2"]),
    st.sampled_from(["m1", "m2", ""]),
    st.integers(0, 3),
    st.sampled_from(["", "i1", "i2", "i3"]),
    st.sampled_from(["USD", "EUR"]),
    st.integers(0, 50),
    st.integers(0, 5),
    st.integers(0, 2),
    st.integers(0, 10**6),
    st.integers(0, 10**5),
    st.integers(0, 10**5),
)
ledger_rows = st.builds(
    roi.LedgerRow,
    st.sampled_from(["", "i1", "i2", "i4"]),
    st.sampled_from(["revenue", "refund", "dispute", "payment_fee", "model_cost"]),
    st.sampled_from(["USD", "EUR", "GBP"]),
    st.integers(1, 9),
    st.integers(-(10**7), 10**7),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(cost_rows, max_size=25), st.lists(ledger_rows, max_size=25))
def test_every_breakdown_adds_up_to_the_summary(costs, ledger):
    figures = roi.summary(costs, ledger)
    for dim in roi.DIMENSIONS:
        rows = roi.breakdown(costs, ledger, dim)
        for currency, f in figures.items():
            assert sum(r.profit for (_, c), r in rows if c == currency) == f.profit
            assert sum(r.ai_cost for (_, c), r in rows if c == currency) == f.ai_cost


def test_split_rejects_weights_without_a_positive_sum():
    with pytest.raises(ValueError):
        roi.split(100, [0, 0])
    assert roi.split(-7, [1, 1]) == [-4, -3]
    assert roi_queries.window_days(1, date(2026, 1, 1)) == (date(2026, 1, 1), date(2026, 1, 1))
