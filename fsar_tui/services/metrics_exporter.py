"""The Prometheus exporter behind `fsar-tui metrics` (issue 20): a prometheus-client
Collector on its own CollectorRegistry, served by a small threaded WSGI server.

Each scrape is one read of the database (db/metrics.read_snapshot: the counters and
rollups, never the tasks) turned into exactly the metrics of domain/metric_names.py:
label values cleaned and folded, at most max_label_values a label and max_pairs
(task_type, ai_model) pairs, ranked by all-time finished tasks (domain/metric_labels.py:
the rules and what they keep stable), durations as cumulative
histograms at a fixed `le` ladder, money in the currency's major unit (exact decimal
minor units divided by 10^digits, domain/formatting.minor_digits, then a float).

Scrapes never overlap on the database (one connection, one lock); a scrape that cannot
read — the server went away, a statement timed out, the replica fell over — answers
with fsar_scrape_errors_total incremented, fsar_scrape_duration_seconds, and no other
metric: not the last good figures, which would look current while they are not.
Prometheus marks the missing series stale at once, so an alert on
`increase(fsar_scrape_errors_total[5m]) > 0` or `absent(fsar_tasks_queued)` tells. One
stderr line per failed scrape; the next scrape connects afresh. Nothing raises out of
collect(): a client never gets a traceback, nor does the log.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from operator import add
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from psycopg import Connection

from fsar_tui.db import metrics as metric_reads
from fsar_tui.domain import metric_labels as ml
from fsar_tui.domain.formatting import minor_digits
from fsar_tui.domain.metric_names import BY_NAME, METRICS
from fsar_tui.domain.profiles import RAN, RUN, WAIT
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import first_line

K = tuple[str, ...]
ANY_TYPE = "*"  # a blocking proposal that names no task type blocks every type
QUEUE_STATES = {"queued": "fsar_tasks_queued", "running": "fsar_tasks_running"}
OUTCOMES = ("succeeded", "failed", "cancelled")


def _major(minor: Decimal | int, currency: str) -> Decimal:
    """Minor units → the currency's major unit, exactly (USD cents / 100, JPY / 1)."""
    return Decimal(minor).scaleb(-minor_digits(currency))


def _histograms(rows: list[Any]) -> dict[int, list[tuple[tuple[str, str], ml.Histogram]]]:
    """SKETCH_SQL rows → metric (RUN, WAIT) → [((type, model), histogram)], of attempts
    that ran to an outcome (the compact rows' '*')."""
    buckets: dict[tuple[int, str, str], dict[int, int]] = defaultdict(dict)
    totals: dict[tuple[int, str, str], float] = defaultdict(float)
    for task_type, model, outcome, metric, _currency, bucket_ids, counts, total in rows:
        if metric not in (RUN, WAIT) or outcome not in RAN:
            continue
        key = (metric, task_type, model)
        hist = buckets[key]
        for i, n in zip(bucket_ids, counts, strict=True):
            hist[i] = hist.get(i, 0) + n
        totals[key] += total or 0.0
    out: dict[int, list[tuple[tuple[str, str], ml.Histogram]]] = {RUN: [], WAIT: []}
    for (metric, task_type, model), hist in buckets.items():
        out[metric].append(((task_type, model), ml.histogram(hist, totals[(metric, task_type, model)])))
    return out


def _rollback_ready(snap: metric_reads.Snapshot) -> list[tuple[tuple[str], int]]:
    """Per target with something to roll back to and unchanged since the audit pass's
    latest verdict of builtin:rollback-artifacts: 1 unless that verdict named it broken.
    No verdict (no pass yet, the gate disabled, an error) or a target changed since: no
    series — unknown, not ready or unready."""
    gate = next((g for g in snap.gates if g.name == metric_reads.ROLLBACK_GATE), None)
    if gate is None or not gate.enabled or gate.verdict not in ("pass", "fail") or gate.at is None:
        return []
    broken = (gate.details or {}).get("broken", {})
    if not isinstance(broken, dict):
        return []
    return [
        ((t.target,), 0 if t.target in broken else 1) for t in snap.targets if t.has_earlier and t.changed_at <= gate.at
    ]


