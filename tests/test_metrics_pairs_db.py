"""`fsar-tui metrics` on a 60 task types × 60 models database (the attack on issue 20:
60 values a label were 3,600 pairs, ~360,000 series a scrape): every metric labelled by
type and model holds at most max_pairs pairs, the sums are the database's, the pairs
with the most finished tasks keep their names whatever the queue holds, and a longer
queue changes no name and no counter (domain/metric_labels.py, Cardinality, Ranking)."""

from __future__ import annotations

import pytest

from fsar_tui.domain import metric_labels as ml
from fsar_tui.domain.metric_names import METRICS
from support.sql import x
from test_metrics_exporter import by, exporter, family_name, samples, scrape

pytestmark = pytest.mark.services

PAIRED = [m for m in METRICS if set(ml.PAIR_LABELS) <= set(m.labels)]
GRID = "FROM generate_series(0, 59) i, generate_series(0, 59) j"
NAMES = "'pt_' || lpad(i::text, 2, '0'), 'pm_' || lpad(j::text, 2, '0')"
HEAVY = [("pt_59", "pm_59"), ("pt_58", "pm_00"), ("pt_30", "pm_45")]  # the most finished; last by name
LONG_QUEUE = ("pt_40", "pm_40")  # the longest queue, one finished task like the rest


def _finish(dsn: str, names_sql: str, times: str = "") -> None:
    x(
        dsn,
        f"""INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, finished_at,
                                         cost_minor, compute_cost_minor, currency)
            SELECT {names_sql}, 'succeeded', 1, now() - interval '2 minutes', now() - interval '90 seconds', now(),
                   10, 1, 'USD' {times}""",
    )


def _pairs(families: dict, m) -> set[tuple[str, str]]:
    suffix = "_count" if m.kind == "histogram" else ""
    return set(by(samples(families, m.name, suffix), *ml.PAIR_LABELS))


def test_sixty_by_sixty_is_scraped_with_at_most_max_pairs_ranked_by_history(db_dsn, isolated_env):
    x(db_dsn, f"INSERT INTO execution_tasks (task_type, ai_model) SELECT {NAMES} {GRID}")  # one queued a pair
    _finish(db_dsn, NAMES, GRID)  # one finished a pair: 3,600 pairs in every metric
    for t, m in HEAVY:
        _finish(db_dsn, f"'{t}', '{m}'", "FROM generate_series(1, 3)")
    x(db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) SELECT %s, %s FROM generate_series(1, 40)", LONG_QUEUE)
    queued_total, finished_total = 3600 + 40, 3600 + 3 * len(HEAVY)
    with exporter(isolated_env, db_dsn, "--max-label-values", "60") as (_proc, port):
        first = scrape(port)
        x(db_dsn, "INSERT INTO execution_tasks (task_type, ai_model) SELECT %s, %s FROM generate_series(1, 500)",
          ("pt_01", "pm_59"))  # fmt: skip
        second = scrape(port)
    assert set(first) == {family_name(m) for m in METRICS}
    assert sum(len(f.samples) for f in first.values()) < 15_000
    for m in PAIRED:
        assert len(_pairs(first, m)) <= ml.DEFAULT_MAX_PAIRS, m.name
    queued = by(samples(first, "fsar_tasks_queued"), *ml.PAIR_LABELS)
    assert sum(queued.values()) == queued_total  # nothing lost in the folding
    assert sum(by(samples(first, "fsar_tasks_finished_total")).values()) == finished_total
    assert sum(by(samples(first, "fsar_task_run_seconds", "_count")).values()) == finished_total
    assert sum(by(samples(first, "fsar_cost_total")).values()) == pytest.approx(finished_total * 0.11)
    named = set(by(samples(first, "fsar_tasks_finished_total"), *ml.PAIR_LABELS))
    assert set(HEAVY) <= named and LONG_QUEUE not in named and ml.OTHER_PAIR in named
    assert all(_pairs(first, m) == named for m in PAIRED)  # one pair plan for the scrape
    # 500 more queued tasks of one pair: the same names, the same counters and histograms.
    assert sum(by(samples(second, "fsar_tasks_queued")).values()) == queued_total + 500
    for m in PAIRED:
        assert _pairs(second, m) == named, m.name
        if m.kind != "gauge":
            assert first[family_name(m)].samples == second[family_name(m)].samples, m.name


def test_max_pairs_flag_and_config(db_dsn, isolated_env, tmp_path):
    x(db_dsn, f"INSERT INTO execution_tasks (task_type, ai_model) SELECT {NAMES} FROM generate_series(0, 5) i, "
              "generate_series(0, 5) j")  # fmt: skip
    config = tmp_path / "config.toml"
    config.write_text("[metrics]\nmax_pairs = 12\n")
    with exporter(isolated_env, db_dsn, "--config", str(config)) as (_proc, port):
        assert len(by(samples(scrape(port), "fsar_tasks_queued"), *ml.PAIR_LABELS)) == 12
    with exporter(isolated_env, db_dsn, "--config", str(config), "--max-pairs", "5") as (proc, port):
        queued = by(samples(scrape(port), "fsar_tasks_queued"), *ml.PAIR_LABELS)
    assert len(queued) == 5 and queued[ml.OTHER_PAIR] == 36 - 4  # the flag wins
