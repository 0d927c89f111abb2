"""The exporter's pure parts (domain/metric_labels.py): the `le` ladder and the log-bucket
conversion with its stated error, label cleaning, cardinality folding — and the
exposition prometheus-client writes from hostile label values, parsed back: no label or
line can be injected. No database."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from fsar_tui.config import load_settings
from fsar_tui.domain import metric_labels as ml
from fsar_tui.domain.histogram import GAMMA, bucket, histogram_of
from fsar_tui.domain.metric_names import BY_NAME
from fsar_tui.errors import UsageError
from fsar_tui.services.metrics_exporter import families

HOSTILE = ['a"b', "a\\b", "a\nb", "x{y}", 'm"} 1\nfsar_gate_failing{gate="pwn"} 1\n#', "\x1b[31mred\x07", "\u202e!"]


def test_the_ladder_is_the_documented_one():
    assert ml.LE_SECONDS[0] == 0.01 and ml.LE_SECONDS[-1] == 100_000
    assert len(ml.LE_SECONDS) == 43
    assert all(a < b for a, b in zip(ml.LE_SECONDS, ml.LE_SECONDS[1:], strict=False))
    assert list(ml.LIMITS) == sorted(ml.LIMITS)
    assert [floatToGoString(le) for le in ml.LE_SECONDS[:8]] == [
        "0.01",
        "0.015",
        "0.02",
        "0.03",
        "0.05",
        "0.07",
        "0.1",
        "0.15",
    ]
    assert floatToGoString(ml.LE_SECONDS[-1]) == "100000.0"
    assert math.isclose(ml.STEP, 5 / 3) and math.isclose(ml.QUANTILE_ERROR, 5 / 3 * GAMMA - 1)
    assert 0.016 < ml.BOUND_ERROR < 0.0162


durations_ms = st.lists(
    st.one_of(st.floats(0, 2), st.floats(1, 2e8, allow_nan=False, allow_infinity=False)), min_size=0, max_size=400
)


@given(durations_ms)
def test_cumulative_counts_are_exact_at_a_bound_at_most_one_log_bucket_below_le(values):
    counts = ml.cumulative(histogram_of(values))
    assert len(counts) == len(ml.LE_SECONDS) + 1
    assert list(counts) == sorted(counts) and counts[-1] == len(values)
    for le, n in zip(ml.LE_SECONDS, counts, strict=False):
        le_ms = le * 1000
        # Every duration up to le/γ counts at le; none above le does (float slack at the edges).
        assert sum(v <= le_ms / GAMMA * (1 - 1e-9) for v in values) <= n <= sum(v <= le_ms * (1 + 1e-9) for v in values)


def test_a_bucket_straddling_a_bound_counts_one_bound_up():
    straddling = bucket(1000)  # the log bucket holding 1 s: its lower edge is below 1 s
    just_below = (GAMMA ** (straddling - 1) + 1000) / 2  # in that bucket, below 1 s
    assert bucket(just_below) == straddling and just_below < 1000
    counts = ml.cumulative(histogram_of([just_below, 500.0]))
    at = dict(zip(ml.LE_SECONDS, counts, strict=False))
    assert at[0.7] == 1 and at[1.0] == 1 and at[1.5] == 2 and counts[-1] == 2


def test_empty_and_negative_log_buckets_count_nothing():
    assert ml.cumulative({}) == (0,) * 44
    assert ml.cumulative({500: -3, 10: 0, 600: 2})[-1] == 2


def test_histograms_add_bucket_by_bucket():
    a, b = ml.histogram({300: 2}, 4000.0), ml.histogram({700: 1}, 1e6)
    total = a + b
    assert total.count == 3 and total.sum_s == 1004.0
    assert total.buckets == tuple(x + y for x, y in zip(a.buckets, b.buckets, strict=True))


@given(st.text(max_size=400))
def test_a_label_value_is_inert_and_bounded(raw):
    value = ml.label_value(raw)
    assert len(value) <= ml.MAX_LABEL_CHARS
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)
    assert ml.label_value(value) == value


def test_label_values_keep_what_is_printable():
    assert ml.label_value(None) == ""
    assert ml.label_value("implement_idea") == "implement_idea"
    assert ml.label_value('a"b\\c{d}') == 'a"b\\c{d}'  # the client escapes these; nothing to remove
    assert ml.label_value("a\nb") == "a\u2424b" and ml.label_value("\x1b[31mred\x07") == "red"
    assert ml.label_value("x" * 300) == "x" * 119 + "…"


def test_values_that_clean_alike_are_one_series():
    assert ml.clean([(("a\x00",), 1), (("a",), 2), (("b",), 4)], lambda x, y: x + y) == {("a",): 3, ("b",): 4}


weights = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda v: v != ml.OTHER), st.integers(0, 1000), max_size=80
)


@given(weights, st.integers(1, 60))
def test_folding_keeps_at_most_limit_values_the_heaviest_named(found, limit):
    plan = ml.keep_names(found, limit)
    assert set(plan) == set(found)
    assert len(set(plan.values())) <= limit
    if len(found) <= limit:
        assert all(k == v for k, v in plan.items())
    else:
        kept = [v for v in found if plan[v] == v and v != ml.OTHER]
        folded = [v for v in found if plan[v] == ml.OTHER and v != ml.OTHER]
        assert len(kept) == limit - 1
        assert all(found[k] >= found[f] for k in kept for f in folded)


@given(st.dictionaries(st.tuples(st.text(max_size=3), st.text(max_size=3), st.sampled_from(["ok", "ko"])),
                       st.integers(0, 100), max_size=60), st.integers(1, 10))  # fmt: skip
def test_folding_sums_and_bounds_every_label(series, limit):
    labels = ("task_type", "ai_model", "status")
    seen = {label: {key[i] for key in series} for i, label in enumerate(labels[:2])}
    plan = ml.plans(seen, {"task_type": {}, "ai_model": {}}, limit)
    out = ml.fold(series, labels, plan, lambda a, b: a + b)
    assert sum(out.values()) == sum(series.values())
    for i in range(2):
        assert len({key[i] for key in out}) <= limit
    assert {key[2] for key in out} == {key[2] for key in series}  # status is never folded


def test_sixty_types_fold_to_fifty_values_with_other_the_sum_of_the_light_ones():
    found = {f"type_{i:02d}": 100 - i for i in range(60)}
    plan = ml.keep_names(found, 50)
    assert len(set(plan.values())) == 50
    assert [t for t in found if plan[t] == ml.OTHER] == [f"type_{i:02d}" for i in range(49, 60)]
    series = {(t,): n for t, n in found.items()}
    out = ml.fold(series, ("task_type",), {"task_type": plan}, lambda a, b: a + b)
    assert out[(ml.OTHER,)] == sum(100 - i for i in range(49, 60))


class _Fixed(Collector):
    def __init__(self, values):
        self.values = values

    def collect(self):
        return iter(families(self.values))


def _exposition(values) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(values))
    return generate_latest(registry).decode()


@given(st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=300)), min_size=1, max_size=8, unique=True))
def test_hostile_label_values_cannot_inject_labels_or_lines(raws):
    cleaned = ml.clean([((r, r), 1) for r in raws], lambda a, b: a + b)
    gates = ml.clean([((r,), 1) for r in raws], lambda a, b: a + b)
    hist = {k: ml.histogram({400: 3}, 1234.0) for k in cleaned}
    text = _exposition({"fsar_tasks_queued": cleaned, "fsar_gate_failing": gates, "fsar_task_run_seconds": hist})
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(parsed) == {"fsar_tasks_queued", "fsar_gate_failing", "fsar_task_run_seconds"}
    queued = parsed["fsar_tasks_queued"].samples
    assert sorted((s.labels["task_type"], s.labels["ai_model"]) for s in queued) == sorted(cleaned)
    assert all(set(s.labels) == {"task_type", "ai_model"} for s in queued)
    assert sorted(s.labels["gate"] for s in parsed["fsar_gate_failing"].samples) == sorted(k[0] for k in gates)
    run = parsed["fsar_task_run_seconds"].samples
    assert len(run) == len(cleaned) * (len(ml.LE_SECONDS) + 3)  # buckets, +Inf, _count, _sum
    assert all(set(s.labels) - {"le"} == {"task_type", "ai_model"} for s in run)
    # Each sample is one line: no value broke out of its quotes.
    sample_lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(sample_lines) == len(queued) + len(gates) + len(run)


def test_every_family_has_the_type_and_labels_of_metric_names():
    one = ml.histogram({1: 1}, 1.0)
    values = {
        m.name: {tuple(f"v{i}" for i in range(len(m.labels))): one if m.kind == "histogram" else 1}
        for m in BY_NAME.values()
        if m.labels
    }
    parsed = {f.name: f for f in text_string_to_metric_families(_exposition(values))}
    for name in values:
        m = BY_NAME[name]
        family = parsed[name.removesuffix("_total") if m.kind == "counter" else name]
        assert family.type == m.kind and family.documentation == m.help
        assert all(set(s.labels) - {"le"} == set(m.labels) for s in family.samples)


def test_the_label_bound_is_read_from_config_toml(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[metrics]\nmax_label_values = 7\n")
    assert load_settings(env={}, config_path=path).metrics_max_label_values == 7
    for bad, words in (("0", "1..10,000"), ('"x"', "whole number"), ("true", "whole number"), ("10001", "1..10,000")):
        path.write_text(f"[metrics]\nmax_label_values = {bad}\n")
        with pytest.raises(UsageError, match=words):
            load_settings(env={}, config_path=path)
    path.write_text("[metrics]\nmax_values = 3\n")
    with pytest.raises(UsageError, match="unknown key"):
        load_settings(env={}, config_path=path)
    with pytest.raises(ValueError, match="label limit"):
        ml.keep_names({"a": 1}, 0)
