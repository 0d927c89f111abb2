"""What every command module shares: the parser class, the connection options every
subcommand accepts, the context a handler receives, and the two habits of every change
(a short-lived connection with the statement timeout, a required `--reason`). Commands
that only read connect with `ctx.read_connect()`: the read DSN (a replica) when set.

One dispatch style: each module in `fsar_tui.commands` has `register(sub, common)`,
which adds its sub-parsers and sets `handler=` to a function `handler(args, ctx) -> int`
(an exit code). `ctx.dsn()` starts the embedded server (and migrates it) only when a
handler first needs a database, so `--help` and usage errors never start one.
"""

from __future__ import annotations

import argparse
import sys
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, overload

from fsar_tui.config import MAX_STATEMENT_TIMEOUT_MS, POOLER_MODES, Settings, load_settings
from fsar_tui.errors import UsageError

if TYPE_CHECKING:
    import psycopg

EPILOG = "exit codes: 0 ok, 1 an operation or check failed, 2 usage or connection error"

MAX_BIGINT = 2**63 - 1  # PostgreSQL's bigint: every id column (bigserial)
MAX_INTEGER = 2**31 - 1  # PostgreSQL's integer: rollout revision numbers


def bounded_int(low: int, high: int, what: str = "a whole number") -> Callable[[str], int]:
    """An argparse `type=`: a whole number in low..high, else a usage error naming the option
    (argparse prefixes `argument --flag:`), so a value the database cannot hold never gets
    as far as a query ("bigint out of range", "invalid value for parameter")."""

    def parse(text: str) -> int:
        shown = repr(text if len(text) <= 40 else text[:40] + "…")
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {shown} (expected {what})") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low:,}..{high:,}, got {shown}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


# Every numeric id argument of every command (tasks, alerts, …): a bigint id, 1..2**63-1.
positive_id = bounded_int(1, MAX_BIGINT, "a positive id")
# A rollout revision number (an integer column).
revision_number = bounded_int(1, MAX_INTEGER, "a revision number")
# Row counts passed to SQL (LIMIT, batch sizes).
positive_count = bounded_int(1, MAX_BIGINT, "a positive count")
# --statement-timeout-ms: PostgreSQL refuses more than INT_MAX ms at connection time (a
# "cannot connect" that reads like a network failure); 24 h is the cap here.
timeout_ms = bounded_int(1, MAX_STATEMENT_TIMEOUT_MS, "milliseconds")


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def common_options() -> Parser:
    """The connection and configuration options every subcommand accepts after its name.

    SUPPRESS defaults so an option given before the subcommand is not reset by the
    subcommand's copy of the same option."""
    common = Parser(add_help=False)
    g = common.add_argument_group("connection and configuration")
    g.add_argument("--dsn", default=argparse.SUPPRESS, help="PostgreSQL DSN (env FSAR_DSN); embedded server when none")
    g.add_argument("--read-dsn", default=argparse.SUPPRESS, help="DSN for reads, e.g. a replica (env FSAR_READ_DSN)")
    g.add_argument("--mqtt-url", default=argparse.SUPPRESS, help="MQTT broker URL (env FSAR_MQTT_URL)")
    g.add_argument("--config", default=argparse.SUPPRESS, help="config.toml path (default: user config dir)")
    g.add_argument(
        "--read-only",
        action="store_const",
        const=True,
        default=argparse.SUPPRESS,
        help="no write actions (env FSAR_READ_ONLY)",
    )
    g.add_argument(
        "--statement-timeout-ms",
        type=timeout_ms,
        default=argparse.SUPPRESS,
        metavar="MS",
        help=f"per-query timeout, 1..{MAX_STATEMENT_TIMEOUT_MS:,} ms (default 5000)",
    )
    g.add_argument(
        "--live",
        choices=("auto", "mqtt", "notify", "poll"),
        default=argparse.SUPPRESS,
        help="live event source (default auto: mqtt if configured, else notify, else poll)",
    )
    g.add_argument(
        "--pooler",
        choices=POOLER_MODES,
        default=argparse.SUPPRESS,
        help="a transaction pooler in front of the server (env FSAR_POOLER; default auto: detected)",
    )
    g.add_argument(
        "--reveal",
        action="store_const",
        const=True,
        default=argparse.SUPPRESS,
        help="show raw data instead of redacted (needs fsar_admin; every reveal is logged)",
    )
    g.add_argument(
        "--ingest-live",
        action="store_const",
        const=True,
        default=argparse.SUPPRESS,
        help="the app also ingests FSAR reports published on fsar/v1/proposals",
    )
    return common


def settings_from(args: Namespace, env: dict[str, str] | None = None) -> Settings:
    flags = {
        k: getattr(args, k, None)
        for k in (
            "dsn",
            "read_dsn",
            "mqtt_url",
            "read_only",
            "statement_timeout_ms",
            "live",
            "pooler",
            "reveal",
            "ingest_live",
        )
    }
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


