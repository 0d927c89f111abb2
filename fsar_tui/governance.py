"""Data governance, headless: `--reveal`, `fsar-tui anonymize`, `fsar-tui security-audit`.

--reveal (any command that prints untrusted text, and the app): raw data instead of the
    redaction policy's output. Allowed only to roles with EXECUTE on fsar_record_reveal
    (fsar_admin); the reveal (target `cli:<command>`, the options given — names only —
    as its reason) is appended to operator_actions before anything raw is shown.
    Refused: exit 2, nothing printed. cli.main calls reveal_for_cli for every command.
anonymize --older-than 90d [--dry-run] [--batch-size N] [--reason TEXT]: irreversibly
    scrubs task payloads, results and errors (finished tasks, by when they finished:
    a queued or running task's payload is still an agent's input), ledger metadata
    (entries that occurred before it) and stored Stripe events (their billing details)
    with the redaction policy — detectors and fields —
    in keyset batches, each its own transaction; only rows that change are written, and
    only if they still hold what was read (else they are counted as skipped and left for
    the next run), so non-personal data stays byte-identical. Prints counts per table and
    per finding; `anonymize.start` is logged before the first write and `anonymize` with
    the counts at the end. --dry-run counts, writes nothing.
security-audit [--format table|json]: checks the deployment (below) and exits 1 if any
    check fails:
    - the app's role is not a superuser (nor BYPASSRLS);
    - operator_actions refuses UPDATE and DELETE to it (attempted, rolled back);
    - the read-only role fsar_viewer cannot write any table, and the three roles exist
      as NOLOGIN;
    - the DSN (and the read DSN, when set) uses TLS when the host is not local (judged by
      where the session really went, and whether it is encrypted);
    - the operator log's hash chain verifies.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from fsar_tui.domain import sanitize
from fsar_tui.domain.redact import policy
from fsar_tui.command_support import connect_for
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, UsageError

DEFAULT_BATCH = 2_000



def command_label(args: Namespace) -> str:
    """`proposals show fsar_x` — the subcommand path and its subject, never an option value."""
    words = [args.command] + [getattr(args, k) for k in sorted(vars(args)) if k.endswith("_command") and getattr(args, k)]
    subject = getattr(args, "id", None)
    return " ".join(str(w) for w in words + ([subject] if subject is not None else []))


def reveal_for_cli(args: Namespace, dsn: str, settings) -> None:
    """`--reveal` on a headless command: log the reveal (or be refused: RevealRefused, exit 2,
    before anything is printed), then every safe_str() of this process shows raw text.
    The log names the command and the options given, never their values (a DSN's password)."""
    from fsar_tui.db.actions import os_user
    from fsar_tui.db.connect import connect
    from fsar_tui.db.governance import record_reveal

    options = sorted({a.split("=", 1)[0] for a in sys.argv[1:] if a.startswith("--")})
    with connect(dsn, autocommit=True, statement_timeout_ms=settings.statement_timeout_ms) as conn:
        record_reveal(conn, actor=os_user(), target=f"cli:{command_label(args)}",
                      reason=sanitize.strip_controls(f"fsar-tui {command_label(args)} {' '.join(options)}")[:300])
    sanitize.set_revealed(True)


# -- anonymize ------------------------------------------------------------------------------

@dataclass
class ScrubCounts:
    scanned: int = 0
    changed: int = 0  # written (or, in a dry run, that would be)
    skipped: int = 0  # changed by someone else between the read and the write: left for the next run
    findings: Counter = None

    def __post_init__(self) -> None:
        self.findings = Counter() if self.findings is None else self.findings


def scrub_row(table: str, row: tuple) -> tuple | None:
    """The row (id, *columns) scrubbed by the policy, or None when nothing in it is personal."""
    p = policy()
    if table == "execution_tasks":
        task_id, payload, result, error = row
        new = (task_id, p.value(payload), p.value(result), None if error is None else p.text(error))
    else:  # ledger metadata, Stripe event payloads: one JSON column
        row_id, document = row
        new = (row_id, p.value(document))
    return None if new == tuple(row) else new


def _kinds(old: tuple, new: tuple) -> Counter:
    from fsar_tui.domain.redact import _TOKEN

    before = Counter(_TOKEN.findall(json.dumps(old[1:], default=str)))
    after = Counter(_TOKEN.findall(json.dumps(new[1:], default=str)))
    return after - before


DEFAULT_REASON = "retention: personal data past its keeping period, scrubbed by the redaction policy"


def anonymize(conn, *, older_than_s: int, dry_run: bool, batch_size: int, actor: str,
              reason: str = DEFAULT_REASON) -> dict[str, ScrubCounts]:
    from fsar_tui import clock
    from fsar_tui.db import governance

    cutoff = clock.now() - timedelta(seconds=older_than_s)
    if not dry_run:
        governance.log_anonymize(conn, actor=actor, cutoff=cutoff, reason=reason, action="anonymize.start")
    out: dict[str, ScrubCounts] = {}
    for table in governance.SCRUBBED:
        counts = out[table] = ScrubCounts()
        for rows in governance.batches(conn, table, cutoff, batch_size):
            counts.scanned += len(rows)
            changes = [(row, new) for row in rows if (new := scrub_row(table, row)) is not None]
            written = len(changes) if dry_run or not changes else governance.write_scrubbed(conn, table, changes)
            counts.changed += written
            counts.skipped += len(changes) - written
            for row, new in changes:
                counts.findings += _kinds(row, new)
    if not dry_run:
        governance.log_anonymize(conn, actor=actor, cutoff=cutoff, reason=reason, action="anonymize", counts={
            t: {"scanned": c.scanned, "changed": c.changed, "skipped": c.skipped, "findings": dict(c.findings)}
            for t, c in out.items()})
    return out


def run_anonymize(args: Namespace, dsn_factory: Callable[[], str], settings) -> int:
    from fsar_tui.db.actions import os_user
    from fsar_tui.domain.task_filter import FilterError, parse_window

    try:
        older_than_s = parse_window(args.older_than)
    except FilterError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    with connect_for(dsn_factory, settings) as conn:
        if not args.dry_run:
            from fsar_tui.db.governance import privileges

            if not privileges(conn).anonymize:
                raise UsageError(f"anonymize refused: role {conn.info.user} may not rewrite payloads and ledger "
                                 "metadata (grant it fsar_admin); --dry-run only counts")
        # A maintenance pass over whole tables: batches bound the transactions, not the time.
        conn.execute("SET statement_timeout = 0")
        result = anonymize(conn, older_than_s=older_than_s, dry_run=args.dry_run, batch_size=args.batch_size,
                           actor=os_user(), reason=(args.reason or "").strip() or DEFAULT_REASON)
    verb = "would scrub" if args.dry_run else "scrubbed"
    for table, c in result.items():
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(c.findings.items())) or "nothing personal"
        skipped = f", {c.skipped:,} changed meanwhile (left for the next run)" if c.skipped else ""
        print(f"{table}: scanned {c.scanned:,}, {verb} {c.changed:,}{skipped} ({kinds})")
    if args.dry_run:
        print("dry run: nothing written")
    return EXIT_OK


