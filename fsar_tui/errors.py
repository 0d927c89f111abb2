"""Error types that carry the CLI's documented exit codes.

Exit codes (README, `fsar-tui --help`):
    0  ok
    1  an operation or check failed (e.g. legacy rows violate a constraint)
    2  usage or connection error (bad flag, unreachable server, unknown revision)

Every message is a single line meant for a human at a terminal; it never contains a
password (callers build it from masked DSNs).
"""

from __future__ import annotations

from fsar_tui.domain import sanitize

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class FsarError(Exception):
    """A failure with a one-line message and an exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Extra lines (e.g. the violating rows) printed after the one-line summary.
        self.details = details or []


class CheckFailed(FsarError):
    """An operation or check ran and failed: exit 1."""

    exit_code = EXIT_FAILED


class UsageError(FsarError):
    """Bad flags, options or configuration: exit 2."""

    exit_code = EXIT_USAGE


class ConnectionFailed(FsarError):
    """The database (or broker) could not be reached or refused us: exit 2."""

    exit_code = EXIT_USAGE


class UnknownRevision(FsarError):
    """The database is at a schema revision this build does not know: exit 2."""

    exit_code = EXIT_USAGE


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (driver errors run to several), or its
    type's name when it has none: for one-line reports. Callers mask DSNs where needed."""
    return sanitize.first_line(str(exc), type(exc).__name__)
