"""The rows of the Grafana dashboard (tools/grafana_dashboard.py), one function per
screen of the app — Queue, Profiles, ROI, Audit & Rollback, Proposals — and the
exporter's own health; each returns its row, then its panels, with the screen's names.
"""

from __future__ import annotations

from grafana_panels import (
    CUR,
    RANGE,
    RATE,
    TM,
    TMC,
    TYPE_MODEL_LEGEND,
    Part,
    big,
    grid,
    q,
    quantile,
    quantile_over_range,
    row,
    series,
)


def queue_row() -> list[Part]:
    return [
        row("Queue"),
        big(
            "Queued",
            "Tasks queued now, all types and models in the filter (the queue screen's counts).",
            [q(f"sum(fsar_tasks_queued{{{TM}}})", "queued")],
        ),
        big(
            "Running",
            "Tasks running now (the queue screen's counts).",
            [q(f"sum(fsar_tasks_running{{{TM}}})", "running")],
        ),
        big(
            "Finished /s",
            "Tasks that ended per second, by outcome, at the end of the range.",
            [q(f"sum by (status) (rate(fsar_tasks_finished_total{{{TM}}}{RATE}))", "{{status}}")],
            unit="short",
            span=16,
            decimals=2,
        ),
        series(
            "Queued by type × model",
            "Tasks queued per task_type × ai_model (the queue screen's counts per type; `m` adds models).",
            [q(f"sum by (task_type, ai_model) (fsar_tasks_queued{{{TM}}})", TYPE_MODEL_LEGEND)],
            span=8,
        ),
        series(
            "Running by type × model",
            "Tasks running per task_type × ai_model.",
            [q(f"sum by (task_type, ai_model) (fsar_tasks_running{{{TM}}})", TYPE_MODEL_LEGEND)],
            span=8,
        ),
        series(
            "Finished /s by status",
            "Tasks that ended per second, by outcome (succeeded, failed, cancelled).",
            [q(f"sum by (status) (rate(fsar_tasks_finished_total{{{TM}}}{RATE}))", "{{status}}")],
            span=8,
            stack=True,
        ),
    ]


def profiles_row() -> list[Part]:
    run = "fsar_task_run_seconds"
    wait = "fsar_task_queue_wait_seconds"
    finished = "fsar_tasks_finished_total"
    fail_rate = (
        f'sum by (task_type, ai_model) (increase({finished}{{{TM}, status="failed"}}{RANGE}))'
        f' / sum by (task_type, ai_model) (increase({finished}{{{TM}, status=~"succeeded|failed"}}{RANGE}))'
    )
    return [
        row("Profiles"),
        *[
            series(
                f"p{p} run time",
                f"p{p} run time of finished attempts per task_type × ai_model over the rate window, "
                f"from the exported run-time histogram (the profiles screen's p{p}; its buckets are the "
                "log-bucket rollups').",
                [q(quantile(phi, run, RATE), TYPE_MODEL_LEGEND)],
                unit="s",
                span=8,
            )
            for p, phi in (("50", 0.5), ("90", 0.9), ("99", 0.99))
        ],
        series(
            "Queue wait p90",
            "p90 of the time from queued to claimed per task_type × ai_model (the profiles screen's wait p90).",
            [q(quantile(0.9, wait, RATE), TYPE_MODEL_LEGEND)],
            unit="s",
        ),
        series(
            "Failure rate (fail%)",
            "failed / (succeeded + failed) per task_type × ai_model over the rate window "
            "(the profiles screen's fail%; cancels are the operator's).",
            [
                q(
                    f'sum by (task_type, ai_model) (rate({finished}{{{TM}, status="failed"}}{RATE}))'
                    f' / sum by (task_type, ai_model) (rate({finished}{{{TM}, status=~"succeeded|failed"}}{RATE}))',
                    TYPE_MODEL_LEGEND,
                )
            ],
            unit="percentunit",
        ),
        grid(
            "Profiles over the dashboard range",
            "The profiles screen's table for the dashboard's time range: finished runs, mean, p50/p90/p99 "
            "run time, queue-wait p90 and failure rate per task_type × ai_model.",
            [
                q(f"sum by (task_type, ai_model) (increase({run}_count{{{TM}}}{RANGE}))", ref="A", as_table=True),
                q(
                    f"sum by (task_type, ai_model) (increase({run}_sum{{{TM}}}{RANGE}))"
                    f" / sum by (task_type, ai_model) (increase({run}_count{{{TM}}}{RANGE}))",
                    ref="B",
                    as_table=True,
                ),
                q(quantile_over_range(0.5, run), ref="C", as_table=True),
                q(quantile_over_range(0.9, run), ref="D", as_table=True),
                q(quantile_over_range(0.99, run), ref="E", as_table=True),
                q(quantile_over_range(0.9, wait), ref="F", as_table=True),
                q(fail_rate, ref="G", as_table=True),
            ],
            {
                "task_type": "type",
                "ai_model": "model",
                "Value #A": "n",
                "Value #B": "mean",
                "Value #C": "p50",
                "Value #D": "p90",
                "Value #E": "p99",
                "Value #F": "wait p90",
                "Value #G": "fail%",
            },
            units={
                "Value #A": "short",
                "Value #B": "s",
                "Value #C": "s",
                "Value #D": "s",
                "Value #E": "s",
                "Value #F": "s",
                "Value #G": "percentunit",
            },
            sort_by="p90",
        ),
    ]


