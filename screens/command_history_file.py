"""Where `:` command history is kept between runs: one command a line, oldest first, in
`$XDG_STATE_HOME/fsar-tui/command_history` (platformdirs' user state dir: on Linux
`~/.local/state/fsar-tui/` when XDG_STATE_HOME is unset).

Best effort both ways: a file that is missing or unreadable loads as no history; one
that cannot be written (read-only home, a directory in the way) leaves the history in
memory for this session, without an error. The file is read once at start, at most
its last READ_LIMIT bytes, and every entry is cleaned (domain/command_history.py):
the user can write it, so nothing in it reaches the screen as a control sequence.
Writes replace the whole file (≤ 200 short lines) through a temporary file in the
same directory, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import platformdirs

from fsar_tui.config import APP_NAME
from fsar_tui.domain.command_history import CAP, from_lines, to_lines

READ_LIMIT = 256 * 1024


def default_path() -> Path:
    """The history file, from the environment as it is now (XDG_STATE_HOME)."""
    return platformdirs.user_state_path(APP_NAME) / "command_history"


def load(path: Path, cap: int = CAP) -> list[str]:
    """The history (newest first) kept in `path`; empty when there is none to read."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - READ_LIMIT))
            data = f.read(READ_LIMIT)
    except (OSError, ValueError):
        return []
    return from_lines(data.decode("utf-8", errors="replace").splitlines(), cap)


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
