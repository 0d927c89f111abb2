"""The exporter's pair bound and ranking (domain/metric_labels.py, Cardinality and
Ranking; services/metrics_exporter.folded), without a database: at most max_pairs
(task_type, ai_model) pairs in every metric labelled by both, one pair plan for the whole
scrape, sums kept, and names ranked by all-time finished tasks, so the live queue never
moves a value between its name and `other`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fsar_tui.config import load_settings
from fsar_tui.db import metrics as metric_reads
from fsar_tui.domain import metric_labels as ml
from fsar_tui.domain.metric_names import BY_NAME, METRICS
from fsar_tui.domain.profiles import RUN, WAIT
from fsar_tui.errors import UsageError
from fsar_tui.services.metrics_exporter import families, folded, series

PAIRED = [m.name for m in METRICS if set(ml.PAIR_LABELS) <= set(m.labels)]
OUTCOMES = ("succeeded", "failed", "cancelled")


def _add(a, b):
    return a + b


def snapshot(finished: dict[tuple[str, str], int], queued: dict[tuple[str, str], int]) -> metric_reads.Snapshot:
    """A scrape's facts: every pair in `finished` has a cost row (that many tasks
    succeeded, each 1 cent) and run and wait samples; `queued` is the live queue."""
    costs = [
        metric_reads.CostSum(t, m, "USD", n, 0, 0, Decimal(n), Decimal(0), Decimal(0)) for (t, m), n in finished.items()
    ]
    sketches = [
        (t, m, "succeeded", metric, "USD", [400], [n], 1000.0 * n)
        for (t, m), n in finished.items()
        if n
        for metric in (RUN, WAIT)
    ]
    counts = [("queued", t, m, n) for (t, m), n in queued.items() if n]
    counts += [("succeeded", t, m, n) for (t, m), n in finished.items() if n]
    drift = [(t, m, 1) for (t, m), n in queued.items() if n % 2]
    return metric_reads.Snapshot(
        datetime.now(UTC), counts, sketches, costs, [], [], [], set(), drift, [(t, 1) for t, _m in list(queued)[:3]]
    )


def pairs_of(values) -> set[tuple[str, str]]:
    return {(key[0], key[1]) for key in values}


def total(values) -> float:
    return sum(v.count if isinstance(v, ml.Histogram) else float(v) for v in values.values())


names = st.sampled_from([f"t{i}" for i in range(9)])
models = st.sampled_from([f"m{i}" for i in range(7)])
pair_weights = st.dictionaries(st.tuples(names, models), st.integers(0, 50), min_size=1, max_size=63)


@given(pair_weights, st.integers(1, 40))
def test_keep_pairs_keeps_at_most_limit_pairs_the_heaviest_named(found, limit):
    plan = ml.keep_pairs(found, limit)
    assert set(plan) == set(found) and len(set(plan.values())) <= limit
    if len(found) <= limit:
        assert all(k == v for k, v in plan.items())
    else:
        kept = [p for p in found if plan[p] == p]
        assert len(kept) == limit - 1 and all(plan[p] == ml.OTHER_PAIR for p in found if p not in kept)
        assert all(found[k] >= found[f] for k in kept for f in found if f not in kept)


@given(
    st.dictionaries(st.tuples(names, models, st.sampled_from(OUTCOMES)), st.integers(0, 99), max_size=120),
    pair_weights,
    st.integers(1, 8),
    st.integers(1, 30),
)
# Found by this property: four models within a limit of 4 kept their names, then the
# pair fold added (other, other) and ai_model exported five values.
@example(
    {**{("t0", f"m{i}", "succeeded"): 1 for i in range(4)}, ("t1", "m0", "succeeded"): 1, ("t1", "m1", "succeeded"): 1},
    {("t0", "m0"): 0},
    4,
    5,
)
def test_fold_bounds_pairs_and_values_keeps_sums_and_names_a_pair_only_with_its_values(series_, weights, limit, most):
    labels = BY_NAME["fsar_tasks_finished_total"].labels
    seen = {"task_type": {k[0] for k in series_}, "ai_model": {k[1] for k in series_}}
    plan, pair_plan = ml.scrape_plans(seen, {"task_type": {}, "ai_model": {}}, pairs_of(series_), weights, limit, most)
    out = ml.fold(series_, labels, plan, _add, pair_plan)
    assert sum(out.values()) == sum(series_.values())
    assert len(pairs_of(out)) <= most
    assert len({k[0] for k in out}) <= limit and len({k[1] for k in out}) <= limit
    assert {k[2] for k in out} == {k[2] for k in series_}  # status rides along
    for t, m in pairs_of(out):  # a named value in a pair is named by its label's plan
        assert t == ml.OTHER or t in plan["task_type"].values()
        assert m == ml.OTHER or m in plan["ai_model"].values()
    # One plan: a raw key lands in the same pair in a metric without status.
    alone = ml.fold({k[:2]: 1 for k in series_}, ml.PAIR_LABELS, plan, _add, pair_plan)
    assert set(alone) == pairs_of(out)


grid = st.dictionaries(st.tuples(names, models), st.integers(1, 30), min_size=1, max_size=63)


@given(grid, st.integers(1, 6), st.integers(1, 20), st.data())
def test_every_paired_metric_is_bounded_consistent_and_sums_kept(finished, limit, most, data):
    queued = {p: data.draw(st.integers(1, 40)) for p in finished}
    snap = snapshot(finished, queued)
    raw, _weights = series(snap)
    out = folded(snap, limit, most)
    for name in PAIRED:
        assert len(pairs_of(out[name])) <= most, name
        assert len({t for t, _ in pairs_of(out[name])}) <= limit, name
        assert len({m for _, m in pairs_of(out[name])}) <= limit, name
        assert total(out[name]) == pytest.approx(total(raw[name])), name
    # Every pair has queue, cost and samples: each metric exports the same pairs.
    assert len({frozenset(pairs_of(out[name])) for name in PAIRED if name != "fsar_drift_alerts_firing"}) == 1
    assert pairs_of(out["fsar_drift_alerts_firing"]) == pairs_of(out["fsar_tasks_queued"])


@given(grid, st.integers(1, 5), st.integers(1, 12), st.data())
def test_the_queue_never_moves_a_name_nor_changes_a_counter(finished, limit, most, data):
    """Same history, two different queues over the same pairs: the same names and the
    same counters (the queue used to rank types and models, so they swapped)."""
    before = folded(snapshot(finished, {p: data.draw(st.integers(1, 500)) for p in finished}), limit, most)
    after = folded(snapshot(finished, {p: data.draw(st.integers(1, 500)) for p in finished}), limit, most)
    for m in METRICS:
        if m.name in before:
            assert set(before[m.name]) == set(after[m.name]), m.name
            if m.kind != "gauge":
                assert before[m.name] == after[m.name], m.name


@given(grid, st.integers(1, 5), st.integers(1, 12), st.data())
def test_counters_never_decrease_while_the_named_set_stays(finished, limit, most, data):
    more = {p: n + data.draw(st.integers(0, 3)) for p, n in finished.items()}
    queued = {p: data.draw(st.integers(1, 40)) for p in finished}
    before, after = folded(snapshot(finished, queued), limit, most), folded(snapshot(more, queued), limit, most)
    for m in METRICS:
        if m.kind == "counter" and m.name in before and set(before[m.name]) == set(after[m.name]):
            assert all(after[m.name][k] >= v for k, v in before[m.name].items()), m.name


def test_sixty_types_by_sixty_models_export_at_most_max_pairs():
    finished = {(f"t{i:02d}", f"m{j:02d}"): 1 for i in range(60) for j in range(60)}
    finished[("t59", "m59")] = finished[("t58", "m00")] = 9  # the heaviest pairs, named last by name
    queued = dict.fromkeys(finished, 1) | {("t40", "m40"): 5000}  # the longest queue: no weight
    snap = snapshot(finished, queued)
    out = folded(snap, 60, ml.DEFAULT_MAX_PAIRS)
    for name in PAIRED:
        assert len(pairs_of(out[name])) <= ml.DEFAULT_MAX_PAIRS, name
    queued_out = out["fsar_tasks_queued"]
    assert ("t59", "m59") in queued_out and ("t58", "m00") in queued_out
    assert ("t40", "m40") not in queued_out  # ranked by history, not by the queue
    named = sum(v for k, v in queued_out.items() if k != ml.OTHER_PAIR)
    assert queued_out[ml.OTHER_PAIR] == sum(queued.values()) - named
    assert len(pairs_of(out["fsar_tasks_finished_total"])) == ml.DEFAULT_MAX_PAIRS
    samples = sum(len(f.samples) for f in families(out))
    assert samples < 15_000  # was ~330,000 with every pair named
    assert len(pairs_of(folded(snap, 60, 7)["fsar_task_run_seconds"])) == 7


def test_a_heavier_newcomer_displaces_the_lightest_named_and_other_jumps():
    """The inherent case the docstring states: ranking has no memory across scrapes."""
    finished = {("a", "m"): 10, ("b", "m"): 5, ("c", "m"): 3, ("e", "m"): 1}
    before = folded(snapshot(finished, {}), 50, 3)["fsar_tasks_finished_total"]
    after = folded(snapshot({**finished, ("d", "m"): 7}, {}), 50, 3)["fsar_tasks_finished_total"]
    assert before[("b", "m", "succeeded")] == 5 and before[(*ml.OTHER_PAIR, "succeeded")] == 3 + 1
    assert ("b", "m", "succeeded") not in after and after[("d", "m", "succeeded")] == 7
    assert after[(*ml.OTHER_PAIR, "succeeded")] == 5 + 3 + 1  # b's whole history moved into other


def test_max_pairs_is_read_from_config_toml(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[metrics]\nmax_label_values = 9\n")
    assert load_settings(env={}, config_path=path).metrics_max_pairs == ml.DEFAULT_MAX_PAIRS
    path.write_text("[metrics]\nmax_pairs = 7\n")
    settings = load_settings(env={}, config_path=path)
    assert settings.metrics_max_pairs == 7 and settings.metrics_max_label_values == ml.DEFAULT_MAX_LABEL_VALUES
    assert settings.masked()["metrics"] == {"max_label_values": ml.DEFAULT_MAX_LABEL_VALUES, "max_pairs": 7}
    for bad, words in (("0", "1..10,000"), ('"x"', "whole number"), ("true", "whole number"), ("10001", "1..10,000")):
        path.write_text(f"[metrics]\nmax_pairs = {bad}\n")
        with pytest.raises(UsageError, match=f"max_pairs: .*{words}"):
            load_settings(env={}, config_path=path)
    with pytest.raises(ValueError, match="pair limit"):
        ml.keep_pairs({}, 0)
