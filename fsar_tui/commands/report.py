"""`fsar-tui report`: ROI, profiles, fraud flags, audit verdicts, open alerts and open
FSAR proposals as Markdown, JSON or CSV (services/report.py builds it), written to
standard output or a file, and optionally delivered by SMTP or webhook
(services/delivery.py). A delivery that fails exits 1 and keeps the file."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from datetime import UTC, datetime
from pathlib import Path

from fsar_tui.commands.base import Context, Parser, add_command
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, FsarError, UsageError


def register(sub, common: Parser) -> None:
    report = add_command(
        sub,
        common,
        "report",
        run_report,
        help="ROI, profiles, audits and alerts as a report",
        description="Write a report (Markdown, JSON or CSV) and optionally deliver it by SMTP or webhook. "
        "A delivery that fails exits 1 and keeps the file.",
    )
    report.add_argument("--period", default="7d", help="how far back (default 7d)")
    report.add_argument("--format", choices=("md", "json", "csv"), default="md")
    report.add_argument(
        "--out",
        metavar="FILE",
        help="write here (default: standard output; with a delivery, ./fsar-report-<UTC time>.<format>)",
    )
    report.add_argument("--smtp", metavar="URL", help="smtp://[user:pass@]host[:port] or smtps://…; needs --to")
    report.add_argument("--to", metavar="ADDR", action="append", default=[], help="recipient (repeatable)")
    report.add_argument(
        "--from",
        dest="sender",
        metavar="ADDR",
        default="fsar-tui@localhost",
        help="sender address (default fsar-tui@localhost)",
    )
    report.add_argument("--webhook", metavar="URL", help="POST the JSON report here")


def run_report(args: Namespace, ctx: Context) -> int:
    from fsar_tui.domain.durations import DurationError, parse_window
    from fsar_tui.services import delivery
    from fsar_tui.services.report import MIME, build, markdown, render

    try:
        days = max(1, -(-parse_window(args.period) // 86400))
    except DurationError as err:
        raise UsageError(f"--period: {err}") from None
    if args.smtp and not args.to:
        raise UsageError("--smtp needs at least one --to ADDR")
    if args.to and not args.smtp:
        raise UsageError("--to needs --smtp URL")
    if args.smtp:
        delivery.parse_smtp_url(args.smtp)  # a malformed URL is a usage error before any work
    with ctx.connect(autocommit=False) as conn:
        rep = build(conn, int(days))
    text = render(rep, args.format)
    delivering = bool(args.smtp or args.webhook)
    if not args.out and not delivering:
        sys.stdout.write(text)
        return EXIT_OK
    path = Path(args.out or f"fsar-report-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.{args.format}")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"report written to {path}", file=sys.stderr)
    failures = 0
    subject = f"fsar-tui report {rep['period']['first_day']} .. {rep['period']['last_day']}"
    if args.smtp:
        attachment = None if args.format == "md" else (path.name, text.encode("utf-8"), MIME[args.format])
        body = text if args.format == "md" else markdown(rep)
        try:
            delivery.send_mail(args.smtp, args.sender, args.to, subject, body, attachment=attachment)
            print(f"mailed to {', '.join(args.to)} via {delivery.mask_url(args.smtp)}", file=sys.stderr)
        except FsarError as err:
            failures += 1
            print(f"fsar-tui: {err.message}", file=sys.stderr)
    if args.webhook:
        try:
            status = delivery.post_webhook(args.webhook, json.dumps(rep).encode("utf-8"))
            print(f"posted to {delivery.mask_url(args.webhook)} (HTTP {status})", file=sys.stderr)
        except FsarError as err:
            failures += 1
            print(f"fsar-tui: {err.message}", file=sys.stderr)
    if failures:
        print(f"fsar-tui: delivery failed; the report is kept at {path}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
