"""The `fsar-tui` entry point: argument parsing and thin calls into services.

Every subcommand (and the bare command, which opens the app) accepts the connection
options after its own name: `fsar-tui migrate --dsn …`, `fsar-tui --dsn … --read-only`.

Exit codes: 0 ok · 1 an operation or check failed · 2 usage or connection error.
Errors are one line on stderr (plus detail lines where rows are listed); never a
traceback (FSAR_DEBUG=1 shows one for developers); passwords are always masked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import psycopg

from fsar_tui import __version__
from fsar_tui.config import Settings, load_settings
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, CheckFailed, FsarError, UsageError, first_line

from fsar_tui.domain.gates import METRICS as GATE_METRICS  # noqa: E402 (pure, cheap)

EPILOG = "exit codes: 0 ok, 1 an operation or check failed, 2 usage or connection error"


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS defaults so an option given before the subcommand is not reset by the
    # subcommand's copy of the same option.
    common = _Parser(add_help=False)
    g = common.add_argument_group("connection and configuration")
    g.add_argument("--dsn", default=argparse.SUPPRESS, help="PostgreSQL DSN (env FSAR_DSN); embedded server when none")
    g.add_argument("--read-dsn", default=argparse.SUPPRESS, help="DSN for reads, e.g. a replica (env FSAR_READ_DSN)")
    g.add_argument("--mqtt-url", default=argparse.SUPPRESS, help="MQTT broker URL (env FSAR_MQTT_URL)")
    g.add_argument("--config", default=argparse.SUPPRESS, help="config.toml path (default: user config dir)")
    g.add_argument("--read-only", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="no write actions (env FSAR_READ_ONLY)")
    g.add_argument("--statement-timeout-ms", type=int, default=argparse.SUPPRESS,
                   help="per-query timeout (default 5000)")
    g.add_argument("--live", choices=("auto", "mqtt", "notify", "poll"), default=argparse.SUPPRESS,
                   help="live event source (default auto: mqtt if configured, else notify, else poll)")
    g.add_argument("--reveal", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="show raw data instead of redacted (needs fsar_admin; every reveal is logged)")
    g.add_argument("--ingest-live", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="the app also ingests FSAR reports published on fsar/v1/proposals")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(prog="fsar-tui", description="Operators' control panel for autonomous AI task execution.",
                     epilog=EPILOG, parents=[common])
    parser.add_argument("--version", action="version", version=f"fsar-tui {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("migrate", parents=[common], epilog=EPILOG,
                       help="bring the schema to head (adopts a legacy database)",
                       description="Upgrade the schema (default: to head), adopting a legacy execution_tasks table.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--to", metavar="REV", default="head", help="upgrade to this revision (default: head)")
    mode.add_argument("--downgrade", metavar="REV", help="downgrade to this revision ('base' drops everything); "
                                                         "needs --yes")
    p.add_argument("--yes", action="store_true",
                   help="confirm a downgrade: it drops what later revisions created, their rows included")
    p.set_defaults(handler=cmd_migrate)

    db = sub.add_parser("db", parents=[common], epilog=EPILOG, help="database commands")
    db_sub = db.add_subparsers(dest="db_command", parser_class=_Parser, metavar="SUBCOMMAND", required=True)
    st = db_sub.add_parser("status", parents=[common], epilog=EPILOG,
                           help="schema revision, pending migrations, server version, masked DSN")
    st.add_argument("--format", choices=("text", "json"), default="text")
    st.add_argument("--check", action="store_true", help="exit 1 when migrations are pending")
    st.set_defaults(handler=cmd_db_status)

    sim = sub.add_parser("simulate", parents=[common], epilog=EPILOG,
                         help="run the reference agent fleet against the database",
                         description="An enqueuer plus N async workers per process that follow the integration "
                                     "contract: claim with SKIP LOCKED, lease, run, record, retry, publish.")
    sim.add_argument("--workers", type=int, default=4, help="async workers per process (default 4)")
    sim.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    sim.add_argument("--rate", type=float, default=5.0, help="new tasks per second; 0 = all of --tasks at once")
    sim.add_argument("--duration", type=float, help="stop after this many seconds")
    sim.add_argument("--tasks", type=int, help="enqueue exactly this many tasks, then stop enqueuing")
    sim.add_argument("--seed", type=int, default=0, help="makes task mix and outcomes reproducible")
    sim.add_argument("--time-scale", type=float, default=1.0, help="multiply run times (0 = instant)")
    sim.add_argument("--lease", type=float, default=30.0, dest="lease_s", help="lease seconds (default 30)")
    sim.add_argument("--until-idle", action="store_true", help="stop when every task is terminal")
    sim.add_argument("--no-enqueue", action="store_false", dest="enqueue", help="only run workers")
    sim.add_argument("--child-index", type=int, default=0, help=argparse.SUPPRESS)
    sim.set_defaults(handler=cmd_simulate)

    demo = sub.add_parser("demo", parents=[common], epilog=EPILOG,
                          help="embedded database + demo history + simulator + the app",
                          description="Starts (or reuses) the embedded database, migrates it, seeds 30 days of "
                                      "history on first run, runs the simulator in the background, opens the app.")
    demo.add_argument("--tasks", type=int, default=200_000, help="history to seed on first run (default 200,000)")
    demo.add_argument("--rate", type=float, default=3.0, help="simulator tasks per second (default 3)")
    demo.set_defaults(handler=cmd_demo)

    seed = sub.add_parser("seed", parents=[common], epilog=EPILOG, help="bulk-load plausible history (COPY)",
                          description="Tasks, task_events, ledger entries, price history, rollouts and FSAR "
                                      "proposals over the last D days, in one transaction.")
    seed.add_argument("--days", type=int, default=30)
    seed.add_argument("--tasks", type=int, default=200_000)
    seed.add_argument("--seed", type=int, default=0)
    seed.set_defaults(handler=cmd_seed)

    prof = sub.add_parser("profile", parents=[common], epilog=EPILOG,
                          help="duration profiles per type × model (or rollout) from the rollups",
                          description="p50/p90/p99 run time, queue wait, failure rate and cost per successful "
                                      "task over a window, from the trigger-kept rollups (percentiles within 0.8 %%). "
                                      "--backfill counts history that predates the rollups, in resumable batches.")
    prof.add_argument("--window", default="7d", help="how far back: 1h, 24h, 7d, 30d… (default 7d)")
    prof.add_argument("--by", default="type,model", help="comma-separated: type, model, rollout (default type,model)")
    prof.add_argument("--format", choices=("table", "json", "csv"), default="table")
    prof.add_argument("--backfill", action="store_true", help="count pre-existing history first (resumable)")
    prof.add_argument("--batch-size", type=int, default=50_000, help="task ids per backfill batch (default 50,000)")
    prof.set_defaults(handler=cmd_profile)

    stripe_in = sub.add_parser(
        "ingest-stripe", parents=[common], epilog=EPILOG, help="ingest exported Stripe events (JSON lines)",
        description="Each line a Stripe event, or an envelope {\"stripe_signature\": …, \"payload\": …} as "
                    "received by a webhook. With FSAR_STRIPE_WEBHOOK_SECRET set, every line must be a signed "
                    "envelope. Idempotent by event id; each event lands in its own transaction, so a rejected "
                    "line (reported with its number and reason) never stops the others. Exit 1 if any line "
                    "was rejected.")
    stripe_in.add_argument("file", metavar="FILE", help="a .jsonl file, or - for standard input")
    stripe_in.set_defaults(handler=cmd_ingest_stripe)

    hook = sub.add_parser(
        "webhook", parents=[common], epilog=EPILOG, help="receive Stripe webhooks over HTTP",
        description="A small HTTP receiver for Stripe webhooks: POST PATH with the Stripe-Signature header, "
                    "verified when FSAR_STRIPE_WEBHOOK_SECRET is set; the same ingestion as ingest-stripe.")
    hook.add_argument("--port", type=int, default=8787, help="TCP port (default 8787)")
    hook.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    hook.add_argument("--path", default="/stripe/webhook", help="URL path (default /stripe/webhook)")
    hook.set_defaults(handler=cmd_webhook)

    roi = sub.add_parser(
        "roi", parents=[common], epilog=EPILOG, help="revenue, cost, profit and ROI from the rollups",
        description="ROI per currency for a window and a breakdown by one dimension, from the same query code "
                    "as the ROI screen. Revenue is attributed to an idea's tasks in proportion to their cost.")
    roi.add_argument("--window", default="30d", help="how far back: 24h, 7d, 30d… (default 30d)")
    roi.add_argument("--by", default="type", choices=("type", "model", "rollout", "idea", "day", "week"),
                     help="breakdown dimension (default type)")
    roi.add_argument("--format", choices=("table", "json", "csv"), default="table")
    roi.set_defaults(handler=_delegate("fsar_tui.roi_report", "run_roi_command"))

    report = sub.add_parser(
        "report", parents=[common], epilog=EPILOG, help="ROI, profiles, audits and alerts as a report",
        description="Write a report (Markdown, JSON or CSV) and optionally deliver it by SMTP or webhook. "
                    "A delivery that fails exits 1 and keeps the file.")
    report.add_argument("--period", default="7d", help="how far back (default 7d)")
    report.add_argument("--format", choices=("md", "json", "csv"), default="md")
    report.add_argument("--out", metavar="FILE", help="write here (default: standard output; with a delivery, "
                                                      "./fsar-report-<UTC time>.<format>)")
    report.add_argument("--smtp", metavar="URL", help="smtp://[user:pass@]host[:port] or smtps://…; needs --to")
    report.add_argument("--to", metavar="ADDR", action="append", default=[], help="recipient (repeatable)")
    report.add_argument("--from", dest="sender", metavar="ADDR", default="fsar-tui@localhost",
                        help="sender address (default fsar-tui@localhost)")
    report.add_argument("--webhook", metavar="URL", help="POST the JSON report here")
    report.set_defaults(handler=_delegate("fsar_tui.report", "run_report_command"))

    rollouts_p = sub.add_parser("rollouts", parents=[common], epilog=EPILOG, help="rollout targets")
    rollouts_sub = rollouts_p.add_subparsers(dest="rollouts_command", parser_class=_Parser, metavar="SUBCOMMAND",
                                             required=True)
    rl = rollouts_sub.add_parser("list", parents=[common], epilog=EPILOG,
                                 help="targets, active revision, rollback readiness")
    rl.add_argument("--format", choices=("table", "json"), default="table")
    rl.set_defaults(handler=_delegate("fsar_tui.rollout_commands", "run_rollouts_list"))
    rv = rollouts_sub.add_parser("verify", parents=[common], epilog=EPILOG,
                                 help="rehearse every rollback in a rolled-back transaction; exit 1 if one fails")
    rv.set_defaults(handler=_delegate("fsar_tui.rollout_commands", "run_rollouts_verify"))
    rb = sub.add_parser(
        "rollback", parents=[common], epilog=EPILOG, help="roll a target back (or forward) to a revision",
        description="Preview, confirm (type the target's name, or --yes), then one transaction: a new revision "
                    "copying the chosen one becomes active, NOTIFY and a retained MQTT control message tell the "
                    "workers, and the operator log records it. Refused (exit 1) if someone changed the target "
                    "first or the chosen artifact no longer matches its hash.")
    rb.add_argument("target", metavar="TARGET")
    rb.add_argument("--to", type=int, metavar="REV", help="revision to go to (default: the one before the active)")
    rb.add_argument("--reason", help="why (required; goes to the operator log)")
    rb.add_argument("--yes", action="store_true", help="do not ask to type the target's name")
    rb.add_argument("--dry-run", action="store_true", help="show the preview and stop")
    rb.set_defaults(handler=_delegate("fsar_tui.rollout_commands", "run_rollback"))

    log = sub.add_parser("log", parents=[common], epilog=EPILOG, help="the operator action log")
    log_sub = log.add_subparsers(dest="log_command", parser_class=_Parser, metavar="SUBCOMMAND", required=True)
    verify = log_sub.add_parser(
        "verify", parents=[common], epilog=EPILOG, help="check the hash chain; exit 1 if broken",
        description="Recompute the operator log's hash chain outside the database and compare it with the "
                    "anchor left by the previous clean verify: finds edited rows, deleted rows (also at the "
                    "end) and rewritten chains, even by a superuser with the trigger disabled.")
    verify.add_argument("--anchor", metavar="FILE", help="anchor file (default: in the user data directory)")
    verify.add_argument("--keep-anchor", action="store_true", help="do not move the anchor after a clean verify")
    verify.set_defaults(handler=_delegate("fsar_tui.action_log", "run_log_verify"))
    listing = log_sub.add_parser("list", parents=[common], epilog=EPILOG, help="the log, newest first")
    listing.add_argument("--actor")
    listing.add_argument("--action")
    listing.add_argument("--target", help="target prefix, e.g. task:")
    listing.add_argument("--since", help="how far back: 1h, 24h, 7d…")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(handler=_delegate("fsar_tui.action_log", "run_log_list"))

    audit = sub.add_parser("audit", parents=[common], epilog=EPILOG, help="audit gates")
    audit_sub = audit.add_subparsers(dest="audit_command", parser_class=_Parser, metavar="SUBCOMMAND", required=True)
    arun = audit_sub.add_parser(
        "run", parents=[common], epilog=EPILOG, help="evaluate the gates (and drift); exit 1 if a hard gate fails",
        description="Evaluate every enabled gate (or --gate NAME), record the verdicts, and run the drift detector. "
                    "Exit 1 when a hard gate fails, or any evaluated gate with --gate or --strict.")
    arun.add_argument("--gate", metavar="NAME", help="only this gate (exit 1 if it fails, hard or soft)")
    arun.add_argument("--strict", action="store_true", help="exit 1 on soft failures too")
    arun.add_argument("--format", choices=("table", "json"), default="table")
    arun.set_defaults(handler=_delegate("fsar_tui.audit_commands", "run_audit"))
    alist = audit_sub.add_parser("gates", parents=[common], epilog=EPILOG, help="gates and their latest verdicts")
    alist.add_argument("--format", choices=("table", "json"), default="table")
    alist.set_defaults(handler=_delegate("fsar_tui.audit_commands", "run_gates_list"))
    agate = audit_sub.add_parser("gate", parents=[common], epilog=EPILOG, help="add or change a gate")
    agate_sub = agate.add_subparsers(dest="gate_command", parser_class=_Parser, metavar="SUBCOMMAND", required=True)
    gadd = agate_sub.add_parser("add", parents=[common], epilog=EPILOG, help="define a gate")
    gadd.add_argument("name", metavar="NAME")
    gadd.add_argument("--metric", required=True, choices=GATE_METRICS)
    gadd.add_argument("--pass-if", required=True, metavar="COND", help="pass condition, e.g. '<= 0.2'")
    gadd.add_argument("--window", required=True, help="window, e.g. 1h")
    gadd.add_argument("--baseline", help="compare with this window before it, as a ratio (e.g. 7d)")
    gadd.add_argument("--type", help="scope: task type")
    gadd.add_argument("--model", help="scope: ai_model")
    gadd.add_argument("--rollout", help="scope: rollout target (its active revision's tasks)")
    gadd.add_argument("--hard", action="store_true", help="a failure blocks execution in the scope")
    gadd.add_argument("--description")
    gadd.add_argument("--reason", help="why (required; goes to the operator log)")
    gadd.set_defaults(handler=_delegate("fsar_tui.audit_commands", "run_gate_add"))
    gset = agate_sub.add_parser("set", parents=[common], epilog=EPILOG, help="change a gate")
    gset.add_argument("name", metavar="NAME")
    hard = gset.add_mutually_exclusive_group()
    hard.add_argument("--hard", dest="hard", action="store_const", const=True)
    hard.add_argument("--soft", dest="hard", action="store_const", const=False)
    enabled = gset.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_const", const=True)
    enabled.add_argument("--disable", dest="enabled", action="store_const", const=False)
    gset.add_argument("--pass-if", metavar="COND")
    gset.add_argument("--reason", help="why (required; goes to the operator log)")
    gset.set_defaults(handler=_delegate("fsar_tui.audit_commands", "run_gate_set"))
    aover = audit_sub.add_parser("override", parents=[common], epilog=EPILOG,
                                 help="let a failing hard gate's scope run until the gate passes again")
    aover.add_argument("name", metavar="NAME")
    aover.add_argument("--reason", help="why (required; goes to the operator log)")
    aover.add_argument("--for", dest="for_", metavar="DURATION", help="expire the override after this long (e.g. 4h)")
    aover.set_defaults(handler=_delegate("fsar_tui.audit_commands", "run_override"))

    alerts = sub.add_parser("alerts", parents=[common], epilog=EPILOG, help="drift alerts")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", parser_class=_Parser, metavar="SUBCOMMAND",
                                       required=True)
    al = alerts_sub.add_parser("list", parents=[common], epilog=EPILOG, help="open alerts (firing, acked)")
    al.add_argument("--format", choices=("table", "json"), default="table")
    al.set_defaults(handler=_delegate("fsar_tui.audit_commands", "run_alerts_list"))
    aa = alerts_sub.add_parser("ack", parents=[common], epilog=EPILOG, help="acknowledge a firing alert")
    aa.add_argument("id", type=int, metavar="ID")
    aa.add_argument("--reason", help="why (required; goes to the operator log)")
    aa.set_defaults(handler=_delegate("fsar_tui.audit_commands", "run_alerts_ack"))

    ingest = sub.add_parser(
        "ingest-fsar", parents=[common], epilog=EPILOG, help="ingest FSAR Proposal Reports (all or nothing)",
        description="Parse every report named (files, directories, - for standard input), then store them in one "
                    "transaction. A parse error (FILE:LINE: reason) or a conflict (the same id stored with other "
                    "content) stores nothing and exits 1; a report already stored identically is a no-op.")
    ingest.add_argument("paths", nargs="*", metavar="PATH")
    ingest.set_defaults(handler=_delegate("fsar_tui.proposal_commands", "run_ingest"))

    props = sub.add_parser("proposals", parents=[common], epilog=EPILOG, help="FSAR proposals")
    props_sub = props.add_subparsers(dest="proposals_command", parser_class=_Parser, metavar="SUBCOMMAND",
                                     required=True)
    pl = props_sub.add_parser("list", parents=[common], epilog=EPILOG, help="by severity, then newest")
    pl.add_argument("--format", choices=("table", "json"), default="table")
    pl.set_defaults(handler=_delegate("fsar_tui.proposal_commands", "run_list"))
    ps = props_sub.add_parser("show", parents=[common], epilog=EPILOG, help="one proposal in full (redacted)")
    ps.add_argument("id", metavar="ID")
    ps.add_argument("--format", choices=("text", "json"), default="text")
    ps.set_defaults(handler=_delegate("fsar_tui.proposal_commands", "run_show"))
    for name, text in (("accept", "accept a new proposal"), ("reject", "reject a proposal (ends its block)"),
                       ("implemented", "mark a proposal implemented (ends its block)"),
                       ("lift", "lift a proposal's execution block")):
        pd = props_sub.add_parser(name, parents=[common], epilog=EPILOG, help=text)
        pd.add_argument("id", metavar="ID")
        pd.add_argument("--reason", help="why (required; goes to the operator log)")
        if name != "lift":
            pd.add_argument("--expect", metavar="STATUS", help="refuse unless the proposal is still in this status")
        pd.set_defaults(handler=_delegate("fsar_tui.proposal_commands", "run_decide"), expect=None)

    pt = props_sub.add_parser("tick", parents=[common], epilog=EPILOG,
                              help="tick or untick a risk or mitigation (risks/0, mitigations/2)")
    pt.add_argument("id", metavar="ID")
    pt.add_argument("item", metavar="ITEM", help="risks/N or mitigations/N (0-based, as `proposals show --format json`)")
    pt.add_argument("--reason", help="optional note for the operator log (default: the item's text)")
    pt.set_defaults(handler=_delegate("fsar_tui.proposal_commands", "run_tick"))

    anon = sub.add_parser(
        "anonymize", parents=[common], epilog=EPILOG, help="scrub personal data from old payloads and ledger metadata",
        description="Irreversibly replace personal data and secrets (the redaction policy: detectors and fields) in "
                    "task payloads, results and errors, ledger metadata and stored Stripe events older than the cutoff, in batches; "
                    "unchanged rows are not written. Needs fsar_admin (except --dry-run).")
    anon.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 90d")
    anon.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    anon.add_argument("--batch-size", type=int, default=2_000, help="rows per transaction (default 2,000)")
    anon.add_argument("--reason", help="for the operator log (default: retention)")
    anon.set_defaults(handler=_delegate("fsar_tui.governance", "run_anonymize"))

    sec = sub.add_parser(
        "security-audit", parents=[common], epilog=EPILOG, help="check the deployment; exit 1 on any failure",
        description="The app's role is not a superuser; operator_actions refuses UPDATE and DELETE; fsar_viewer "
                    "cannot write; TLS for a remote host; the operator log's hash chain verifies.")
    sec.add_argument("--format", choices=("table", "json"), default="table")
    sec.set_defaults(handler=_delegate("fsar_tui.governance", "run_security_audit"))

    parser.set_defaults(handler=cmd_app)
    return parser


def settings_from(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    flags = {k: getattr(args, k, None) for k in ("dsn", "read_dsn", "mqtt_url", "read_only", "statement_timeout_ms",
                                                  "live", "reveal", "ingest_live")}
    return load_settings(flags=flags, env=env, config_path=getattr(args, "config", None))


def resolve_dsn(settings: Settings, *, migrate_embedded: bool = True) -> str:
    """The configured DSN, or the embedded server's (started, and migrated to head)."""
    if settings.dsn:
        return settings.dsn
    from fsar_tui.db.migrations import migrate
    from fsar_tui.embedded import start_embedded

    dsn = start_embedded()
    if migrate_embedded:
        migrate(dsn)
    return dsn


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from fsar_tui.db import migrations

    if args.downgrade and not args.yes:
        # Destructive in proportion to how far it goes (base drops execution_tasks and the
        # operator log): never on a reflex or a shell-history accident.
        raise UsageError(f"--downgrade {args.downgrade} drops the tables and columns later revisions created, "
                         "with their rows; check `fsar-tui db status`, then add --yes")
    dsn = resolve_dsn(settings, migrate_embedded=False)
    if args.downgrade:
        result = migrations.downgrade(dsn, args.downgrade)
        verb = "downgraded"
    else:
        result = migrations.migrate(dsn, args.to)
        verb = "upgraded"
    where = mask_dsn(dsn)
    if result.adopted:
        print(f"adopted legacy execution_tasks in {where}: kept every row, stamped {migrations.LEGACY_REVISION}")
    if result.applied:
        print(f"{verb} {where} from {result.before or 'base'} to {result.after or 'base'} "
              f"({len(result.applied)} revision(s): {', '.join(result.applied)})")
    else:
        print(f"{where} is already at {result.after or 'base'}; nothing to do")
    return EXIT_OK