def series(snap: metric_reads.Snapshot) -> tuple[dict[str, dict[K, Any]], dict[str, dict[str, float]]]:
    """Every metric's series, labels cleaned (not folded yet), and the weights that decide
    which values keep their names when a label has too many."""
    out: dict[str, dict[K, Any]] = {}
    per_type: dict[str, float] = defaultdict(float)
    per_model: dict[str, float] = defaultdict(float)
    for (task_type, model), n in finished(snap).items():  # all time, never the live queue
        per_type[task_type] += n
        per_model[model] += n
    # Zeros for every type × model the counters know, so "none" is a 0, not an absence.
    pairs = {(t, m) for _s, t, m, _n in snap.counts}
    for status, name in QUEUE_STATES.items():
        out[name] = ml.clean(
            [*(((t, m), 0) for t, m in pairs), *(((t, m), n) for s, t, m, n in snap.counts if s == status)], add
        )
    out["fsar_tasks_finished_total"] = ml.clean(
        (((c.task_type, c.ai_model, status), getattr(c, status)) for c in snap.costs for status in OUTCOMES), add
    )
    hists = _histograms(snap.sketches)
    out["fsar_task_run_seconds"] = ml.clean(hists[RUN], add)
    out["fsar_task_queue_wait_seconds"] = ml.clean(hists[WAIT], add)
    priced = [c for c in snap.costs if c.currency]  # a task with no currency has no cost
    out["fsar_cost_total"] = ml.clean(
        (((c.task_type, c.ai_model, c.currency), _major(c.model_cost + c.compute_cost, c.currency)) for c in priced),
        add,
    )
    out["fsar_waste_total"] = ml.clean(
        (((c.task_type, c.ai_model, c.currency), _major(c.waste, c.currency)) for c in priced), add
    )
    out["fsar_revenue_total"] = ml.clean((((cur,), _major(gained, cur)) for cur, gained, _ in snap.revenue if cur), add)
    out["fsar_revenue_deductions_total"] = ml.clean(
        (((cur,), _major(taken, cur)) for cur, _, taken in snap.revenue if cur), add
    )
    enabled = [g for g in snap.gates if g.enabled]
    out["fsar_gate_failing"] = ml.clean((((g.name,), int(g.verdict == "fail")) for g in enabled), add)
    out["fsar_gate_hard"] = ml.clean((((g.name,), int(g.hard)) for g in enabled), add)
    out["fsar_drift_alerts_firing"] = ml.clean(
        [*(((t, m), 0) for t, m in pairs), *(((t, m), n) for t, m, n in snap.drift)], add
    )
    out["fsar_proposals_blocking"] = ml.clean(
        [*(((t,), 0) for t, _m in pairs), *(((ANY_TYPE if t is None else t,), n) for t, n in snap.blocking)], add
    )
    out["fsar_canary_weight"] = ml.clean((((t.target,), (t.canary_weight or 0) / 100) for t in snap.targets), add)
    out["fsar_canary_aborted"] = ml.clean((((t.target,), int(t.target in snap.aborted)) for t in snap.targets), add)
    out["fsar_rollback_ready"] = ml.clean(_rollback_ready(snap), add)
    weights: dict[str, dict[str, float]] = {
        "task_type": dict(per_type),
        "ai_model": dict(per_model),
        # What needs attention keeps its name: a failing hard gate before a passing soft one.
        "gate": {ml.label_value(g.name): 2 * (g.verdict == "fail") + g.hard for g in enabled},
        "target": {
            ml.label_value(t.target): 4 * (t.target in snap.aborted) + 2 * (t.canary_weight is not None)
            for t in snap.targets
        },
        "currency": _currency_weights(snap),
    }
    return out, weights


def finished(snap: metric_reads.Snapshot) -> dict[ml.Pair, float]:
    """Tasks finished in all time per (cleaned) type × model, from the cost rollups: the
    weight that ranks types, models and pairs — it only grows, so a scrape's queue never
    moves a value between its name and `other` (domain/metric_labels.py, Ranking)."""
    out: dict[ml.Pair, float] = defaultdict(float)
    for c in snap.costs:
        out[(ml.label_value(c.task_type), ml.label_value(c.ai_model))] += c.succeeded + c.failed + c.cancelled
    return dict(out)


def _currency_weights(snap: metric_reads.Snapshot) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for c in snap.costs:
        out[ml.label_value(c.currency)] += c.succeeded + c.failed + c.cancelled
    return dict(out)


def folded(snap: metric_reads.Snapshot, limit: int, max_pairs: int = ml.DEFAULT_MAX_PAIRS) -> dict[str, dict[K, Any]]:
    """series() with every label's values folded to at most `limit` and the (task_type,
    ai_model) pairs to at most `max_pairs` (one plan per label name and one pair plan for
    the whole scrape)."""
    raw, weights = series(snap)
    seen: dict[str, set[str]] = defaultdict(set)
    pairs: set[ml.Pair] = set()
    for name, values in raw.items():
        labels = BY_NAME[name].labels
        for position, label in enumerate(labels):
            if label != "status":
                seen[label].update(key[position] for key in values)
        if set(ml.PAIR_LABELS) <= set(labels):
            t, m = (labels.index(label) for label in ml.PAIR_LABELS)
            pairs.update((key[t], key[m]) for key in values)
    plan, pair_plan = ml.scrape_plans(seen, weights, pairs, finished(snap), limit, max_pairs)
    return {name: ml.fold(values, BY_NAME[name].labels, plan, add, pair_plan) for name, values in raw.items()}


