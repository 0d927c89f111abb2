"""`fsar-tui roi`: revenue, cost, profit and ROI per currency for a window, with a
breakdown by one dimension — the same query code as the ROI screen (db/roi.py) and the
same records and formats as services/roi_report.py."""

from __future__ import annotations

import sys
from argparse import Namespace

from fsar_tui.commands.base import Context, Parser, add_command
from fsar_tui.domain import attribution
from fsar_tui.errors import EXIT_OK, UsageError


def register(sub, common: Parser) -> None:
    roi = add_command(
        sub,
        common,
        "roi",
        run_roi,
        help="revenue, cost, profit and ROI from the rollups",
        description="ROI per currency for a window and a breakdown by one dimension, from the same query code "
        "as the ROI screen. An idea's revenue goes to the (type, model, rollout) groups of its tasks by the "
        "attribution method: completing (default: the task that completed the idea, its last successful "
        "implementation), equal (split equally over its successful tasks) or cost (in proportion to their cost).",
    )
    roi.add_argument("--window", default="30d", help="how far back: 24h, 7d, 30d… (default 30d)")
    roi.add_argument(
        "--by",
        default="type",
        choices=("type", "model", "rollout", "idea", "day", "week"),
        help="breakdown dimension (default type)",
    )
    roi.add_argument(
        "--attribution",
        choices=attribution.METHODS,
        default=attribution.DEFAULT,
        help=f"how an idea's revenue is attributed to task groups (default {attribution.DEFAULT})",
    )
    roi.add_argument("--format", choices=("table", "json", "csv"), default="table")


def run_roi(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import roi as roi_queries
    from fsar_tui.domain.durations import DurationError, parse_window
    from fsar_tui.services.roi_report import records, render

    try:
        days = max(1, -(-parse_window(args.window) // 86400))
    except DurationError as err:
        raise UsageError(f"--window: {err}") from None
    first, last = roi_queries.window_days(int(days))
    with ctx.read_connect(autocommit=False) as conn:
        data = roi_queries.roi_data_sync(conn, first, last)
    sys.stdout.write(render(records(data, args.by, args.attribution), args.format) + "\n")
    return EXIT_OK
