"""`fsar-tui serve [--host 127.0.0.1] [--port 8000] [--token T] [--allow-writes]`: the
app in a browser (textual-serve), one app per browser session, behind a token.

The order is what makes bad input cheap: the flags and the token are checked, then
config.toml's [notify] SMTP server must answer (notify.preflight, as `audit run` does:
every session's app would notify through it; masked, exit 2), then the port is bound
(in use, bad host: one line, exit 2), then the database is reached once
(unreachable: exit 2) — only then is anything served. The token is --token, else
FSAR_SERVE_TOKEN, else generated (secrets.token_urlsafe) and printed once, in the URL
on the serving terminal: the only secret fsar-tui ever prints. A browser presents it
once (?token=) and gets a cookie holding a session ticket drawn for this run — never the
token, which any other port on the host would receive with it. Read-only unless
--allow-writes: the served app runs with --read-only (its action keys are hidden and its
pool is read-only, so Postgres refuses a write anyway); with it, every write a session
makes claims `browser:<session id> (<os user>)` in the operator log. The server's own
wiring is fsar_tui/services/serve.py; the rules for tokens and hosts domain/serve_auth.py.
`--reveal` is refused (a browser session is not where raw data is shown): cli.py lets
this handler refuse it before any reveal is logged, so a refused serve leaves no row.
"""

from __future__ import annotations

import os
from argparse import Namespace

from fsar_tui.commands.base import Context, Parser, add_command, bounded_int
from fsar_tui.errors import EXIT_OK, UsageError

DEFAULT_PORT = 8000


def register(sub, common: Parser) -> None:
    parser = add_command(
        sub,
        common,
        "serve",
        run,
        help="the app in a browser (textual-serve), behind a token",
        description="Serves the app to a browser: each browser session runs its own app. Every request "
        "needs the token (?token= on the URL, or Authorization: Bearer); a wrong or missing one is "
        "answered 401. Read-only unless --allow-writes.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument(
        "--port",
        type=bounded_int(0, 65535, "a port"),
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}; 0: a free one, printed)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="the token browsers must present: 16+ of A-Z a-z 0-9 . _ ~ - (visible in `ps`: prefer env "
        "FSAR_SERVE_TOKEN, which `ps` does not show; default: generated and printed once)",
    )
    parser.add_argument(
        "--allow-writes",
        action="store_true",
        help="let browser sessions act (retry, cancel, rollback, …); each write is logged as "
        "browser:<session id> (<os user>)",
    )


def _token(args: Namespace) -> tuple[str, bool]:
    """(the token, whether it was generated here)."""
    from fsar_tui.domain import serve_auth

    given, source = args.token, "--token"
    if given is None:
        given, source = os.environ.get("FSAR_SERVE_TOKEN") or None, "FSAR_SERVE_TOKEN"
    if given is None:
        return serve_auth.generate_token(), True
    try:
        return serve_auth.check_token(given), False
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


def run(args: Namespace, ctx: Context) -> int:
    """Serve until SIGINT or SIGTERM, then return 0."""
    from fsar_tui.domain import serve_auth
    from fsar_tui.domain.sanitize import MAX_HOST_CHARS, clip
    from fsar_tui.services import serve

    settings = ctx.settings
    if settings.reveal:  # first: cli.py logs no reveal for this handler, trusting this
        raise UsageError("--reveal is not offered in a browser: drop it")
    if args.allow_writes and settings.read_only:
        raise UsageError(
            "--allow-writes and read-only (--read-only, FSAR_READ_ONLY or the config file) contradict: drop one"
        )
    try:
        host = serve_auth.check_host(args.host)
    except ValueError as exc:
        raise UsageError(f"--host {clip(args.host, MAX_HOST_CHARS)!r}: {exc}") from None
    token, generated = _token(args)
    if settings.notify is not None:
        from fsar_tui.services import notify as notifier

        notifier.preflight(settings.notify)  # an SMTP server that does not answer: exit 2, nothing bound
    sock = serve.bind_socket(host, args.port)
    try:
        dsn = ctx.dsn()
        ctx.connect().close()  # an unreachable database is exit 2 now, not a blank page later
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    serve.apply_environment(serve.app_environment(settings, dsn))
    config = serve.ServeConfig(
        token=token,
        port=port,
        allow_writes=args.allow_writes,
        app_argv=serve.app_command(settings, allow_writes=args.allow_writes),
    )
    url = serve_auth.page_url(host, port, token if generated else None)
    shown = " (a token generated for this run, shown only here)" if generated else ""
    print(f"fsar-tui serve: open {url}{shown}", flush=True)
    if args.allow_writes:
        config.say("writes allowed: each is logged as browser:<session id> (<os user>); Ctrl+C stops")
    else:
        config.say("read-only: the app's action keys are hidden (--allow-writes to act); Ctrl+C stops")
    if not serve_auth.is_loopback(host):
        config.say(
            f"{host} is reachable from other machines: the token is still required, and plain HTTP "
            "carries it in clear — put TLS in front (a reverse proxy) beyond a trusted network"
        )
    serve.serve(sock, config)
    config.say("stopped")
    return EXIT_OK
