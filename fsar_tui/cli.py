"""The `fsar-tui` entry point: `main()`, the error → exit-code mapping, and the loop
over the command families' registry (fsar_tui/commands/).

Every subcommand (and the bare command, which opens the app) accepts the connection
options after its own name: `fsar-tui migrate --dsn …`, `fsar-tui --dsn … --read-only`.

Exit codes: 0 ok · 1 an operation or check failed · 2 usage or connection error.
Errors are one line on stderr (plus detail lines where rows are listed); never a
traceback (FSAR_DEBUG=1 shows one for developers); passwords are always masked.
Everything a command writes to stdout/stderr passes one sanitiser (commands/output.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

import psycopg

from fsar_tui import __version__
from fsar_tui.commands import register_all
from fsar_tui.commands.base import EPILOG, Context, Parser, common_options, settings_from
from fsar_tui.commands.fleet import run_app, run_demo
from fsar_tui.commands.serve import run as run_serve
from fsar_tui.dsn import mask_dsn
from fsar_tui.errors import CheckFailed, ConnectionFailed, FsarError, UsageError, first_line


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = Parser(
        prog="fsar-tui",
        description="Operators' control panel for autonomous AI task execution.",
        epilog=EPILOG,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"fsar-tui {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    register_all(sub, common)
    parser.set_defaults(handler=run_app)
    return parser


def _report(err: FsarError) -> int:
    from fsar_tui.domain.sanitize import one_line

    # Messages quote file names and database text (a gate's name, a target): inert on the
    # terminal, whatever they hold, and one line each — a newline in a quoted name shows as ␤.
    print(f"fsar-tui: {one_line(err.message)}", file=sys.stderr)
    for line in err.details:
        print(f"  {one_line(line)}", file=sys.stderr)
    return err.exit_code


def run(argv: Sequence[str] | None) -> int:
    from fsar_tui.domain.redact import set_policy
    from fsar_tui.domain.sanitize import Reveal, install_reveal

    args = build_parser().parse_args(argv)
    ctx = Context(settings_from(args))
    set_policy(ctx.settings.redaction)  # one policy for every screen, report and export
    install_reveal(Reveal())  # redacted until a reveal is allowed and logged
    if ctx.settings.reveal and ctx.settings.read_only:
        raise UsageError("--reveal is logged in the operator log, which --read-only forbids: drop one")
    # The app logs its own reveal; serve refuses --reveal before anything else, so a
    # refused serve must not have logged one.
    if ctx.settings.reveal and args.handler not in (run_app, run_demo, run_serve):
        from fsar_tui.commands.governance import reveal_for_cli

        reveal_for_cli(args, ctx)
    code: int = args.handler(args, ctx)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    from fsar_tui.commands.output import terminal_safe_output

    try:
        with terminal_safe_output():  # every byte a command prints passes strip_controls
            return run(argv)
    except FsarError as err:
        return _report(err)
    except psycopg.errors.QueryCanceled as exc:
        # A subclass of OperationalError, but the server is there: the query was too slow.
        return _report(CheckFailed(f"statement timeout: {mask_dsn(first_line(exc))} (the server is slow or busy)"))
    except psycopg.errors.LockNotAvailable as exc:
        return _report(CheckFailed(f"lock timeout: {mask_dsn(first_line(exc))} (another session holds the lock)"))
    except psycopg.errors.InsufficientPrivilege as exc:
        return _report(CheckFailed(f"{mask_dsn(first_line(exc))} (this role lacks the grant: README, Roles)"))
    except psycopg.OperationalError as exc:
        # Connection lost mid-operation (server restart, network): a usage/connection error.
        return _report(
            ConnectionFailed(
                f"database connection lost: {mask_dsn(first_line(exc))} — a change in flight may or may not "
                "have applied (`fsar-tui log list` shows it if it did)"
            )
        )
    except psycopg.Error as exc:
        return _report(CheckFailed(f"database error: {mask_dsn(first_line(exc))}"))
    except BrokenPipeError:
        # The reader went away (`fsar-tui tasks list | head -1`): what it read was its
        # choice, not a failure. Point stdout at /dev/null so the interpreter's final
        # flush cannot fail again, and exit 0.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
        return 0
    except KeyboardInterrupt:
        print("fsar-tui: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: still one line, still masked
        if os.environ.get("FSAR_DEBUG"):
            traceback.print_exc()
        first = first_line(exc) if str(exc).strip() else ""
        return _report(
            CheckFailed(f"internal error: {type(exc).__name__}: {mask_dsn(first)} (FSAR_DEBUG=1 shows details)")
        )
