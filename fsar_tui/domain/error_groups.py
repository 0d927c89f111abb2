"""Error messages grouped by what they say, not by the numbers and ids in them (pure).

"TimeoutError: call 123 exceeded 120s" and "TimeoutError: call 456 exceeded 120s" are
one failure mode: `normalise` writes both as "TimeoutError: call <n> exceeded <n>s".
Replaced, in this order: quoted values ('…', "…", `…` → <str>), UUIDs (<uuid>), hex
ids (0x…, a run of 8+ hex digits holding a digit and a letter, or of 16+ holding a
letter) and numbers (decimals included) → <n> — one placeholder for both: a short hex
id is all digits now and then; runs of whitespace become one space. The passes repeat until
nothing changes (a number removed can expose a quote), so normalise(normalise(m)) ==
normalise(m).

A message is grouped on its headline: its first non-blank line — or, for a Python
traceback, its last (the exception; the first says only "Traceback …") — cut at 300
characters. Grouping takes messages already made inert and redacted by the caller
(`clean`): a secret is hidden before its digits are replaced, never after (a key with
its digits stripped no longer looks like a key to the detectors, yet still shows).

`filter_fragment` is the group's longest literal piece that appears as typed in its
newest message: what the queue's `error~` filter can match with (ILIKE, substring).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

HEADLINE_CHARS = 300
PLACEHOLDERS = ("<str>", "<uuid>", "<n>")
NO_ERROR = "(no error recorded)"

_QUOTED = re.compile(r"""(?<![\w'"`])(?:'[^'\n]*'|"[^"\n]*"|`[^`\n]*`)(?![\w'"`])""")
_UUID = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?![0-9A-Za-z])")
# A hex id holds a letter (a run of digits alone is a number: the same placeholder).
_HEX = re.compile(
    r"(?<![0-9A-Za-z])(?:0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}"
    r"|(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,})(?![0-9A-Za-z])"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
_TRACEBACK = "Traceback (most recent call last)"


def headline(error: str | None) -> str:
    """The line that names the failure: the first non-blank one, or a traceback's last."""
    if error is None:
        return ""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1] if lines[0].startswith(_TRACEBACK) else lines[0]
    return line[:HEADLINE_CHARS]


def _pass(text: str) -> str:
    text = _QUOTED.sub("<str>", text)
    text = _UUID.sub("<uuid>", text)
    text = _HEX.sub("<n>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text).strip()


def normalise(message: str) -> str:
    """The message with quoted values, uuids, hex ids and numbers replaced (idempotent)."""
    text = message
    while True:  # each changing pass removes digits or quotes, which no placeholder holds
        done = _pass(text)
        if done == text:
            return done
        text = done


def filter_fragment(key: str, *messages: str) -> str | None:
    """The longest run of the group `key`'s words, between its placeholders, that each of
    `messages` (one of the group's, as cleaned and as stored) holds as typed — case
    aside — with a letter in it; None when there is none (a group all numbers and ids).
    A word the cleaning changed (a redacted secret) is in no stored message, so the
    fragment never carries one."""
    folded = [m.casefold() for m in messages]
    best: str | None = None
    for piece in _PLACEHOLDER.split(key):
        words = piece.split()
        for i in range(len(words)):
            for j in range(len(words), i, -1):
                run = " ".join(words[i:j]).strip(" :,;.=-")
                if best is not None and len(run) <= len(best):
                    break  # shorter runs from i cannot win
                if len(run) >= 3 and any(c.isalpha() for c in run) and all(run.casefold() in m for m in folded):
                    best = run
                    break
    return best


@dataclass(frozen=True)
class Failure:
    """One failed attempt (or a run of identical ones): its task, when, its error."""

    task_id: int
    at: datetime
    error: str | None
    count: int = 1  # identical messages already counted together (by the reader)


@dataclass(frozen=True)
class ErrorGroup:
    key: str  # the normalised headline (cleaned first)
    count: int
    newest_at: datetime
    newest_task_id: int
    example: str  # the newest message's headline, as cleaned
    fragment: str | None  # for the queue's error~ filter


def group_errors(
    failures: Iterable[Failure], clean: Callable[[str], str] = lambda s: s, *, top: int | None = None
) -> list[ErrorGroup]:
    """Failures grouped by normalised headline, most frequent first (then newest first);
    `clean` makes each headline inert and redacted before it is normalised."""
    groups: dict[str, tuple[int, Failure, str]] = {}  # key -> (count, newest failure, its cleaned headline)
    for f in failures:
        line = clean(headline(f.error)) if f.error is not None else ""
        key = normalise(line) or NO_ERROR
        seen = groups.get(key)
        if seen is None:
            groups[key] = (f.count, f, line)
        else:
            count, newest, example = seen
            if (f.at, f.task_id) > (newest.at, newest.task_id):
                newest, example = f, line
            groups[key] = (count + f.count, newest, example)
    out = [
        ErrorGroup(
            key,
            count,
            newest.at,
            newest.task_id,
            example,
            filter_fragment(key, example, headline(newest.error)) if example else None,
        )
        for key, (count, newest, example) in groups.items()
    ]
    out.sort(key=lambda g: (-g.count, -g.newest_at.timestamp(), g.key))
    return out if top is None else out[:top]
