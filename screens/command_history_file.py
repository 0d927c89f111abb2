"""Where `:` command history is kept between runs: one command a line, oldest first, in
`$XDG_STATE_HOME/fsar-tui/command_history` (platformdirs' user state dir: on Linux
`~/.local/state/fsar-tui/` when XDG_STATE_HOME is unset).

Best effort both ways: a file that is missing or unreadable loads as no history; one
that cannot be written (read-only home, a directory in the way) leaves the history in
memory for this session, without an error. The file is read once at start, backwards
from its end in blocks, until CAP entries are found or READ_LIMIT bytes are read. It
is split at newlines only (a carriage return, form feed or U+2028 inside a line does
not make two entries), and a line longer than a command can be (domain
command_history.MAX_LINE) is skipped whole without being held in memory, so a junk
line of megabytes neither becomes entries nor hides the commands around it. Every
entry is cleaned (domain/command_history.py): the user can write the file, so nothing
in it reaches the screen as a control sequence. Writes replace the whole file (≤ 200
short lines) through a temporary file in the same directory, so a crash never leaves
half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import platformdirs

from fsar_tui.config import APP_NAME
from fsar_tui.domain.command_history import CAP, MAX_LINE, from_newest, to_lines

READ_LIMIT = 16 * 1024 * 1024  # bytes read at most, from the end
BLOCK = 64 * 1024
LONGEST = 4 * MAX_LINE  # bytes: MAX_LINE characters of UTF-8 at most


def default_path() -> Path:
    """The history file, from the environment as it is now (XDG_STATE_HOME)."""
    return platformdirs.user_state_path(APP_NAME) / "command_history"


def load(path: Path, cap: int = CAP) -> list[str]:
    """The history (newest first) kept in `path`; empty when there is none to read."""
    try:
        with path.open("rb") as f:
            lines = (line.decode("utf-8", errors="replace") for line in newest_lines(f))
            return from_newest(lines, cap)
    except (OSError, ValueError):
        return []


def newest_lines(f: BinaryIO, limit: int = READ_LIMIT, longest: int = LONGEST, block: int = BLOCK) -> Iterator[bytes]:
    """The lines of `f`, newest first, from its last `limit` bytes; a line longer than
    `longest` bytes is skipped, and so is the first one when the limit cuts it."""
    pos = f.seek(0, os.SEEK_END)
    floor = max(0, pos - limit)
    carry = b""  # the start of the line the later blocks began with
    skipping = False  # that line is too long: its start, further back, is dropped too
    while pos > floor:
        size = min(block, pos - floor)
        pos -= size
        f.seek(pos)
        parts = (f.read(size) + carry).split(b"\n")
        carry = parts[0]
        complete = parts[1:]
        if skipping and complete:
            complete.pop()  # the start of the over-long line
            skipping = False
        elif skipping:
            carry = b""  # still inside the over-long line
        yield from (line for line in reversed(complete) if len(line) <= longest)
        if len(carry) > longest:
            carry, skipping = b"", True
    if skipping:
        return
    if pos > 0:  # the limit fell inside the file: the line read last is whole if a newline precedes it
        f.seek(pos - 1)
        if f.read(1) != b"\n":
            return
    yield carry


def save(path: Path, history: Sequence[str]) -> bool:
    """Write `history` (newest first) to `path`; False when it could not be written."""
    text = "".join(f"{line}\n" for line in to_lines(history))
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".command_history.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True
