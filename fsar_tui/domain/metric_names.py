"""The Prometheus metrics fsar-tui exports (`fsar-tui metrics`, issue 20): names, types,
labels and help — the one statement of them. The exporter (services/metrics_exporter.py)
emits exactly these, the Grafana dashboard (docs/grafana/) queries only these, and tests
hold both to it.

Conventions (Prometheus): names start with `fsar_`; counters end in `_total`; durations
are `_seconds` histograms; money is in the currency's major unit (USD, not cents) with a
`currency` label (there is no base unit of money). Labels are only `task_type`,
`ai_model`, `status`, `currency`, `gate` and `target`; values from task types, models,
gates and targets are sanitised and folded into `other` beyond a configured number
(domain/metric_labels.py). Pure data.
"""

from __future__ import annotations

from typing import NamedTuple


class Metric(NamedTuple):
    name: str
    kind: str  # gauge | counter | histogram
    labels: tuple[str, ...]
    help: str


TYPE_MODEL = ("task_type", "ai_model")

METRICS: tuple[Metric, ...] = (
    Metric("fsar_tasks_queued", "gauge", TYPE_MODEL, "Tasks queued now (the queue counters)."),
    Metric("fsar_tasks_running", "gauge", TYPE_MODEL, "Tasks running now (the queue counters)."),
    Metric(
        "fsar_tasks_finished_total",
        "counter",
        (*TYPE_MODEL, "status"),
        "Tasks that ended, by outcome (succeeded, failed, cancelled), from the rollups.",
    ),
    Metric(
        "fsar_task_run_seconds",
        "histogram",
        TYPE_MODEL,
        "Run time of finished attempts, from the log-bucket duration rollups (cumulative buckets).",
    ),
    Metric(
        "fsar_task_queue_wait_seconds",
        "histogram",
        TYPE_MODEL,
        "Time from queued to claimed, from the log-bucket duration rollups (cumulative buckets).",
    ),
    Metric("fsar_cost_total", "counter", (*TYPE_MODEL, "currency"), "Exact cost of attempts (model + compute)."),
    Metric("fsar_waste_total", "counter", (*TYPE_MODEL, "currency"), "Cost of attempts that did not succeed."),
    # Two counters, not one net figure: a refund would make a net counter fall, which
    # Prometheus reads as a reset (increase() then adds the whole total). The ledger's
    # sign check keeps each side monotonic; net = revenue − deductions in PromQL.
    Metric("fsar_revenue_total", "counter", ("currency",), "Revenue from the ledger: payments and disputes won."),
    Metric(
        "fsar_revenue_deductions_total",
        "counter",
        ("currency",),
        "What the ledger takes off revenue: refunds, disputes, dispute and payment fees (positive).",
    ),
    Metric("fsar_gate_failing", "gauge", ("gate",), "1 when the audit gate's latest verdict is fail, else 0."),
    Metric("fsar_gate_hard", "gauge", ("gate",), "1 when the audit gate is hard (its failure blocks execution)."),
    Metric(
        "fsar_drift_alerts_firing",
        "gauge",
        TYPE_MODEL,
        "Drift alerts firing (open, not acknowledged) per task type and model.",
    ),
    Metric("fsar_proposals_blocking", "gauge", ("task_type",), "FSAR proposals blocking execution of a task type."),
    Metric("fsar_canary_weight", "gauge", ("target",), "A running canary's share of its target's tasks, 0..1."),
    Metric(
        "fsar_canary_aborted",
        "gauge",
        ("target",),
        "1 when the target's latest canary was aborted in the last 24 hours (the header banner's rule).",
    ),
    Metric(
        "fsar_rollback_ready", "gauge", ("target",), "1 when the target's rollback re-hashes and rehearses cleanly."
    ),
    Metric("fsar_scrape_duration_seconds", "gauge", (), "How long the exporter's last scrape took."),
    Metric("fsar_scrape_errors_total", "counter", (), "Scrapes whose database reads failed."),
)

BY_NAME = {m.name: m for m in METRICS}
LABELS = ("task_type", "ai_model", "status", "currency", "gate", "target")
assert all(set(m.labels) <= set(LABELS) for m in METRICS)
assert all(m.name.startswith("fsar_") for m in METRICS)
assert all(m.name.endswith("_total") == (m.kind == "counter") for m in METRICS)