def families(values: Mapping[str, Mapping[K, Any]]) -> list[Metric]:
    """The families of metric_names.py that `values` names, in its order."""
    out: list[Metric] = []
    for m in METRICS:
        if m.name not in values:
            continue
        labels, found = list(m.labels), sorted(values[m.name].items())
        if m.kind == "histogram":
            hist = HistogramMetricFamily(m.name, m.help, labels=labels)
            for key, h in found:
                bounds = [(floatToGoString(le), float(n)) for le, n in zip(ml.LE_SECONDS, h.buckets, strict=False)]
                hist.add_metric(list(key), [*bounds, ("+Inf", float(h.count))], h.sum_s)
            out.append(hist)
        elif m.kind == "counter":
            counter = CounterMetricFamily(m.name, m.help, labels=labels)
            for key, value in found:
                counter.add_metric(list(key), float(value))
            out.append(counter)
        else:
            gauge = GaugeMetricFamily(m.name, m.help, labels=labels)
            for key, value in found:
                gauge.add_metric(list(key), float(value))
            out.append(gauge)
    return out


class MetricsCollector(Collector):
    """Reads the database at each scrape (never at registration: describe() holds no data)."""

    def __init__(
        self,
        connect: Callable[[], Connection],
        *,
        max_label_values: int,
        max_pairs: int = ml.DEFAULT_MAX_PAIRS,
        log: Callable[[str], None] | None = None,
    ) -> None:
        ml.keep_names({}, max_label_values)  # a bad limit fails here, not at a scrape
        ml.keep_pairs({}, max_pairs)
        self._connect = connect
        self._limit = max_label_values
        self._max_pairs = max_pairs
        self._log = log or _stderr
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self.errors = 0
        self._failing = False

    def describe(self) -> Iterator[Metric]:
        """Every family, empty: the registry learns the names (so `?name[]=…` selects
        among them) without a database read at registration."""
        return iter(families({m.name: {} for m in METRICS}))

    def read(self) -> list[Metric]:
        """One scrape's families (errors propagate: check() at start wants them)."""
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return families(folded(metric_reads.read_snapshot(self._conn), self._limit, self._max_pairs))

    def check(self) -> None:
        """Read once now; the caller turns a failure into its one-line exit."""
        with self._lock:
            try:
                self.read()
            except BaseException:
                self.close()
                raise

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            start = time.perf_counter()
            found: list[Metric] = []
            try:
                found = self.read()
                if self._failing:
                    self._log("reads restored")
                self._failing = False
            except Exception as exc:  # any failure is this scrape's error, never a traceback
                self.errors += 1
                self._failing = True
                self.close()
                self._log(f"scrape failed ({self.errors} so far): {mask_dsn(first_line(exc))}")
            duration = time.perf_counter() - start
            errors = self.errors
        yield from found
        yield GaugeMetricFamily(
            "fsar_scrape_duration_seconds", BY_NAME["fsar_scrape_duration_seconds"].help, value=duration
        )
        yield CounterMetricFamily("fsar_scrape_errors_total", BY_NAME["fsar_scrape_errors_total"].help, value=errors)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a connection already broken closes as it can
                conn.close()


def _stderr(line: str) -> None:
    print(f"fsar-tui metrics: {line}", file=sys.stderr, flush=True)


class _QuietHandler(WSGIRequestHandler):
    """No access log; a client that hangs up mid-answer is not worth a traceback."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_stderr(self) -> io.StringIO:
        return io.StringIO()


def serve(host: str, port: int, registry: CollectorRegistry) -> WSGIServer:
    """A threaded WSGI server of `registry` bound to host:port (not serving yet: call
    serve_forever). OSError (socket.gaierror for a host that does not resolve) when it
    cannot bind; nothing is left open then."""
    family, address = _address(host, port)

    class Server(ThreadingWSGIServer):
        address_family = family

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a broken client connection: nothing to report, the next scrape is another

    return make_server(address, port, make_wsgi_app(registry), Server, handler_class=_QuietHandler)


def _address(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    """The family and address to bind for `host` (an IPv6 literal or name binds IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0])


def registry_for(collector: MetricsCollector) -> CollectorRegistry:
    """A registry of its own holding only `collector` (no process or platform metrics:
    the figures are the fleet's, not this process's)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