def roi_row() -> list[Part]:
    # Net revenue: two counters (a net one would fall on a refund, a reset to Prometheus),
    # exported together for every currency with ledger rows, so the subtraction matches.
    revenue = (
        f"(sum by (currency) (increase(fsar_revenue_total{{{CUR}}}{RANGE}))"
        f" - sum by (currency) (increase(fsar_revenue_deductions_total{{{CUR}}}{RANGE})))"
    )
    cost = f"sum by (currency) (increase(fsar_cost_total{{{CUR}}}{RANGE}))"
    note = (
        " Per currency, never converted. Revenue carries no task type or model, so net revenue, "
        "profit and ROI ignore the type and model filters."
    )
    by_tm = "sum by (task_type, ai_model, currency)"
    return [
        row("ROI"),
        big(
            "Net revenue",
            "Net revenue from the ledger over the dashboard's range: revenue and disputes won, less "
            "refunds, disputes and fees." + note,
            [q(revenue, "{{currency}}")],
        ),
        big("AI cost", "AI cost (model + compute) over the dashboard's range." + note, [q(cost, "{{currency}}")]),
        big(
            "Waste",
            "Cost of attempts that did not produce their task's success, over the range "
            "(type and model filters apply).",
            [q(f"sum by (currency) (increase(fsar_waste_total{{{TMC}}}{RANGE}))", "{{currency}}")],
            steps=((None, "orange"),),
        ),
        big(
            "Profit",
            "Net revenue − AI cost over the range." + note,
            [q(f"{revenue} - {cost}", "{{currency}}")],
            steps=((None, "red"), (0, "green")),
        ),
        big(
            "ROI",
            "ROI = (net revenue − AI cost) / AI cost over the range, as the ROI screen's ROI %." + note,
            [q(f"({revenue} - {cost}) / {cost}", "{{currency}}")],
            unit="percentunit",
            steps=((None, "red"), (0, "green")),
        ),
        big(
            "Waste share",
            "Waste / AI cost over the range, type and model filters applied.",
            [
                q(
                    f"sum by (currency) (increase(fsar_waste_total{{{TMC}}}{RANGE}))"
                    f" / sum by (currency) (increase(fsar_cost_total{{{TMC}}}{RANGE}))",
                    "{{currency}}",
                )
            ],
            unit="percentunit",
            steps=((None, "green"), (0.2, "orange"), (0.5, "red")),
        ),
        series(
            "AI cost per hour by type × model",
            "AI cost (model + compute) per hour, per task_type × ai_model and currency.",
            [q(f"{by_tm} (rate(fsar_cost_total{{{TMC}}}{RATE})) * 3600", f"{TYPE_MODEL_LEGEND} ({{{{currency}}}})")],
            span=8,
        ),
        series(
            "Waste per hour by type × model",
            "Waste per hour, per task_type × ai_model and currency.",
            [q(f"{by_tm} (rate(fsar_waste_total{{{TMC}}}{RATE})) * 3600", f"{TYPE_MODEL_LEGEND} ({{{{currency}}}})")],
            span=8,
        ),
        series(
            "Net revenue per hour",
            "Net revenue from the ledger per hour, per currency.",
            [q(f"sum by (currency) (rate(fsar_revenue_total{{{CUR}}}{RATE})) * 3600", "{{currency}}")],
            span=8,
        ),
        grid(
            "Cost and waste by type × model over the dashboard range",
            "The ROI screen's breakdown by type × model for the money the metrics carry: AI cost, waste, "
            "waste share, successes and cost per successful task (all the group's cost, waste included, "
            "over its successes).",
            [
                q(f"{by_tm} (increase(fsar_cost_total{{{TMC}}}{RANGE}))", ref="A", as_table=True),
                q(f"{by_tm} (increase(fsar_waste_total{{{TMC}}}{RANGE}))", ref="B", as_table=True),
                q(
                    f"{by_tm} (increase(fsar_waste_total{{{TMC}}}{RANGE}))"
                    f" / {by_tm} (increase(fsar_cost_total{{{TMC}}}{RANGE}))",
                    ref="C",
                    as_table=True,
                ),
                q(
                    f"{by_tm} (increase(fsar_cost_total{{{TMC}}}{RANGE}))"
                    " / on (task_type, ai_model) group_left sum by (task_type, ai_model)"
                    f' (increase(fsar_tasks_finished_total{{{TM}, status="succeeded"}}{RANGE}))',
                    ref="D",
                    as_table=True,
                ),
            ],
            {
                "task_type": "type",
                "ai_model": "model",
                "currency": "currency",
                "Value #A": "AI cost",
                "Value #B": "waste",
                "Value #C": "waste share",
                "Value #D": "cost/ok",
            },
            units={"Value #C": "percentunit"},
            sort_by="AI cost",
        ),
    ]