def cmd_db_status(args: argparse.Namespace, settings: Settings) -> int:
    from fsar_tui.db.connect import connect
    from fsar_tui.db.migrations import schema_status
    from fsar_tui.db.server import server_facts

    dsn = resolve_dsn(settings, migrate_embedded=False)
    with connect(dsn, statement_timeout_ms=settings.statement_timeout_ms) as conn:
        facts = server_facts(conn)
        status = schema_status(conn)
    info: dict[str, Any] = {
        "dsn": mask_dsn(dsn),
        "embedded": settings.embedded,
        "server_version": facts.version,
        "role": facts.role,
        "database": facts.database,
        "current": status.current,
        "head": status.head,
        "pending": status.pending,
        "legacy_unadopted": status.legacy,
    }
    if args.format == "json":
        print(json.dumps(info, indent=2))
    else:
        current = "legacy execution_tasks (not adopted yet)" if status.legacy else (status.current or "empty (no schema)")
        print(f"database:  {info['dsn']}{' (embedded)' if settings.embedded else ''}")
        print(f"server:    PostgreSQL {facts.version} as {facts.role}{' (replica)' if facts.in_recovery else ''}")
        print(f"revision:  {current}")
        print(f"head:      {status.head}")
        print(f"pending:   {', '.join(status.pending) if status.pending else 'none'}")
    if args.check and (status.pending or status.legacy):
        return EXIT_FAILED
    return EXIT_OK


