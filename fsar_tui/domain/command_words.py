"""The words of `:` command mode: abbreviation, completion and suggestion (pure).

vim / k9s rules: a command word may be typed as any prefix that only it starts with
(`:prof` is `:profiles`); a prefix two words share is ambiguous and never silently
picks one (`:pro` names both, profiles and proposals); the word itself always wins
(`:roi` even if `roix` existed); aliases are exact and come first (`q` quits, `1` is
the first screen). Tab completes the word of a line (the unique word and a space, or
as far as the candidates agree); the suggestion shown while typing is the unique word.

A line may start with colons (the queue's filter bar keeps the `:` it was opened with);
they are kept as typed. Matching ignores case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from os.path import commonprefix


@dataclass(frozen=True)
class Resolution:
    """What a typed word means: `word` when it names one command; else `candidates`
    holds the words it is a prefix of (two or more: ambiguous; none: unknown)."""

    typed: str
    word: str | None = None
    candidates: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return self.word is None and len(self.candidates) > 1


@dataclass(frozen=True)
class Completion:
    """Tab on a line: the completed line (None: nothing to add) and the words still
    possible (more than one when the prefix is ambiguous)."""

    line: str | None
    candidates: tuple[str, ...] = ()


def split_line(line: str) -> tuple[str, str, str]:
    """(leading colons, command word, rest after the first space) of a command line."""
    body = line.lstrip(":")
    colons = line[: len(line) - len(body)]
    word, space, rest = body.partition(" ")
    return colons, word, (space + rest)


@dataclass(frozen=True)
class CommandWords:
    """A set of command words and exact aliases (alias -> word)."""

    words: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lowered = tuple(w.lower() for w in self.words)
        if any(not w or " " in w for w in lowered) or len(set(lowered)) != len(lowered):
            raise ValueError("command words must be distinct, non-empty, without spaces")
        if any(target.lower() not in lowered for target in self.aliases.values()):
            raise ValueError("an alias must name a command word")
        object.__setattr__(self, "words", lowered)
        object.__setattr__(self, "aliases", {a.lower(): t.lower() for a, t in self.aliases.items()})

    def starting_with(self, prefix: str) -> tuple[str, ...]:
        prefix = prefix.lower()
        return tuple(w for w in self.words if w.startswith(prefix))

    def resolve(self, typed: str) -> Resolution:
        key = typed.strip().lower()
        if not key:
            return Resolution(typed)
        if key in self.aliases:
            return Resolution(typed, self.aliases[key])
        if key in self.words:
            return Resolution(typed, key)
        candidates = self.starting_with(key)
        if len(candidates) == 1:
            return Resolution(typed, candidates[0])
        return Resolution(typed, None, candidates)

    def complete(self, line: str) -> Completion:
        """Tab: complete the command word of `line` (its arguments are left alone)."""
        colons, word, rest = split_line(line)
        if rest or not word:
            return Completion(None)
        candidates = self.starting_with(word)
        if len(candidates) == 1:
            return Completion(f"{colons}{candidates[0]} ", candidates)
        common = commonprefix(list(candidates))
        if len(common) > len(word):
            return Completion(f"{colons}{common}", candidates)
        return Completion(None, candidates)

    def suggest(self, line: str) -> str | None:
        """The suggestion shown while typing: the line with its word completed, when
        only one word starts with what was typed (never for an ambiguous prefix)."""
        colons, word, rest = split_line(line)
        if rest or not word:
            return None
        candidates = self.starting_with(word)
        if len(candidates) != 1 or candidates[0] == word.lower():
            return None
        return f"{colons}{candidates[0]}"


def describe(resolution: Resolution, known: Iterable[str]) -> str:
    """The one-line error for a word that names no single command."""
    if resolution.ambiguous:
        return f"ambiguous: {', '.join(resolution.candidates)}"
    return f"unknown command {resolution.typed!r}: try {', '.join(known)}"
