"""`fsar-tui metrics` — PLACEHOLDER while issue 20 builds it: the command exists so the CLI's
families are complete, and says it is not built yet (exit 2)."""

from __future__ import annotations

from argparse import Namespace

from fsar_tui.commands.base import Context, Parser, add_command
from fsar_tui.errors import UsageError


def register(sub, common: Parser) -> None:
    add_command(sub, common, "metrics", run, help="(not built yet: issue 20)")


def run(args: Namespace, ctx: Context) -> int:
    raise UsageError("`fsar-tui metrics` is not built yet (a placeholder: issue 20)")