def configure_logging() -> None:
    """Warnings from background machinery (reconnects, reaper) as `fsar-tui: …` lines."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fsar-tui: %(message)s"))
    root = logging.getLogger("fsar_tui")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from fsar_tui.sim.runner import SimulateOptions, simulate

    opts = SimulateOptions(workers=args.workers, processes=args.processes, rate=args.rate, duration=args.duration,
                           tasks=args.tasks, seed=args.seed, time_scale=args.time_scale, lease_s=args.lease_s,
                           until_idle=args.until_idle, enqueue=args.enqueue, child_index=args.child_index,
                           mqtt_url=settings.mqtt_url)
    opts.validate()  # before starting any server or process
    configure_logging()
    simulate(resolve_dsn(settings), opts)
    return EXIT_OK


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from fsar_tui.sim.seed import seed_history, validate_seed_args

    validate_seed_args(args.days, args.tasks)  # before any server is started
    dsn = resolve_dsn(settings)
    started = time.monotonic()
    result = seed_history(dsn, days=args.days, tasks=args.tasks, seed=args.seed)
    elapsed = time.monotonic() - started
    rate = result.tasks / elapsed if elapsed > 0 else 0.0
    print(f"seeded {result.tasks} tasks, {result.events} task events, {result.ledger} ledger entries, "
          f"{result.proposals} proposals over {args.days} days in {elapsed:.1f}s ({rate:,.0f} tasks/s)")
    return EXIT_OK


def cmd_profile(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime, timedelta, timezone

    from fsar_tui.db import profiles as profile_queries
    from fsar_tui.db.connect import connect
    from fsar_tui.domain.task_filter import FilterError, format_duration, parse_window
    from fsar_tui.profile_report import render

    try:
        window_s = parse_window(args.window)
    except FilterError as err:
        raise UsageError(f"--window: {err}") from None
    by = tuple(d.strip() for d in args.by.split(",") if d.strip())
    unknown = [d for d in by if d not in profile_queries.DIMENSIONS]
    if unknown or not by or len(set(by)) != len(by):
        raise UsageError(f"--by takes distinct names among {', '.join(profile_queries.DIMENSIONS)}; got {args.by!r}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    dsn = resolve_dsn(settings)
    with connect(dsn, statement_timeout_ms=settings.statement_timeout_ms) as conn:
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
                print(f"fsar-tui: history up to task id {target:,} is not counted yet "
                      f"(backfilled to {done:,}); run `fsar-tui profile --backfill`", file=sys.stderr)
        now = datetime.now(timezone.utc)
        found = profile_queries.load_profiles_sync(conn, now - timedelta(seconds=window_s), now, now, by)
    print(render(found, by, args.format, format_duration(window_s)))
    return EXIT_OK


def cmd_ingest_stripe(args: argparse.Namespace, settings: Settings) -> int:
    from fsar_tui.stripe_ingest import run_ingest_command

    return run_ingest_command(args.file, lambda: resolve_dsn(settings), os.environ.get("FSAR_STRIPE_WEBHOOK_SECRET"))


def cmd_webhook(args: argparse.Namespace, settings: Settings) -> int:
    from fsar_tui.webhook import run_webhook_command

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, got {args.port}")
    return run_webhook_command(resolve_dsn(settings), args.host, args.port, args.path,
                               os.environ.get("FSAR_STRIPE_WEBHOOK_SECRET"))


def _delegate(module: str, function: str) -> Callable[[argparse.Namespace, Settings], int]:
    """A subcommand whose work lives in its own module: imported when it runs (so `--help`
    and the other commands do not pay for it), called as function(args, dsn_factory, settings)."""
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args, lambda: resolve_dsn(settings), settings)
    return handler


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    import subprocess

    from fsar_tui.db.bulk import has_tasks
    from fsar_tui.db.connect import connect
    from fsar_tui.sim.seed import seed_history

    if args.tasks < 0 or args.rate < 0:
        raise UsageError("--tasks and --rate cannot be negative")
    dsn = resolve_dsn(settings)
    with connect(dsn) as conn:
        empty = not has_tasks(conn)
    if empty and args.tasks:
        print(f"fsar-tui: first run: seeding 30 days of history ({args.tasks:,} tasks)…", file=sys.stderr)
        result = seed_history(dsn, days=30, tasks=args.tasks, seed=0)
        print(f"fsar-tui: seeded {result.tasks:,} tasks", file=sys.stderr)
    log = open(os.devnull, "w")
    env = {**os.environ, "FSAR_DSN": dsn}
    if settings.mqtt_url:
        env["FSAR_MQTT_URL"] = settings.mqtt_url
    simulator = subprocess.Popen(
        [sys.executable, "-m", "fsar_tui", "simulate", "--workers", "6", "--rate", str(args.rate),
         "--time-scale", "0.2", "--lease", "10"], env=env, stdout=log, stderr=log)
    print(f"fsar-tui: simulator running in the background (pid {simulator.pid})", file=sys.stderr)
    try:
        from fsar_tui.app import FsarApp

        FsarApp(settings=settings, dsn=dsn).run()
    finally:
        simulator.terminate()
        try:
            simulator.wait(timeout=15)
        except subprocess.TimeoutExpired:
            simulator.kill()
        log.close()
    return EXIT_OK


def cmd_app(args: argparse.Namespace, settings: Settings) -> int:
    dsn = resolve_dsn(settings)
    from fsar_tui.app import FsarApp

    FsarApp(settings=settings, dsn=dsn).run()
    return EXIT_OK


def _report(err: FsarError) -> int:
    from fsar_tui.domain.sanitize import strip_controls

    # Messages quote file names and database text: inert on the terminal, whatever they hold.
    print(f"fsar-tui: {strip_controls(err.message)}", file=sys.stderr)
    for line in err.details:
        print(f"  {strip_controls(line)}", file=sys.stderr)
    return err.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        settings = settings_from(args)
        from fsar_tui.domain.redact import set_policy

        set_policy(settings.redaction)  # one policy for every screen, report and export
        handler: Callable[[argparse.Namespace, Settings], int] = args.handler
        if settings.reveal and settings.read_only:
            raise UsageError("--reveal is logged in the operator log, which --read-only forbids: drop one")
        if settings.reveal and handler not in (cmd_app, cmd_demo):  # the app logs its own reveal
            from fsar_tui.governance import reveal_for_cli

            reveal_for_cli(args, resolve_dsn(settings), settings)
        return handler(args, settings)
    except FsarError as err:
        return _report(err)
    except psycopg.OperationalError as exc:
        # Connection lost mid-operation (server restart, network): a usage/connection error.
        from fsar_tui.errors import ConnectionFailed

        return _report(ConnectionFailed(f"database connection lost: {mask_dsn(str(exc).strip().splitlines()[0])}"))
    except psycopg.Error as exc:
        return _report(CheckFailed(f"database error: {mask_dsn(first_line(exc))}"))
    except KeyboardInterrupt:
        print("fsar-tui: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: still one line, still masked
        if os.environ.get("FSAR_DEBUG"):
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return _report(CheckFailed(f"internal error: {type(exc).__name__}: {mask_dsn(first)} (FSAR_DEBUG=1 shows details)"))
