"""`fsar-tui migrate` and `fsar-tui db status`: the schema, owned by Alembic.

migrate [--to REV | --downgrade REV --yes]: upgrade (default: head), adopting a legacy
    execution_tasks table without losing a row; a downgrade drops what later revisions
    created, rows included, so it needs --yes.
db status [--format text|json] [--check]: revision, head, pending, server, masked DSN;
    --check exits 1 while migrations are pending.
"""

from __future__ import annotations

import json
from argparse import Namespace
from typing import Any

from fsar_tui.commands.base import Context, Parser, add_command, subcommands
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(sub, common: Parser) -> None:
    p = add_command(
        sub,
        common,
        "migrate",
        run_migrate,
        help="bring the schema to head (adopts a legacy database)",
        description="Upgrade the schema (default: to head), adopting a legacy execution_tasks table.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--to", metavar="REV", default="head", help="upgrade to this revision (default: head)")
    mode.add_argument(
        "--downgrade", metavar="REV", help="downgrade to this revision ('base' drops everything); needs --yes"
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="confirm a downgrade: it drops what later revisions created, their rows included",
    )

    db = add_command(sub, common, "db", help="database commands")
    st = add_command(
        subcommands(db, "db_command"),
        common,
        "status",
        run_db_status,
        help="schema revision, pending migrations, server version, masked DSN",
    )
    st.add_argument("--format", choices=("text", "json"), default="text")
    st.add_argument("--check", action="store_true", help="exit 1 when migrations are pending")


def run_migrate(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db import migrations

    if args.downgrade and not args.yes:
        # Destructive in proportion to how far it goes (base drops execution_tasks and the
        # operator log): never on a reflex or a shell-history accident.
        raise UsageError(
            f"--downgrade {args.downgrade} drops the tables and columns later revisions created, "
            "with their rows; check `fsar-tui db status`, then add --yes"
        )
    dsn = ctx.dsn(migrate_embedded=False)
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
        print(
            f"{verb} {where} from {result.before or 'base'} to {result.after or 'base'} "
            f"({len(result.applied)} revision(s): {', '.join(result.applied)})"
        )
    else:
        print(f"{where} is already at {result.after or 'base'}; nothing to do")
    for note in result.notes:
        print(f"  {note}")
    return EXIT_OK


def run_db_status(args: Namespace, ctx: Context) -> int:
    from fsar_tui.db.connect import connect
    from fsar_tui.db.migrations import schema_status
    from fsar_tui.db.server import server_facts

    settings = ctx.settings
    dsn = ctx.dsn(migrate_embedded=False)
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
        current = (
            "legacy execution_tasks (not adopted yet)" if status.legacy else (status.current or "empty (no schema)")
        )
        print(f"database:  {info['dsn']}{' (embedded)' if settings.embedded else ''}")
        print(f"server:    PostgreSQL {facts.version} as {facts.role}{' (replica)' if facts.in_recovery else ''}")
        print(f"revision:  {current}")
        print(f"head:      {status.head}")
        print(f"pending:   {', '.join(status.pending) if status.pending else 'none'}")
    if args.check and (status.pending or status.legacy):
        return EXIT_FAILED
    return EXIT_OK
