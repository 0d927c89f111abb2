"""JSON documents that must stay text: too deep or too large to hold as Python objects.

Agents write payloads and results, and PostgreSQL accepts a document nested thousands
deep (or a number of 5,000 digits); Python's parser raises RecursionError (ValueError) on
them, and so would every recursive walk after it (redaction, json.dumps). This module
owns what the rest of the code does instead:

- `JsonText`: a document kept as its text, with why (the loaders return it);
- `loads_bounded`: json.loads that returns a JsonText for a document nested deeper than
  a limit, larger than a limit, or that the parser refuses;
- `dumps_any_depth`: compact JSON for a value of any depth, without recursion;

The redaction rules over JSON text are domain/json_scrub.py's. Pure: the standard
library only.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any

MAX_DEPTH = 64  # what the screens, the CLI and anonymize hold as objects


class JsonText:
    """A JSON document kept as its text (`why`: nested too deep, too large, not parsed)."""

    __slots__ = ("text", "why")

    def __init__(self, text: str, why: str) -> None:
        self.text = text
        self.why = why

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"JsonText({len(self.text):,} characters: {self.why})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonText) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def depth_over(value: Any, limit: int) -> bool:
    """Whether `value` nests deeper than `limit` levels (level by level: any depth, and
    a leaf costs one isinstance in a comprehension)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        deeper: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            deeper += [v for v in children if isinstance(v, dict | list)]
        level = deeper
    return False


def loads_bounded(data: str | bytes, *, max_depth: int = MAX_DEPTH, max_chars: int | None = None) -> Any:
    """json.loads for untrusted documents; a JsonText instead of a value for one nested
    deeper than `max_depth`, longer than `max_chars`, or that the parser refuses."""
    text = bytes(data).decode("utf-8", "replace") if isinstance(data, bytes | bytearray | memoryview) else data
    if max_chars is not None and len(text) > max_chars:
        return JsonText(text, f"larger than {max_chars:,} characters: handled as text")
    try:
        value = json.loads(text)
    except RecursionError:
        return JsonText(text, f"nested deeper than {max_depth} levels: handled as text")
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        return JsonText(text, f"not parsed ({str(exc).split(':')[0]}): handled as text")
    if depth_over(value, max_depth):
        return JsonText(text, f"nested deeper than {max_depth} levels: handled as text")
    return value


def dumps_any_depth(value: Any) -> str:
    """json.dumps(value, ensure_ascii=False, default=str), compact, for any depth."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif isinstance(item, dict):
            parts: list[Any] = []
            for n, (k, v) in enumerate(item.items()):
                parts += [_Raw(("," if n else "") + encode_basestring(_key(k)) + ":"), v]
            stack += [_Raw("}"), *reversed(parts), _Raw("{")]
        elif isinstance(item, list | tuple):
            parts = []
            for n, v in enumerate(item):
                parts += [_Raw(","), v] if n else [v]
            stack += [_Raw("]"), *reversed(parts), _Raw("[")]
        elif isinstance(item, JsonText):
            out.append(item.text)
        else:
            out.append(json.dumps(item, ensure_ascii=False, default=str))
    return "".join(out)


def _key(k: Any) -> str:
    """A dict key as json.dumps writes it."""
    if isinstance(k, str):
        return k
    if k is None or isinstance(k, bool | int | float):
        return json.dumps({k: 0})[2:-5]  # '{"<key>": 0}'
    return str(k)


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
