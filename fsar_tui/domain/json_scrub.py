"""The redaction policy's rules over JSON *text*, for a document of any depth and size.

`scrub(text, redact_all, fields)` gives what `Policy.value` does to the parsed document,
as JSON text with the input's layout: every string, keys included, through the
detectors; the value of an always-hidden field (case-insensitive key) replaced whole by
`"[REDACTED:field]"` unless it is null or ""; integers of nine digits or more through the
detectors too (a card number stored as a number is still one); two keys of one object
redacted alike kept apart with `'`. Property-tested against `Policy.value`
(tests/test_redact_linear.py).

How, and why this way: walking a parsed document costs a Python step per node (1 MB of
payload: ~150,000 of them, 3 MB/s), and a document nested thousands deep cannot be parsed
at all. Outside its strings, JSON has no `"`: one `re.split` on the string tokens cuts a
document into string tokens and the text between them (structure, numbers, literals),
in C. A token is a key when the text after it starts with `:`. The strings are decoded
by one json.loads of them as an array and redacted in one batch; only hidden fields
(bracket matching over the text between tokens) and the rare changed key (which objects
hold which keys) need a walk, over the text between tokens only. Linear in the text, no
recursion. `partial=True` takes a cut document (the screens show a prefix).

Pure: the standard library only; the policy's rules come in as arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import compress, repeat
from json.encoder import encode_basestring
from operator import ne, not_

# A JSON string token (possibly cut at the end of a partial document); possessive: nothing
# is tried twice. Captured, so re.split keeps the tokens at the odd indexes.
_STRING_TOKEN = re.compile(r'("[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z))', re.S)
# abs(n) >= 10**8, an integer (not the digits of a fraction or an exponent): the old
# (?<![\w.+\-])-?[1-9][0-9]{8,}(?![\w.]), starting with a class so `re` skips to digits.
_BIG_INT = re.compile(r"[-1-9](?<![\w.+\-][-1-9])(?:(?<=-)[1-9])?(?<=[1-9])[0-9]{8,}(?![\w.])")
_NINE_DIGITS = re.compile(r"[0-9]{9}")
_SPACE_THEN_COLON = re.compile(r"\x00[ \t\n\r]+:")  # JSON's whitespace
_BARE = re.compile(r"[^\s,\]}]+")
_BRACKETS = re.compile(r"[\[\]{}]")
_FIELD = encode_basestring("[REDACTED:field]")


def string_tokens(text: str, *, with_between: bool = False) -> list[str]:
    """The string tokens of a JSON text (with_between: and the text between them, at the
    even indexes), in one re.split."""
    parts = _STRING_TOKEN.split(text)
    return parts if with_between else parts[1::2]


def scrub(
    text: str,
    redact_all: Callable[[list[str]], list[str]],
    fields: frozenset[str],
    *,
    partial: bool = False,
    clean: Callable[[list[str]], list[str]] | None = None,
) -> str:
    """The policy's rules over a JSON document's text (see the module docstring).
    `redact_all` redacts a batch of strings; `fields` are the always-hidden keys (lower
    case). `partial`: `text` may be cut anywhere (a prefix of a document). `clean`: a batch
    rewrite of every string first (the display strips control sequences), so a key
    is matched against the fields as it will be shown."""
    parts = _STRING_TOKEN.split(text)  # even indexes: text between tokens; odd: string tokens
    tokens = parts[1::2]
    if partial and tokens and not _complete(tokens[-1]):
        tokens[-1] = parts[-2] = _closed(tokens[-1])
    decoded = _decoded(tokens)
    values = decoded if clean is None else clean(decoded)
    keys = _keys(parts)
    dropped = _hide_fields(parts, tokens, values, keys, fields)
    kept = values if dropped is None else [v for v, gone in zip(values, dropped, strict=True) if not gone]
    numbers = _big_ints(parts)
    redacted = redact_all(kept + numbers if numbers else kept)
    # Loops in C (map, compress): a document of 1 MB has ~100,000 strings.
    index = range(len(values)) if dropped is None else list(compress(range(len(values)), map(not_, dropped)))
    before = decoded if dropped is None else [decoded[i] for i in index]
    changed = [(index[k], redacted[k]) for k in compress(range(len(before)), map(ne, redacted[: len(before)], before))]
    for i, after in changed:
        parts[2 * i + 1] = encode_basestring(after)
    if changed and not set(keys).isdisjoint(i for i, _ in changed):  # a key changed: two may now be alike
        new_values = list(values)
        for i, after in changed:
            new_values[i] = after
        _keep_keys_apart(parts, new_values, set(keys), dropped)
    if numbers:
        _write_numbers(parts, numbers, redacted[len(kept) :])
    return "".join(parts)


def _keys(parts: list[str]) -> list[int]:
    """The tokens that are keys: the text after them starts with `:` (after any space)."""
    between = parts[2::2]
    if _SPACE_THEN_COLON.search("\x00" + "\x00".join(between)):  # not jsonb's or json.dumps' layout
        return [i for i, after in enumerate(between) if after.lstrip()[:1] == ":"]
    return list(compress(range(len(between)), map(str.startswith, between, repeat(":"))))


def _complete(token: str) -> bool:
    """Whether a string token ends with its own (unescaped) closing quote."""
    if len(token) < 2 or not token.endswith('"'):
        return False
    body = token[1:-1]
    return (len(body) - len(body.rstrip("\\"))) % 2 == 0


def _closed(token: str) -> str:
    """A string token cut by a partial document, closed (a cut escape dropped)."""
    body = token[1:]
    for cut in range(7):  # at most a cut `\uXXX` or a dangling backslash
        candidate = '"' + body[: len(body) - cut] + '"'
        try:
            json.loads(candidate)
            return candidate
        except ValueError:
            continue
    return encode_basestring(body)


def _decoded(tokens: list[str]) -> list[str]:
    """JSON string tokens -> their values, in one json.loads."""
    try:
        decoded: list[str] = json.loads("[" + ",".join(tokens) + "]")
        return decoded
    except ValueError:  # a malformed token (a broken document): each on its own
        return [_decode_one(t) for t in tokens]


def _decode_one(token: str) -> str:
    try:
        value = json.loads(token)
        return value if isinstance(value, str) else token
    except ValueError:
        return token


def _hide_fields(
    parts: list[str], tokens: list[str], values: list[str], keys: list[int], fields: frozenset[str]
) -> bytearray | None:
    """Replace the value of every always-hidden key (unless null or "") by the field token;
    returns which tokens went with them (None: no field was hidden)."""
    names = [values[i] for i in keys]
    hidden = list(compress(keys, map(fields.__contains__, map(str.lower, names))))
    if not hidden:
        return None
    dropped = bytearray(len(tokens))
    skip_to = -1
    for i in hidden:
        if i <= skip_to or dropped[i]:
            continue  # inside a value already hidden
        chunk = parts[2 * i + 2]
        colon = chunk.index(":") + 1
        rest = chunk[colon:]
        value_at = colon + len(rest) - len(rest.lstrip())
        if value_at == len(chunk):  # the value is the next string token (or the document ends)
            if i + 1 < len(tokens) and tokens[i + 1] != '""':
                parts[2 * i + 3] = _FIELD
                dropped[i + 1] = 1
            continue
        if chunk[value_at] in "{[":
            skip_to = _hide_container(parts, i, value_at, dropped)
            continue
        bare = _BARE.match(chunk, value_at)
        if bare is not None and bare.group(0) != "null":
            parts[2 * i + 2] = chunk[:value_at] + _FIELD + chunk[bare.end() :]
    return dropped


def _hide_container(parts: list[str], i: int, start: int, dropped: bytearray) -> int:
    """Hide the object or array opening at parts[2i+2][start]; returns the index of the
    last token inside it (they are dropped)."""
    first = 2 * i + 2
    depth = 0
    at = first
    offset = start
    while at < len(parts):
        chunk = parts[at]
        closes = chunk.count("]", offset) + chunk.count("}", offset)
        if depth - closes > 0:  # cannot reach zero in this chunk: count it whole
            depth += chunk.count("[", offset) + chunk.count("{", offset) - closes
        else:
            for m in _BRACKETS.finditer(chunk, offset):
                depth += 1 if m.group(0) in "[{" else -1
                if depth == 0:
                    return _cut_out(parts, first, start, at, m.end(), dropped)
        at += 2
        offset = 0
    return _cut_out(parts, first, start, len(parts) - 1, None, dropped)  # a cut document: never closed


def _cut_out(parts: list[str], first: int, start: int, last: int, end: int | None, dropped: bytearray) -> int:
    tail = "" if end is None else parts[last][end:]
    if last == first:
        parts[first] = parts[first][:start] + _FIELD + tail
    else:
        parts[first] = parts[first][:start] + _FIELD
        for k in range(first + 1, last):
            parts[k] = ""
        parts[last] = tail
    for k in range(first + 1, last, 2):
        dropped[k // 2] = 1
    return (last - 1) // 2 if last > first else first // 2 - 1


def _big_ints(parts: list[str]) -> list[str]:
    """The integers of nine digits or more in the text between tokens, in order."""
    between = "\x00".join(parts[0::2])
    return _BIG_INT.findall(between) if _NINE_DIGITS.search(between) else []


def _write_numbers(parts: list[str], numbers: list[str], redacted: list[str]) -> None:
    """Numbers a detector changed become the redacted string (as Policy.value does)."""
    changed = {n: encode_basestring(r) for n, r in zip(numbers, redacted, strict=True) if r != n}
    if not changed:
        return
    rewrite: Callable[[re.Match[str]], str] = lambda m: changed.get(m.group(0), m.group(0))  # noqa: E731
    between = _BIG_INT.sub(rewrite, "\x00".join(parts[0::2])).split("\x00")
    if len(between) == len(parts[0::2]):
        parts[0::2] = between
    else:  # a NUL between tokens (a broken document): chunk by chunk
        parts[0::2] = [_BIG_INT.sub(rewrite, chunk) for chunk in parts[0::2]]


def _keep_keys_apart(parts: list[str], values: list[str], keys: set[int], dropped: bytearray | None) -> None:
    """Within each object, a key equal to an earlier one (after redaction) gets `'`s, as
    Policy.value does; which object holds which key comes from the brackets between tokens."""
    stack: list[set[str]] = []
    for k in range(0, len(parts), 2):
        token = k // 2 - 1  # the token just before this chunk
        if k and token in keys and (dropped is None or not dropped[token]) and stack:
            key = values[token]
            seen = stack[-1]
            if key in seen:
                while key in seen:
                    key += "'"
                parts[k - 1] = encode_basestring(key)
            seen.add(key)
        for m in _BRACKETS.finditer(parts[k]):
            if m.group(0) == "{":
                stack.append(set())
            elif m.group(0) == "[":
                stack.append(set())  # arrays hold no keys; kept for the nesting
            elif stack:
                stack.pop()
