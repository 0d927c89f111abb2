"""Data governance, headless: `--reveal`, `fsar-tui anonymize`, `fsar-tui security-audit`.

--reveal (any command that prints untrusted text, and the app): raw data instead of the
    redaction policy's output. Allowed only to roles with EXECUTE on fsar_record_reveal
    (fsar_admin); the reveal (target `cli:<command>`, the options given — names only —
    as its reason) is appended to operator_actions before anything raw is shown.
    Refused: exit 2, nothing printed. cli.main calls reveal_for_cli for every command.
anonymize --older-than 90d [--dry-run] [--batch-size N] --reason TEXT [--yes]: see
    services/anonymize.py; prints counts per table and per finding. --dry-run counts,
    writes nothing.
security-audit [--format table|json]: the checks of services/security_audit.py; exit 1
    if any fails.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace

from fsar_tui.commands.base import Context, Parser, add_command, positive_count, required_reason
from fsar_tui.domain import sanitize
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, UsageError
from fsar_tui.services.anonymize import DEFAULT_BATCH, DEFAULT_REASON, anonymize
from fsar_tui.services.security_audit import Check, security_checks


def register(sub, common: Parser) -> None:
    anon = add_command(
        sub,
        common,
        "anonymize",
        run_anonymize,
        help="scrub personal data from old payloads and ledger metadata",
        description="Irreversibly replace personal data and secrets (the redaction policy: detectors and fields) in "
        "task payloads, results and errors, ledger metadata and stored Stripe events older than the "
        "cutoff, in batches; unchanged rows are not written. Needs fsar_admin (except --dry-run).",
    )
    anon.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 90d")
    anon.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    anon.add_argument(
        "--batch-size", type=positive_count, default=DEFAULT_BATCH, help="rows per transaction (default 2,000)"
    )
    anon.add_argument("--reason", help="why (required unless --dry-run; goes to the operator log)")
    anon.add_argument("--yes", action="store_true", help="do not ask (else type 'anonymize' at a terminal)")
    sec = add_command(
        sub,
        common,
        "security-audit",
        run_security_audit,
        help="check the deployment; exit 1 on any failure",
        description="The app's role is not a superuser; operator_actions refuses UPDATE and DELETE; fsar_viewer "
        "cannot write; TLS for a remote host; the operator log's hash chain verifies (recomputed here, against the "
        "database's head) and its triggers and functions are the shipped ones; the state-changing functions are the "
        "shipped ones; PUBLIC executes no fsar function; the grants are exactly the declared ones (README, Roles).",
    )
    sec.add_argument("--format", choices=("table", "json"), default="table")


def command_label(args: Namespace) -> str:
    """`proposals show fsar_x` — the subcommand path and its subject, never an option value."""
    words = [args.command] + [
        getattr(args, k) for k in sorted(vars(args)) if k.endswith("_command") and getattr(args, k)
    ]
    subject = getattr(args, "id", None)
    return " ".join(str(w) for w in words + ([subject] if subject is not None else []))


def reveal_for_cli(args: Namespace, ctx: Context) -> None:
    """`--reveal` on a headless command: log the reveal (or be refused: RevealRefused, exit 2,
    before anything is printed), then every safe_str() of this process shows raw text.
    The log names the command and the options given, never their values (a DSN's password)."""
    from fsar_tui.db.actions import os_user
    from fsar_tui.db.governance import record_reveal_sync

    options = sorted({a.split("=", 1)[0] for a in sys.argv[1:] if a.startswith("--")})
    with ctx.connect() as conn:
        record_reveal_sync(
            conn,
            actor=os_user(),
            target=f"cli:{command_label(args)}",
            reason=sanitize.strip_controls(f"fsar-tui {command_label(args)} {' '.join(options)}")[:300],
        )
    sanitize.install_reveal(sanitize.Reveal(on=True))


def run_anonymize(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db.actions import os_user
    from fsar_tui.domain.durations import DurationError, parse_window

    try:
        older_than_s = parse_window(args.older_than)
    except DurationError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    # An irreversible write follows the rule of every other write: a reason, and --yes or
    # a typed confirmation at a terminal (--dry-run stays free).
    reason = DEFAULT_REASON if args.dry_run else required_reason(args)
    if not args.dry_run and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("anonymize rewrites data irreversibly: not a terminal, confirm with --yes")
        print("anonymize rewrites data irreversibly; type 'anonymize' to confirm: ", end="", flush=True)
        if sys.stdin.readline().strip() != "anonymize":
            print("fsar-tui: not confirmed; nothing changed", file=sys.stderr)
            return EXIT_FAILED
    with ctx.connect() as conn:
        if not args.dry_run:
            from fsar_tui.db.governance import privileges_sync

            if not privileges_sync(conn).anonymize:
                raise UsageError(
                    f"anonymize refused: role {conn.info.user} may not rewrite payloads and ledger "
                    "metadata (grant it fsar_admin); --dry-run only counts"
                )
        # The configured statement timeout, like every command: a pass over whole tables is
        # many short statements (each reads at most --batch-size rows by key, see
        # db/governance.batches), so the timeout bounds one batch, and a lock held
        # elsewhere fails the run in that time instead of stalling it.
        result = anonymize(
            conn,
            older_than_s=older_than_s,
            dry_run=args.dry_run,
            batch_size=args.batch_size,
            actor=os_user(),
            reason=reason,
        )
    verb = "would scrub" if args.dry_run else "scrubbed"
    for table, c in result.items():
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(c.findings.items())) or "nothing personal"
        skipped = f", {c.skipped:,} changed meanwhile (left for the next run)" if c.skipped else ""
        print(f"{table}: scanned {c.scanned:,}, {verb} {c.changed:,}{skipped} ({kinds}){c.notes()}")
    if args.dry_run:
        print("dry run: nothing written")
    return EXIT_OK


def run_security_audit(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db.connect import connect

    with ctx.connect() as conn:
        checks = security_checks(conn, ctx.dsn())
    if ctx.settings.read_dsn:  # the replica's connection carries the same data
        from fsar_tui.dsn import tls_verdict

        with connect(
            ctx.settings.read_dsn, autocommit=True, statement_timeout_ms=ctx.settings.statement_timeout_ms
        ) as conn:
            ok, detail = tls_verdict(
                ctx.settings.read_dsn,
                connected_host=conn.info.hostaddr or conn.info.host,
                tls_in_use=bool(conn.pgconn.ssl_in_use),
            )
        checks.append(Check("TLS for the read DSN", ok, detail))
    if args.format == "json":
        print(json.dumps([{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks], indent=2))
    else:
        for c in checks:
            print(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {sanitize.safe_str(c.detail)}")
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} of {len(checks)} checks passed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
