"""What the headless subcommand modules share (audit_commands, proposal_commands,
governance): a short-lived autocommit connection with the configured statement timeout,
and the `--reason` every change must give (it goes to the operator log)."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable

from fsar_tui.errors import UsageError


def connect_for(dsn_factory: Callable[[], str], settings):
    from fsar_tui.db.connect import connect

    return connect(dsn_factory(), autocommit=True, statement_timeout_ms=settings.statement_timeout_ms)


def required_reason(args: Namespace) -> str:
    reason = (args.reason or "").strip()
    if not reason:
        raise UsageError("--reason is required: say why, it goes to the operator log")
    return reason
