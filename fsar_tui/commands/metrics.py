"""`fsar-tui metrics`: serve the fleet's figures to Prometheus (issue 20) until SIGINT or
SIGTERM — the queue counters, the duration rollups as histograms, cost, waste, revenue,
gates, drift alerts, blocking proposals, canaries and rollback readiness, exactly the
metrics of domain/metric_names.py (services/metrics_exporter.py).

It only reads, through `--read-dsn` (a replica) when one is configured. Start-up is all
or nothing: the database is read once first (unreachable, or not migrated: one line,
exit 2), then the port is bound (in use, or a host that does not resolve or is not this
machine's: one line, exit 2, the connection closed); only then does it serve.
"""

from __future__ import annotations

import sys
from argparse import Namespace

from fsar_tui.commands.base import Context, Parser, add_command, bounded_int
from fsar_tui.domain.metric_labels import DEFAULT_MAX_PAIRS, MAX_LABEL_VALUES, MAX_PAIRS
from fsar_tui.domain.sanitize import MAX_HOST_CHARS, clip
from fsar_tui.errors import EXIT_OK, ConnectionFailed, UsageError, first_line

DEFAULT_PORT = 9464  # the exporter's port in Prometheus's default port allocations


def register(sub, common: Parser) -> None:
    cmd = add_command(
        sub,
        common,
        "metrics",
        run,
        help="serve Prometheus metrics (queue, durations, money, gates, alerts)",
        description="A Prometheus exporter: GET http://HOST:PORT/metrics. Every scrape reads the "
        "counters and rollups (never the tasks) in one read-only snapshot; a scrape that cannot read "
        "answers fsar_scrape_errors_total and nothing else. Label values are sanitised, and each label "
        "keeps at most --max-label-values values (the rest summed as `other`), the metrics by task type "
        "and model at most --max-pairs (type, model) pairs (the rest summed as (other, other)); the "
        "heaviest by tasks finished in all time keep their names.",
    )
    cmd.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    cmd.add_argument(
        "--port",
        type=bounded_int(0, 65535, "a TCP port"),
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}; 0: any free port, printed)",
    )
    cmd.add_argument(
        "--max-label-values",
        type=bounded_int(1, MAX_LABEL_VALUES, "a number of values"),
        metavar="N",
        help="distinct values a label keeps, the rest summed as `other` "
        "(config [metrics] max_label_values; default 50)",
    )
    cmd.add_argument(
        "--max-pairs",
        type=bounded_int(1, MAX_PAIRS, "a number of pairs"),
        metavar="N",
        help="(task_type, ai_model) pairs kept, the rest summed as (other, other) "
        f"(config [metrics] max_pairs; default {DEFAULT_MAX_PAIRS})",
    )


def _stderr(line: str) -> None:
    print(f"fsar-tui metrics: {line}", file=sys.stderr, flush=True)


def run(args: Namespace, ctx: Context) -> int:
    """Serve until SIGINT or SIGTERM, then return 0."""
    import psycopg

    from fsar_tui.services.metrics_exporter import MetricsCollector, registry_for, serve
    from fsar_tui.services.until_signal import serve_until_signal

    limit = args.max_label_values or ctx.settings.metrics_max_label_values
    pairs = args.max_pairs or ctx.settings.metrics_max_pairs
    collector = MetricsCollector(ctx.read_connect, max_label_values=limit, max_pairs=pairs, log=_stderr)
    try:
        collector.check()
    except psycopg.Error as exc:  # reachable, but the reads fail: not migrated, no rights
        raise ConnectionFailed(f"cannot read the metrics: {first_line(exc)}") from None
    host = clip(args.host, MAX_HOST_CHARS)
    try:
        server = serve(args.host, args.port, registry_for(collector))
    except (OSError, ValueError) as exc:  # ValueError: a host with a NUL, or not IDNA-encodable
        collector.close()
        raise UsageError(f"cannot listen on {host}:{args.port}: {getattr(exc, 'strerror', None) or exc}") from None
    address, port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{address}]" if ":" in address else address
    reads = "a replica" if ctx.read_on_replica else "the primary"
    bounds = f"at most {limit} values a label, {pairs} type × model pairs"
    serve_until_signal(
        server,
        name="fsar-metrics",
        started=lambda: _stderr(f"serving http://{shown}:{port}/metrics, reading {reads}; {bounds}"),
        cleanup=collector.close,
    )
    _stderr("stopped")
    return EXIT_OK
