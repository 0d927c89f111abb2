"""`fsar-tui rollouts list` and `fsar-tui rollback`: the rollback path, headless.

rollback TARGET [--to REV] --reason TEXT [--yes] [--dry-run]: prints the preview —
the revision it goes to (default: the one before the active one), the artifact diff,
tasks of the target's type in flight, the last verdict of the audit gates in its scope
— then asks to type the target's name (or takes --yes), then runs the one-transaction
rollback of db/rollouts.py and, with a broker configured, publishes a retained
`fsar/v1/control/rollouts/{target}` message so workers switch at once (NOTIFY is sent
by the database in any case). Exit 0 done (or dry run), 1 refused (someone else changed
the target first, a tampered artifact, not confirmed), 2 usage/connection.
rollouts list [--format json]: targets, active revision, rollback readiness.
rollouts verify: for every target, re-hash its rollback revision's artifact and rehearse
the whole rollback inside a transaction that is rolled back (deferred constraints
checked); exit 1 if any would fail — for cron and CI.
"""

from __future__ import annotations

import asyncio
import json
import sys
from argparse import Namespace

from fsar_tui.commands.base import Context, Parser, add_command, revision_number, subcommands
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(sub, common: Parser) -> None:
    rollouts_p = add_command(sub, common, "rollouts", help="rollout targets")
    rollouts_sub = subcommands(rollouts_p, "rollouts_command")
    rl = add_command(
        rollouts_sub, common, "list", run_rollouts_list, help="targets, active revision, rollback readiness"
    )
    rl.add_argument("--format", choices=("table", "json"), default="table")
    add_command(
        rollouts_sub,
        common,
        "verify",
        run_rollouts_verify,
        help="rehearse every rollback in a rolled-back transaction; exit 1 if one fails",
    )
    from fsar_tui.commands import canary

    canary.register(rollouts_sub, common)
    rb = add_command(
        sub,
        common,
        "rollback",
        run_rollback,
        help="roll a target back (or forward) to a revision",
        description="Preview, confirm (type the target's name, or --yes), then one transaction: a new revision "
        "copying the chosen one becomes active, NOTIFY and a retained MQTT control message tell the "
        "workers, and the operator log records it. Refused (exit 1) if someone changed the target "
        "first or the chosen artifact no longer matches its hash.",
    )
    rb.add_argument("target", metavar="TARGET")
    rb.add_argument(
        "--to", type=revision_number, metavar="REV", help="revision to go to (default: the one before the active)"
    )
    rb.add_argument("--reason", help="why (required; goes to the operator log)")
    rb.add_argument("--yes", action="store_true", help="do not ask to type the target's name")
    rb.add_argument("--dry-run", action="store_true", help="show the preview and stop")


def run_rollouts_list(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import canaries, rollouts

    with ctx.read_connect(autocommit=False) as conn:
        targets = rollouts.list_targets(conn)
        running = {c.target: c for c in canaries.latest(conn, running_only=True)}
    if args.format == "json":
        out = []
        for t in targets:
            c = running.get(t.target)
            canary = None if c is None else {"id": c.id, "revision": c.canary_revision, "weight": c.weight}
            out.append({**t.__dict__, "canary": canary})
        print(json.dumps(out, indent=2))
        return EXIT_OK
    for t in targets:
        state = f"rollback ready (to {t.rollback_to})" if t.ready else f"NOT READY: {t.problem}"
        c = running.get(t.target)
        canary_text = f"  canary: revision {c.canary_revision} at {c.weight} %" if c else ""
        print(
            f"{t.target:<28} {t.kind:<7} {t.task_type or '*':<20} active {t.active} of {t.latest}  {state}{canary_text}"
        )
    if not targets:
        print("(no rollout targets)")
    return EXIT_OK


def run_rollouts_verify(args: Namespace, ctx: Context) -> int:
    """Rehearse every target's rollback in a rolled-back transaction; exit 1 if one would fail."""
    from fsar_tui.db import rollouts

    failures = 0
    with ctx.connect(autocommit=False) as conn:
        for t in rollouts.list_targets(conn):
            if t.rollback_to is None and t.problem == "no earlier revision":
                print(f"{t.target}: nothing to roll back to (one revision)")
                continue
            problem = rollouts.rehearse(conn, t)
            if problem is None:
                print(f"{t.target}: rollback to revision {t.rollback_to} rehearsed and rolled back: ready")
            else:
                failures += 1
                print(f"{t.target}: NOT READY: {problem}")
    return EXIT_FAILED if failures else EXIT_OK


def run_rollback(args: Namespace, ctx: Context, stdin=None) -> int:
    from fsar_tui.db import rollouts
    from fsar_tui.db.actions import os_user
    from fsar_tui.domain.rollouts import preview_lines
    from fsar_tui.domain.sanitize import strip_controls

    reason = (args.reason or "").strip()
    if not reason and not args.dry_run:
        raise UsageError("--reason is required: say why, it goes to the operator log")
    if ctx.settings.read_only and not args.dry_run:
        raise UsageError("--read-only: rollback changes the rollout (--dry-run shows what it would do)")
    stdin = stdin or sys.stdin
    with ctx.connect(autocommit=False) as conn:
        p = rollouts.preview(conn, args.target, args.to)
        for line in preview_lines(p):
            print(strip_controls(line))
        if args.dry_run:
            print("dry run: nothing changed")
            return EXIT_OK
        if not args.yes:
            if not stdin.isatty() and stdin is sys.stdin:
                raise UsageError("not a terminal: confirm with --yes")
            print(f"type the target's name ({p.target}) to confirm: ", end="", flush=True)
            if stdin.readline().strip() != p.target:
                print("fsar-tui: not confirmed; nothing changed", file=sys.stderr)
                return EXIT_FAILED
        new = rollouts.rollback(conn, p.target, p.to, expected_active=p.active, actor=os_user(), reason=reason)
    print(f"{p.target}: revision {new} (a copy of {p.to}) is active")
    if ctx.settings.mqtt_url:
        from fsar_tui.live.mqtt import announce_rollout

        try:
            asyncio.run(announce_rollout(ctx.settings.mqtt_url, p.target, new, p.to))
        except Exception as exc:  # the database is the truth: workers also get NOTIFY and resync
            print(f"fsar-tui: rolled back, but the MQTT control message failed: {type(exc).__name__}", file=sys.stderr)
    return EXIT_OK