def audit_row() -> list[Part]:
    failing = "(max by (gate) (fsar_gate_failing) == 1)"
    hard = "max by (gate) (fsar_gate_hard)"
    return [
        row("Audit & Rollback"),
        big(
            "Failing gates",
            "Failing hard gates (blocking) and failing soft gates.",
            [
                q(f"count({failing} and on (gate) ({hard} == 1)) or vector(0)", "hard", "A"),
                q(f"count({failing} and on (gate) ({hard} == 0)) or vector(0)", "soft", "B"),
            ],
            steps=((None, "green"), (1, "red")),
        ),
        big(
            "Drift alerts firing",
            "Drift alerts open and not acknowledged (every screen's header counts them).",
            [q(f"sum(fsar_drift_alerts_firing{{{TM}}}) or vector(0)", "firing")],
            steps=((None, "green"), (1, "red")),
        ),
        big(
            "Rollback not ready",
            "Rollout targets whose rollback does not re-hash and rehearse cleanly (the rollouts table's readiness).",
            [q("count(fsar_rollback_ready == 0) or vector(0)", "targets")],
            steps=((None, "green"), (1, "red")),
        ),
        big(
            "Canary aborted (24 h)",
            "Per rollout target: its latest canary was aborted (by the judge or an operator) in the last "
            "24 hours (the header banner's rule).",
            [q("max by (target) (fsar_canary_aborted)", "{{target}}")],
            mappings={"1": ("ABORTED", "red"), "0": ("no", "green")},
            span=6,
        ),
        big(
            "Rollback readiness",
            "Per rollout target: ready when its rollback re-hashes and rehearses cleanly (rehearsed every minute).",
            [q("max by (target) (fsar_rollback_ready)", "{{target}}")],
            mappings={"1": ("ready", "green"), "0": ("NOT READY", "red")},
            span=6,
        ),
        grid(
            "Failing gates",
            "Audit gates whose latest verdict is fail, and whether each is hard (its failure blocks "
            "claims in its scope: FAIL · BLOCKING on the audit screen) or soft.",
            [q(f"{hard} and on (gate) {failing}", ref="A", as_table=True)],
            {"gate": "gate", "Value": "kind"},
            mappings={"Value": {"1": ("hard · BLOCKING", "red"), "0": ("soft", "orange")}},
            span=8,
        ),
        series(
            "Drift alerts firing by type × model",
            "Drift alerts firing per task_type × ai_model (CUSUM on failure rate, p90 run time, cost per task).",
            [q(f"sum by (task_type, ai_model) (fsar_drift_alerts_firing{{{TM}}})", TYPE_MODEL_LEGEND)],
            span=8,
        ),
        series(
            "Canary weight",
            "A running canary's share of its target's tasks.",
            [q("max by (target) (fsar_canary_weight)", "{{target}}")],
            unit="percentunit",
            span=8,
        ),
    ]


def proposals_row() -> list[Part]:
    return [
        row("Proposals"),
        big(
            "Blocking proposals",
            "FSAR proposals with block_execution that are new or accepted and not lifted: their task type "
            "is not claimed (the red banner on every screen).",
            [q('sum(fsar_proposals_blocking{task_type=~"$task_type"}) or vector(0)', "blocking")],
            steps=((None, "green"), (1, "red")),
            span=6,
            height=6,
        ),
        series(
            "Blocking proposals by task type",
            "Blocking FSAR proposals per task type.",
            [q('sum by (task_type) (fsar_proposals_blocking{task_type=~"$task_type"})', "{{task_type}}")],
            span=18,
            height=6,
        ),
    ]


def exporter_row() -> list[Part]:
    return [
        row("Exporter"),
        series(
            "Scrape duration",
            "How long the exporter's scrapes take (the goal: ≤ 100 ms at 10 M tasks).",
            [q("fsar_scrape_duration_seconds", "{{instance}}")],
            unit="s",
            span=12,
            height=6,
        ),
        big(
            "Last scrape",
            "The exporter's last scrape duration.",
            [q("max(fsar_scrape_duration_seconds)", "last scrape")],
            unit="s",
            steps=((None, "green"), (0.1, "orange"), (1, "red")),
            span=6,
            height=6,
        ),
        big(
            "Scrape errors",
            "Scrapes whose database reads failed, over the dashboard's range.",
            [q(f"sum(increase(fsar_scrape_errors_total{RANGE})) or vector(0)", "errors")],
            steps=((None, "green"), (1, "red")),
            decimals=0,
            span=6,
            height=6,
        ),
    ]