# -- security audit -------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def security_checks(conn, dsn: str) -> list[Check]:
    from fsar_tui.db import governance
    from fsar_tui.dsn import tls_verdict

    role, superuser, bypass = governance.role_facts(conn)
    powers = [p for p, has in (("SUPERUSER", superuser), ("BYPASSRLS", bypass)) if has]
    checks = [Check("app role is not a superuser", not powers,
                    f"role {role}" + (f" has {' and '.join(powers)}" if powers else ""))]
    attempts = governance.try_change_operator_actions(conn)
    leaks = {verb: what for verb, what in attempts.items() if what}
    checks.append(Check("operator_actions rejects UPDATE and DELETE", not leaks,
                        "; ".join(f"{v}: {w}" for v, w in leaks.items()) or f"both refused for {role}"))
    writable = governance.viewer_write_privileges(conn)
    roles = governance.roles_present(conn)
    missing = [r for r, login in roles.items() if login is None]
    login = [r for r, can in roles.items() if can]
    problems = ([f"missing role(s) {', '.join(missing)} (run fsar-tui migrate)"] if missing else []) + \
               ([f"{', '.join(login)} can log in (must be NOLOGIN)"] if login else []) + \
               ([f"fsar_viewer can write {', '.join(writable[:5])}" + ("…" if len(writable) > 5 else "")]
                if writable else [])
    checks.append(Check("read-only role cannot write", not problems,
                        "; ".join(problems) or "fsar_viewer: SELECT only; roles NOLOGIN"))
    ok, detail = tls_verdict(dsn, connected_host=conn.info.hostaddr or conn.info.host,
                             tls_in_use=bool(conn.pgconn.ssl_in_use))
    checks.append(Check("TLS for remote connections", ok, detail))
    broken = governance.chain_broken_at(conn)
    checks.append(Check("operator log hash chain verifies", broken is None,
                        "intact" if broken is None else f"broken at seq {broken} (fsar-tui log verify)"))
    return checks


def run_security_audit(args: Namespace, dsn_factory: Callable[[], str], settings) -> int:
    dsn = dsn_factory()
    from fsar_tui.db.connect import connect

    with connect(dsn, autocommit=True, statement_timeout_ms=settings.statement_timeout_ms) as conn:
        checks = security_checks(conn, dsn)
    if settings.read_dsn:  # the replica's connection carries the same data
        from fsar_tui.dsn import tls_verdict

        with connect(settings.read_dsn, autocommit=True, statement_timeout_ms=settings.statement_timeout_ms) as conn:
            ok, detail = tls_verdict(settings.read_dsn, connected_host=conn.info.hostaddr or conn.info.host,
                                     tls_in_use=bool(conn.pgconn.ssl_in_use))
        checks.append(Check("TLS for the read DSN", ok, detail))
    if args.format == "json":
        print(json.dumps([{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks], indent=2))
    else:
        for c in checks:
            print(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {sanitize.safe_str(c.detail)}")
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} of {len(checks)} checks passed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
