"""`fsar-tui log verify` and `fsar-tui log list`: the operator action log, headless.

verify: services/log_integrity.py — every link of the hash chain recomputed outside the
database (domain/action_chain.py), compared with the head the database keeps and with
the anchor a previous clean verify left — the last (seq, hash) it saw, kept in
`<user data dir>/fsar-tui/log-anchors.json` per server and database (or `--anchor FILE`);
the log's triggers enabled and its functions the shipped ones. Exit 0 when all holds
(the anchor moves to the newest row), 1 otherwise, one line per problem. The anchor only
ever moves after a clean verify: keep it somewhere the database's superuser cannot write
(another host, a CI artefact).
list: the log, newest first, filtered by actor (the authenticated role, or the OS user
a client claimed), action, target prefix and age.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import platformdirs

from fsar_tui.commands.base import Context, Parser, add_command, positive_count, subcommands
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(sub, common: Parser) -> None:
    log = add_command(sub, common, "log", help="the operator action log")
    log_sub = subcommands(log, "log_command")
    verify = add_command(
        log_sub,
        common,
        "verify",
        run_log_verify,
        help="check the hash chain; exit 1 if broken",
        description="Recompute the operator log's hash chain outside the database and compare it with the "
        "database's head and the anchor left by the previous clean verify: finds edited rows, deleted rows "
        "(also at the end) and rewritten chains, even by a superuser with the trigger disabled; and checks "
        "that the log's triggers are enabled and its functions are the shipped ones.",
    )
    verify.add_argument("--anchor", metavar="FILE", help="anchor file (default: in the user data directory)")
    verify.add_argument("--keep-anchor", action="store_true", help="do not move the anchor after a clean verify")
    listing = add_command(log_sub, common, "list", run_log_list, help="the log, newest first")
    listing.add_argument("--actor")
    listing.add_argument("--action")
    listing.add_argument("--target", help="target prefix, e.g. task:")
    listing.add_argument("--since", help="how far back: 1h, 24h, 7d…")
    listing.add_argument("--limit", type=positive_count, default=100)
    listing.add_argument("--format", choices=("table", "json"), default="table")


def default_anchor_file() -> Path:
    return platformdirs.user_data_path("fsar-tui") / "log-anchors.json"


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the anchor file {path}: {exc}") from None


def run_log_verify(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import operator_log
    from fsar_tui.dsn import describe_target
    from fsar_tui.services.log_integrity import check_log

    path = Path(args.anchor) if args.anchor else default_anchor_file()
    anchors = _load(path)
    dsn = ctx.dsn()
    # The configured statement timeout, like every command: the rows come through a
    # cursor 5,000 at a time, so no statement grows with the log, except the database's
    # own walk, which operator_log.database_verdict_sync runs with its lock wait bounded.
    with ctx.connect(autocommit=False) as conn:
        key = f"{describe_target(dsn)}#{operator_log.database_oid(conn)}"
        anchor = tuple(anchors[key]) if key in anchors else None
        report = check_log(conn, anchor)
    verdict = report.verdict
    for note in report.notes:
        print(f"fsar-tui: operator log: {note}", file=sys.stderr)
    if not report.ok:
        if not verdict.ok:
            print(f"fsar-tui: operator log broken: {verdict.problem}", file=sys.stderr)
        for problem in report.problems:
            print(f"fsar-tui: operator log unprotected: {problem}", file=sys.stderr)
        if verdict.ok and report.database_says is not None:  # ours passed, the database's did not
            print(
                f"fsar-tui: operator log: the database's own check fails at seq {report.database_says}",
                file=sys.stderr,
            )
        return EXIT_FAILED
    if not args.keep_anchor:
        anchors[key] = list(verdict.anchor)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(anchors, indent=2))
        except OSError as exc:
            raise UsageError(f"cannot write the anchor file {path}: {exc.strerror or exc}") from None
    since = f", anchor at seq {anchor[0]} still matches" if anchor else ", no anchor yet (now set)"
    print(f"operator log intact: {verdict.rows:,} rows, last seq {verdict.last_seq}{since}")
    return EXIT_OK


def run_log_list(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import operator_log
    from fsar_tui.domain.durations import DurationError, parse_window
    from fsar_tui.domain.sanitize import safe_str

    since = None
    if args.since:
        try:
            since = datetime.now(UTC) - timedelta(seconds=parse_window(args.since))
        except DurationError as err:
            raise UsageError(f"--since: {err}") from None
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    with ctx.read_connect(autocommit=False) as conn:
        rows = operator_log.list_actions_sync(
            conn, actor=args.actor, action=args.action, target=args.target, since=since, limit=args.limit
        )
    records: list[dict[str, Any]] = [
        {
            "seq": r.seq,
            "at": r.at.isoformat(),
            "actor": safe_str(r.actor),
            "db_role": safe_str(r.db_role),
            "claimed_os_user": safe_str(r.claimed_os_user) if r.claimed_os_user is not None else None,
            "action": safe_str(r.action),
            "target": safe_str(r.target),
            "reason": safe_str(r.reason or ""),
        }
        for r in rows
    ]
    if args.format == "json":
        print(json.dumps(records, indent=2))
    else:
        for rec in records:
            claims = f", claims {rec['claimed_os_user']}" if rec["claimed_os_user"] else ""
            print(
                f"{rec['seq']:>7}  {rec['at'][:19]}  {rec['actor']} ({rec['db_role']}{claims})  "
                f"{rec['action']} {rec['target']}{'  — ' + rec['reason'] if rec['reason'] else ''}"
            )
        if not records:
            print("(no actions match)")
    return EXIT_OK
