"""`fsar-tui profile`: duration profiles per type × model (or rollout) from the rollups —
the same code as screen 2 — and `--backfill`, which counts history that predates the
rollups in resumable batches."""

from __future__ import annotations

import sys
from argparse import Namespace
from datetime import UTC, datetime, timedelta

from fsar_tui.commands.base import Context, Parser, add_command, parse_window_arg
from fsar_tui.errors import EXIT_OK, UsageError


def register(sub, common: Parser) -> None:
    prof = add_command(
        sub,
        common,
        "profile",
        run_profile,
        help="duration profiles per type × model (or rollout) from the rollups",
        description="p50/p90/p99 run time, queue wait, failure rate over a window, from the "
        "trigger-kept rollups (percentiles within 0.8 %%); cost per successful task (waste "
        "included) and waste over the whole UTC days that stand for the window, as the ROI screen. "
        "--backfill counts history that predates the rollups, in resumable batches.",
    )
    prof.add_argument("--window", default="7d", help="how far back: 1h, 24h, 7d, 30d… (default 7d)")
    prof.add_argument("--by", default="type,model", help="comma-separated: type, model, rollout (default type,model)")
    prof.add_argument("--format", choices=("table", "json", "csv"), default="table")
    prof.add_argument("--backfill", action="store_true", help="count pre-existing history first (resumable)")
    prof.add_argument("--batch-size", type=int, default=50_000, help="task ids per backfill batch (default 50,000)")


def run_profile(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import profiles as profile_queries
    from fsar_tui.domain import profile_money
    from fsar_tui.domain.durations import format_duration
    from fsar_tui.services.profile_report import render

    window_s = parse_window_arg(args.window, "--window")
    assert window_s is not None
    by = tuple(d.strip() for d in args.by.split(",") if d.strip())
    unknown = [d for d in by if d not in profile_queries.DIMENSIONS]
    if unknown or not by or len(set(by)) != len(by):
        raise UsageError(f"--by takes distinct names among {', '.join(profile_queries.DIMENSIONS)}; got {args.by!r}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    # The backfill writes (the primary); a plain profile only reads (the replica, if any).
    with (ctx.connect if args.backfill else ctx.read_connect)(autocommit=False) as conn:
        if args.backfill:
            conn.autocommit = True
            done, target = profile_queries.backfill_state(conn)
            while done < target:
                done = profile_queries.backfill_batch(conn, args.batch_size)
                print(f"backfill: counted task ids up to {done:,} of {target:,}", file=sys.stderr)
            profile_queries.rebuild_sketches(conn)
            profile_queries.vacuum_rollups(conn)
            conn.autocommit = False
        else:
            done, target = profile_queries.backfill_state(conn)
            if done < target:
                print(
                    f"fsar-tui: history up to task id {target:,} is not counted yet "
                    f"(backfilled to {done:,}); run `fsar-tui profile --backfill`",
                    file=sys.stderr,
                )
        now = datetime.now(UTC)
        found = profile_queries.load_profiles_sync(conn, now - timedelta(seconds=window_s), now, now, by)
        days = profile_queries.money_window(window_s, now)
        money = profile_money.by_key(profile_queries.money_rows_sync(conn, *days), by)
    print(render(found, by, args.format, format_duration(window_s), money, days))
    return EXIT_OK