@dataclass
class Context:
    """What a handler gets besides its arguments: the settings and a lazy DSN."""

    settings: Settings
    _dsn: str | None = field(default=None, repr=False)
    read_on_replica: bool = False  # the last read_connect() went to the replica

    def dsn(self, *, migrate_embedded: bool = True) -> str:
        if self._dsn is None:
            from fsar_tui.db.connect import configure_pooler

            self._dsn = resolve_dsn(self.settings, migrate_embedded=migrate_embedded)
            configure_pooler(self._dsn, self.settings.pooler)
            configure_pooler(self.settings.read_dsn, self.settings.pooler)
        return self._dsn

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection:
        """A short-lived connection with the configured statement timeout."""
        from fsar_tui.db.connect import connect

        return connect(
            self.dsn(),
            autocommit=autocommit,
            statement_timeout_ms=self.settings.statement_timeout_ms,
            pooler_mode=self.settings.pooler,
        )

    def read_connect(self, *, autocommit: bool = True) -> psycopg.Connection:
        """connect() for a command that only reads: to the read DSN (a replica) when one is
        configured and it is a replica OF the primary's database (same system identifier
        and database name), in recovery, and not further behind than MAX_LAG_S; else the
        primary, with one stderr line saying why. Lag past `replica_stale_s` is said on
        stderr too ("read from a replica N s behind"). A command that writes uses
        connect(), the primary. No read-your-writes across processes: a script that
        changes something and reads it back at once may meet a replica that has not
        replayed the change yet (README: Read replicas)."""
        from fsar_tui.db.connect import configure_pooler, connect
        from fsar_tui.errors import ConnectionFailed

        read_dsn = self.settings.read_dsn
        self.read_on_replica = False
        if not read_dsn:
            return self.connect(autocommit=autocommit)
        configure_pooler(read_dsn, self.settings.pooler)
        try:
            replica = connect(
                read_dsn,
                autocommit=autocommit,
                statement_timeout_ms=self.settings.statement_timeout_ms,
                pooler_mode=self.settings.pooler,
            )
        except ConnectionFailed as exc:
            return self._primary_instead(f"replica unreachable: {exc.message.split(': ', 1)[-1]}", autocommit)
        try:
            with self.connect() as primary:
                why, note = _replica_verdict(primary, replica, self.settings.replica_stale_s)
        except BaseException:
            replica.close()
            raise
        if why is not None:
            replica.close()
            return self._primary_instead(why, autocommit)
        if note:
            print(f"fsar-tui: {note}", file=sys.stderr)
        self.read_on_replica = True
        return replica

    def _primary_instead(self, why: str, autocommit: bool) -> psycopg.Connection:
        from fsar_tui.dsn import mask_dsn

        print(f"fsar-tui: reads: primary ({mask_dsn(why)})", file=sys.stderr)
        return self.connect(autocommit=autocommit)


def _replica_verdict(
    primary: psycopg.Connection, replica: psycopg.Connection, stale_s: float
) -> tuple[str | None, str]:
    """(why not to read the replica — None: read it, the stderr note when it lags beyond
    `stale_s`). The app's rules (read_routing.py), asked once: identity, recovery, lag.
    The replica is asked after the primary, so its answer is the later one."""
    from fsar_tui.db.replica import sync_identity, sync_primary_lsn, sync_replay_position
    from fsar_tui.domain.replica_lag import MAX_LAG_S, lag_seconds, lag_text, same_database

    position = sync_replay_position(replica)
    if not position.in_recovery:
        return "read DSN is not a replica: not in recovery", ""
    not_same = same_database(sync_identity(primary), sync_identity(replica))
    if not_same is not None:
        return not_same, ""
    lag = lag_seconds(
        primary_lsn=sync_primary_lsn(primary),
        replay_lsn=position.replay_lsn,
        replay_age_s=position.replay_age_s,
        since_caught_up_s=None,
    )
    if lag is not None and lag > MAX_LAG_S:
        return f"replica lag {lag_text(lag)} > {MAX_LAG_S:g} s", ""
    if lag is None:
        return None, "read from a replica whose lag is unknown"
    return None, f"read from a replica {lag_text(lag)} behind" if lag > stale_s else ""


def add_command(
    sub: argparse._SubParsersAction,
    common: Parser,
    name: str,
    handler: Callable[[Namespace, Context], int] | None = None,
    **kwargs: object,
) -> Parser:
    """A sub-parser with the common options and the exit-code epilog; `handler` set when given."""
    parser: Parser = sub.add_parser(name, parents=[common], epilog=EPILOG, **kwargs)  # type: ignore[arg-type]
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def subcommands(parser: Parser, dest: str) -> argparse._SubParsersAction:
    """A group of sub-subcommands (`fsar-tui audit gate add`), one of which is required."""
    return parser.add_subparsers(dest=dest, parser_class=Parser, metavar="SUBCOMMAND", required=True)


def required_reason(args: Namespace) -> str:
    reason = (args.reason or "").strip()
    if not reason:
        raise UsageError("--reason is required: say why, it goes to the operator log")
    return reason


@overload
def parse_window_arg(text: str, flag: str) -> int: ...
@overload
def parse_window_arg(text: str | None, flag: str) -> int | None: ...
def parse_window_arg(text: str | None, flag: str) -> int | None:
    """A window option (`--since 24h`) in seconds; a bad one is a usage error naming the flag."""
    from fsar_tui.domain.durations import DurationError, parse_window

    if text is None:
        return None
    try:
        return parse_window(text)
    except DurationError as exc:
        raise UsageError(f"{flag}: {exc}") from None
