"""`fsar-tui retention …`: raw rows past the policy archived, then dropped; archives restored.

retention run [--dry-run] [--task-events AGE] [--tasks AGE] [--archive DIR | --no-archive]
    [--lock-timeout-ms MS] [--format table|json]: the policy is the flags, else config.toml
    `[retention]`; none at all is a usage error. Prints every partition dropped (with its
    archive) and why each other one was kept; "nothing to do" when nothing is past the
    policy (then no archive is written). Exit 1 when an archive fails verification
    (nothing is dropped then); 2 for a policy a figure's window forbids, or no archive
    directory.
    A write that fails (a full disk) is exit 1 naming the run's directory, which is removed
    (nothing dropped). Notes say what interrupted runs left: temporary files removed,
    orphan archives (partitions never dropped) reported, never deleted.
retention restore FILE [--dry-run] [--not-in-log] [--format table|json]: FILE is an
    archive or its manifest; exit 1 when it fails verification, does not match the
    database's retention_log (a tampered or foreign archive; --not-in-log skips that
    check, for disaster recovery), or its rows are in the table already.
Both need the tables' owner (the role that ran `fsar-tui migrate`; otherwise run exits 1,
restore 2 naming it); --dry-run any role.
"""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

from fsar_tui.commands.base import Context, Parser, add_command, bounded_int, subcommands
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, UsageError

LOCK_TIMEOUT_MS = bounded_int(1, 600_000, "milliseconds")


def register(sub, common: Parser) -> None:
    ret = add_command(sub, common, "retention", help="archive and drop raw rows past the policy; restore archives")
    ret_sub = subcommands(ret, "retention_command")
    run = add_command(
        ret_sub,
        common,
        "run",
        run_retention,
        help="archive, verify, then drop the partitions past the policy",
        description="Archive every partition of task_events / execution_tasks wholly past the policy (gzip COPY "
        "text with a manifest of row counts and checksums, read back and verified), then drop it. Queued and "
        "running tasks, and rows the rollups have not counted, are never dropped. The policy is the flags, "
        "else config.toml [retention].",
    )
    run.add_argument("--dry-run", action="store_true", help="say what would be dropped and why the rest is kept")
    run.add_argument("--task-events", metavar="AGE", help="keep task events this long (e.g. 14d)")
    run.add_argument("--tasks", metavar="AGE", help="keep finished tasks this long (e.g. 90d)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--archive", metavar="DIR", help="archive root (default: [retention] archive, else XDG data)")
    where.add_argument("--no-archive", action="store_true", help="drop WITHOUT an archive: the rows are gone for good")
    run.add_argument(
        "--lock-timeout-ms",
        type=LOCK_TIMEOUT_MS,
        default=None,
        metavar="MS",
        help="longest wait for a partition's lock before keeping it for the next run (default 2000)",
    )
    run.add_argument("--format", choices=("table", "json"), default="table")
    restore = add_command(
        ret_sub,
        common,
        "restore",
        run_restore,
        help="bring an archived partition's rows back",
        description="Verify FILE (an archive or its manifest) and load its rows back into their table, "
        "uncounted by the triggers (they were counted when first written), into whatever partition covers its "
        "range. Refused, nothing written, when it fails verification, does not match the 'dropped' entry of this "
        "database's retention_log, or any of its rows exists already.",
    )
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--dry-run", action="store_true", help="verify and check, write nothing")
    restore.add_argument(
        "--not-in-log",
        action="store_true",
        help="disaster recovery: restore an archive this database's retention_log has no entry for (a restored "
        "dump, a log lost to a downgrade); the file is still verified against its manifest",
    )
    restore.add_argument("--format", choices=("table", "json"), default="table")


