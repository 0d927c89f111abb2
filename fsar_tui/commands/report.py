"""`fsar-tui report`: ROI, profiles, fraud flags, audit verdicts, open alerts and open
FSAR proposals as Markdown, JSON or CSV (services/report.py builds it), written to
standard output or a file, and optionally delivered by SMTP or webhook
(services/delivery.py). A delivery that fails exits 1 and keeps the file.

A report file never replaces another (`write_new`): the text is written whole to a
temporary file in the target's directory, then hard-linked to the name — which fails if
the name is taken, and the next is tried: `fsar-report-<UTC time>-2.md`, `-3`, … (an
`--out` name likewise: `weekly-2.md`) — and the temporary name is removed. Two runs in
the same second keep two files, and a reader never sees half of one. The name used is
printed on standard error. The UTC time comes from fsar_tui/clock.py."""

from __future__ import annotations

import errno
import os
import secrets
import sys
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path

from fsar_tui import clock
from fsar_tui.commands.base import Context, Parser, add_command
from fsar_tui.domain import attribution, json_decimal
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, FsarError, UsageError

MAX_SUFFIX = 1000  # -2 … -1000: beyond that, something is writing reports in a loop
# Hard links refused by the file system (FAT, some network mounts): then the file is
# created exclusively under its name and written there.
NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}


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
        "--attribution",
        choices=attribution.METHODS,
        default=attribution.DEFAULT,
        help=f"how an idea's revenue is attributed to task groups (default {attribution.DEFAULT}; as `roi`)",
    )
    report.add_argument(
        "--out",
        metavar="FILE",
        help="write here, never over an existing file (a taken name gets -2, -3, …; default: standard output; "
        "with a delivery, ./fsar-report-<UTC time>.<format>)",
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
    now = clock.now()
    with ctx.read_connect(autocommit=False) as conn:
        rep = build(conn, int(days), now, args.attribution)
    text = render(rep, args.format)
    delivering = bool(args.smtp or args.webhook)
    if not args.out and not delivering:
        sys.stdout.write(text)
        return EXIT_OK
    path = write_new(Path(args.out or f"fsar-report-{now:%Y%m%dT%H%M%SZ}.{args.format}"), text)
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
            status = delivery.post_webhook(args.webhook, json_decimal.dumps(rep).encode("utf-8"))
            print(f"posted to {delivery.mask_url(args.webhook)} (HTTP {status})", file=sys.stderr)
        except FsarError as err:
            failures += 1
            print(f"fsar-tui: {err.message}", file=sys.stderr)
    if failures:
        print(f"fsar-tui: delivery failed; the report is kept at {path}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _candidates(path: Path) -> Iterator[Path]:
    yield path
    for n in range(2, MAX_SUFFIX + 1):
        yield path.with_name(f"{path.stem}-{n}{path.suffix}")


def write_new(path: Path, text: str) -> Path:
    """Write `text` (UTF-8) under `path` or, when that is taken, the first free of path-2,
    path-3, …; never over an existing file, never seen half-written. Returns the name used."""
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    data = text.encode("utf-8")
    temp = path.parent / f".fsar-report-{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to any new file
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        try:
            _write_all(fd, data)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        for candidate in _candidates(path):
            try:
                os.link(temp, candidate)  # fails if the name exists: nothing is replaced
                return candidate
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in NO_LINKS:
                    raise UsageError(f"cannot write {candidate}: {exc.strerror or exc}") from None
                return _write_without_links(path, data)
        raise UsageError(f"cannot write {path}: it and {MAX_SUFFIX - 1} suffixed names are taken")
    finally:
        temp.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes) -> None:
    """Write, flush to disk and close the descriptor (closed on failure too)."""
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_without_links(path: Path, data: bytes) -> Path:
    for candidate in _candidates(path):
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise UsageError(f"cannot write {candidate}: {exc.strerror or exc}") from None
        try:
            _write_all(fd, data)
        except OSError as exc:
            raise UsageError(f"cannot write {candidate}: {exc.strerror or exc}") from None
        return candidate
    raise UsageError(f"cannot write {path}: it and {MAX_SUFFIX - 1} suffixed names are taken")