def _policy(args: Namespace, ctx: Context):  # -> tuple[Policy, Path]
    from fsar_tui.config import RetentionConfig, directory_path
    from fsar_tui.domain.retention import Policy, RetentionError, parse_age
    from fsar_tui.services.retention_archive import default_root

    cfg = ctx.settings.retention or RetentionConfig()
    ages: dict[str, int | None] = {}
    for key, flag in (("task_events", "--task-events"), ("tasks", "--tasks")):
        given = getattr(args, key)
        text, source = (given, flag) if given is not None else (getattr(cfg, key), f"[retention] {key}")
        try:
            ages[key] = None if text is None else parse_age(text, source)
        except RetentionError as exc:
            raise UsageError(str(exc)) from None
    root = directory_path(args.archive, "--archive") if args.archive else (cfg.archive or default_root())
    return Policy(task_events_s=ages["task_events"], tasks_s=ages["tasks"]), root


def run_retention(args: Namespace, ctx: Context) -> int:
    from fsar_tui.services.retention import DEFAULT_LOCK_TIMEOUT_MS, run

    policy, root = _policy(args, ctx)
    if policy.empty:
        raise UsageError("no retention policy: give --task-events and/or --tasks, or set [retention] in config.toml")
    if ctx.settings.read_only and not args.dry_run:
        raise UsageError("--read-only: retention run drops partitions (--dry-run shows what it would do)")
    report = run(
        ctx.dsn(),
        policy,
        archive_root=None if args.no_archive else root,
        no_archive=args.no_archive,
        dry_run=args.dry_run,
        statement_timeout_ms=ctx.settings.statement_timeout_ms,
        lock_timeout_ms=args.lock_timeout_ms or DEFAULT_LOCK_TIMEOUT_MS,
    )
    if args.format == "json":
        doc = {
            "dry_run": report.dry_run,
            "policy": report.policy,
            "at": report.at.isoformat(),
            "archive": report.archive,
            "nothing_to_do": report.nothing_to_do,
            "partitions": [o.as_json() for o in report.outcomes],
            "notes": report.notes,
        }
        print(json.dumps(doc, indent=2))
        return EXIT_FAILED if report.failed else EXIT_OK
    _print_run(report)
    return EXIT_FAILED if report.failed else EXIT_OK  # a partition it could not drop: a cron must hear


# Kept for these reasons, a partition is routine: counted, not listed (unless --dry-run).
_ROUTINE = (
    "within",
    "no task_events retention",
    "no tasks retention",
    "DEFAULT",
    "next task id",
    "open-ended",
    "empty",
)


def _print_run(report) -> None:  # services.retention.RunReport
    from fsar_tui.domain.retention import format_bound

    policy = ", ".join(f"{k} {v}" for k, v in report.policy.items() if v)
    head = "dry run: " if report.dry_run else ""
    print(f"{head}retention {policy} as of {report.at:%Y-%m-%d %H:%M} UTC")
    if report.nothing_to_do:
        print("nothing to do: no partition is wholly past the policy")
    routine = 0
    for o in report.outcomes:
        span = f"[{format_bound(o.lower)}, {format_bound(o.upper)})"
        if o.action == "kept" and not report.dry_run and any(word in o.reason for word in _ROUTINE):
            routine += 1
            continue
        rows = "" if o.rows is None else f" {o.rows:,} rows"
        where = f" → {o.manifest}" if o.manifest else ""
        print(f"{o.action:<10} {o.table} {o.name} {span}{rows}: {o.reason}{where}")
    if routine:
        print(f"kept       {routine} partition(s) within the policy (--dry-run lists them)")
    if report.archive:
        print(f"archive: {report.archive}")
    for note in report.notes:
        print(f"note: {note}")


def run_restore(args: Namespace, ctx: Context) -> int:
    from fsar_tui.services.retention_restore import restore

    if ctx.settings.read_only and not args.dry_run:
        raise UsageError("--read-only: retention restore writes rows (--dry-run checks the file)")
    report = restore(
        ctx.dsn(),
        Path(args.file),
        dry_run=args.dry_run,
        not_in_log=args.not_in_log,
        statement_timeout_ms=ctx.settings.statement_timeout_ms,
    )
    if args.format == "json":
        print(json.dumps(report.as_json(), indent=2))
    else:
        into = "" if report.into in ([], [report.partition]) else f" into {', '.join(report.into)}"
        print(
            f"{report.action} {report.rows:,} rows of {report.table} {report.partition} "
            f"[{report.lower}, {report.upper}) from {report.manifest}{into}"
        )
    return EXIT_OK
