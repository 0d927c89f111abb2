"""One redaction policy for every screen, report and export.

Detectors (each replaces the match with `[REDACTED:<kind>]`):
- api_key: provider-style keys (`sk-…`, `sk_live_…`, `pk_live_…`, `ghp_…`, `xox…`,
  `AKIA…`);
- secret: `api_key=…`/`"token": "…"`/`password: …` style assignments;
- bearer: `Bearer <token>` in headers;
- card: 13–19 digit runs (spaces or dashes allowed) that pass the Luhn check — so
  order numbers and timestamps that fail Luhn stay visible;
- email: addresses;
- phone: international (+CC, 7+ digits) or national numbers (9+ digits) written with
  separators; ISO dates and clock times are not phones.

Fields: in JSON values (payloads, results, ledger metadata) the value of any key in
`fields` (case-insensitive; defaults below: names, addresses, emails, phones, secrets…)
is replaced by `[REDACTED:field]` whatever it looks like.

The policy (`Policy`: detectors on, fields, extra named regex patterns) comes from
config.toml `[redaction]` (config.py) and is installed once per process with
`set_policy`; screens, reports, exports, the sensitive-results gate and `fsar-tui
anonymize` all call `redact` / `redact_value` / `findings`, so there is one policy.

Replacement tokens never contain anything a detector matches, so redaction is
idempotent (property-tested). Deliberately conservative: a false positive hides a
harmless number; a false negative prints a secret.

Bounded work (an agent chooses the size and shape of what is redacted): every detector
runs in time linear in its input (domain/detectors.py says how). A JSON value of plain
JSON at most MAX_DEPTH deep (what the loaders give) is serialised and scrubbed as text
(domain/json_scrub.py: the same rules, mostly in C) and parsed again; any other value is
walked with an explicit stack, never recursion, and a subtree nested deeper than
MAX_DEPTH becomes the text of its JSON, scrubbed; a document kept as text (`JsonText`,
from the loaders) is scrubbed as text. The strings of
one value are redacted in one batch: joined by a separator no detector reads across
(`,` ends every run a detector matches, NUL starts none), one pass of each detector,
split again — a JSON value of 100,000 short strings costs one pass, not 600,000 calls.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fsar_tui.domain import json_scrub, json_text
from fsar_tui.domain.detectors import DETECTORS, REDACTED, luhn_ok
from fsar_tui.domain.json_text import MAX_DEPTH, JsonText

__all__ = [
    "DEFAULT_FIELDS",
    "DETECTORS",
    "MAX_DEPTH",
    "REDACTED",
    "JsonText",
    "Policy",
    "findings",
    "luhn_ok",
    "policy",
    "redact",
    "redact_value",
    "set_policy",
    "token_counts",
    "using_policy",
    "value_findings",
]

# JSON keys whose values are personal data or secrets whatever they look like.
DEFAULT_FIELDS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "email",
        "e_mail",
        "phone",
        "phone_number",
        "mobile",
        "name",
        "first_name",
        "last_name",
        "full_name",
        "address",
        "street",
        "postal_code",
        "zip",
        "ip",
        "ip_address",
        "ssn",
        "date_of_birth",
        "dob",
        "iban",
        "billing_details",
        "receipt_email",
        "customer_email",
        "customer_name",
    }
)
_FIELD_TOKEN = REDACTED.format("field")


# Joins a batch of strings for one pass of the detectors: `,` ends every run any detector
# matches (a value, a key, a local part, a digit group) exactly as the end of a string
# does, and NUL, which starts no match, stands where the next string starts. A batch with
# a NUL of its own is redacted string by string.
_SEPARATOR = ",\x00"
_ROUNDS = 4
# A token with a word character just before or after it (starts with the literal `[`, so
# `re` skips to tokens).
_TOUCHING = re.compile(r"\[(?:(?<=\w\[)REDACTED:\w+\]|REDACTED:\w+\](?=\w))")

# Walk operations (Policy.value): the value is flattened into these in one pass, its strings
# redacted in one batch, and rebuilt from them in a second pass — no recursion.
_OPEN_DICT, _OPEN_LIST, _CLOSE, _KEY, _RAW_KEY, _STRING, _NUMBER, _AS_IS = range(8)
_CLOSE_MARK = object()


class _Key:
    __slots__ = ("key", "hide")

    def __init__(self, key: Any, hide: bool) -> None:
        self.key, self.hide = key, hide


@dataclass(frozen=True)
class Policy:
    """Which detectors run, which JSON fields are always hidden, and extra named
    patterns (config.toml `[redaction]`); one instance is in force per process."""

    detectors: tuple[str, ...] = tuple(DETECTORS)
    fields: frozenset[str] = DEFAULT_FIELDS
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()

    def text(self, text: str) -> str:
        text = self._detect(text)
        for name, pattern in self.patterns:
            text = pattern.sub(REDACTED.format(name), text)
        return text

    def texts(self, texts: list[str]) -> list[str]:
        """[self.text(t) for t in texts], in one pass of each detector (see _SEPARATOR)."""
        if len(texts) < 2:
            return [self.text(t) for t in texts]
        joined = _SEPARATOR.join(texts)
        if joined.count("\x00") != len(texts) - 1:
            return [self.text(t) for t in texts]
        out = self._detect(joined).split(_SEPARATOR)
        if len(out) != len(texts):  # cannot happen with the built-in detectors; never guess
            return [self.text(t) for t in texts]
        if self.patterns:  # the operator's patterns may read across anything: one string at a time
            out = [self._patterns(t) for t in out]
        return out

    def _detect(self, text: str) -> str:
        """The detectors in order, again while a token now touches a word character: a token
        placed by a later detector can make a word boundary an earlier one needs
        (`4242…4242bearer sk-…`: the card's token lets `bearer` start), and redaction must
        be idempotent. Another round only then, and at most _ROUNDS in all."""
        for _ in range(_ROUNDS):
            out = text
            for name in self.detectors:
                out = DETECTORS[name](out)
            if out == text or not _TOUCHING.search(out):
                return out
            text = out
        return text

    def _patterns(self, text: str) -> str:
        for name, pattern in self.patterns:
            text = pattern.sub(REDACTED.format(name), text)
        return text

    def json_text(
        self, text: str, *, partial: bool = False, clean: Callable[[list[str]], list[str]] | None = None
    ) -> str:
        """A JSON document's text with the rules of `value` applied (domain/json_scrub.scrub);
        `partial`: the text may be a cut prefix of a document; `clean`: a batch rewrite of its
        strings first (the display's control-sequence stripping)."""
        return json_scrub.scrub(text, self.texts, self.fields, partial=partial, clean=clean)

    def value(self, value: Any) -> Any:
        """A JSON value with every string — keys included — redacted and every listed field's
        value hidden; numbers that detect as nothing, booleans and nulls are returned as they are.
        A subtree deeper than MAX_DEPTH becomes its JSON text, scrubbed; a JsonText stays one."""
        if isinstance(value, JsonText):
            return JsonText(self.json_text(value.text), value.why)
        if _plain(value):
            # Serialised, scrubbed as text and parsed again, in C but for the scrub's few
            # steps (json_scrub: ~3x faster than a Python step per node); same result.
            return json.loads(self.json_text(json.dumps(value, ensure_ascii=False)))
        ops, batch = self._flatten(value)
        return _rebuild(ops, self.texts(batch))

    def _flatten(self, value: Any) -> tuple[list[tuple[Any, ...]], list[str]]:
        ops: list[tuple[Any, ...]] = []
        batch: list[str] = []
        fields = self.fields
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if item is _CLOSE_MARK:
                ops.append((_CLOSE,))
            elif isinstance(item, _Key):
                if isinstance(item.key, str):
                    ops.append((_KEY, len(batch)))
                    batch.append(item.key)
                else:
                    ops.append((_RAW_KEY, item.key))
            elif isinstance(item, dict | list) and depth > MAX_DEPTH:
                ops.append((_AS_IS, self.json_text(json_text.dumps_any_depth(item))))
            elif isinstance(item, dict):
                ops.append((_OPEN_DICT,))
                stack.append((_CLOSE_MARK, depth))
                for k, v in reversed(list(item.items())):
                    hide = not (v is None or v == "") and str(k).lower() in fields
                    stack.append((_FIELD_MARK if hide else v, depth + 1))
                    stack.append((_Key(k, hide), depth))
            elif isinstance(item, list):
                ops.append((_OPEN_LIST,))
                stack.append((_CLOSE_MARK, depth))
                stack.extend((v, depth + 1) for v in reversed(item))
            elif item is _FIELD_MARK:
                ops.append((_AS_IS, _FIELD_TOKEN))
            elif isinstance(item, str):
                ops.append((_STRING, len(batch)))
                batch.append(item)
            elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 10**8:
                # A card or phone number stored as a number is still one.
                try:
                    as_text = str(item)
                except ValueError:  # more digits than int->str allows: no detector matches such a run
                    ops.append((_AS_IS, item))
                    continue
                ops.append((_NUMBER, len(batch), item))
                batch.append(as_text)
            elif isinstance(item, JsonText):
                ops.append((_AS_IS, JsonText(self.json_text(item.text), item.why)))
            else:
                ops.append((_AS_IS, item))
        return ops, batch


_FIELD_MARK = object()


def _plain(value: Any) -> bool:
    """A dict or list of plain JSON, MAX_DEPTH deep at most: what the loaders give. (Tuples,
    non-string keys, NaN, other types: json.dumps would change or refuse them.)"""
    if not isinstance(value, dict | list):
        return False
    level = [value]
    for _ in range(MAX_DEPTH):
        deeper: list[Any] = []
        for item in level:
            if type(item) is dict:
                if not all(type(k) is str for k in item):
                    return False
                children: Any = item.values()
            elif type(item) is list:
                children = item
            else:
                return False
            deeper += [v for v in children if not isinstance(v, _SCALARS) or v != v]  # NaN != NaN
        if not deeper:
            return True
        level = deeper
    return False  # deeper than MAX_DEPTH: the walk turns those subtrees into text


_SCALARS = (str, int, float, type(None))


def _rebuild(ops: list[tuple[Any, ...]], redacted: list[str]) -> Any:
    """The value `Policy._flatten` flattened, its strings replaced by `redacted`."""
    root: Any = None
    containers: list[Any] = []
    keys: list[Any] = []  # per open container: the key its next value goes under (dicts)
    for op in ops:
        code = op[0]
        if code == _CLOSE:
            containers.pop()
            keys.pop()
            continue
        if code == _KEY or code == _RAW_KEY:
            key = redacted[op[1]] if code == _KEY else op[1]
            into = containers[-1]
            while key in into:  # two keys redacted alike ({"a@x.io": 1, "b@y.io": 2}): keep both values
                key += "'"
            keys[-1] = key
            into[key] = None  # holds the key's place (and its order) until the value comes
            continue
        if code == _OPEN_DICT or code == _OPEN_LIST:
            new: Any = {} if code == _OPEN_DICT else []
        elif code == _STRING:
            new = redacted[op[1]]
        elif code == _NUMBER:
            new = op[2] if redacted[op[1]] == str(op[2]) else redacted[op[1]]
        else:
            new = op[1]
        if not containers:
            root = new
        elif isinstance(containers[-1], list):
            containers[-1].append(new)
        else:
            containers[-1][keys[-1]] = new
        if code == _OPEN_DICT or code == _OPEN_LIST:
            containers.append(new)
            keys.append(None)
    return root


# A ContextVar, not a module global: the CLI installs the configured policy once, before
# any task or the app starts, so everything created after inherits it; a thread that
# runs redaction (the audit pass) is handed the policy and enters it with `using_policy`.
_POLICY: ContextVar[Policy | None] = ContextVar("fsar_redaction_policy", default=None)
_DEFAULT = Policy()


def set_policy(policy: Policy) -> None:
    """Install the configured policy in the current context (the CLI does, once)."""
    _POLICY.set(policy)


@contextmanager
def using_policy(policy: Policy) -> Iterator[Policy]:
    """`policy` in force for the block (a thread's work, a test), then what was before."""
    token = _POLICY.set(policy)
    try:
        yield policy
    finally:
        _POLICY.reset(token)


def policy() -> Policy:
    current = _POLICY.get()
    return _DEFAULT if current is None else current


def redact(text: str) -> str:
    return policy().text(text)


def redact_value(value: Any) -> Any:
    return policy().value(value)


_TOKEN = re.compile(r"\[REDACTED:(\w+)\]")


def findings(text: str) -> list[str]:
    """The detector kinds that fire on `text` (empty: nothing to redact) — the
    sensitive-results audit uses the same rules as the screens."""
    new = Counter(_TOKEN.findall(redact(text))) - Counter(_TOKEN.findall(text))  # tokens already there are not findings
    return sorted(new)


def token_counts(value: Any) -> Counter[str]:
    """`[REDACTED:<kind>]` tokens per kind in a JSON value's strings, keys included (any depth)."""
    counts: Counter[str] = Counter()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, str):
            if "[REDACTED:" in item:
                counts.update(_TOKEN.findall(item))
        elif isinstance(item, JsonText):
            counts.update(_TOKEN.findall(item.text))
    return counts


def value_findings(value: Any, *, partial: bool = False) -> list[str]:
    """findings() for a JSON value, field rules included: the kinds whose tokens the policy
    adds to the value's JSON text. `partial`: `value` is a JsonText holding a cut prefix of
    a document (the sensitive-results gate's bound per row)."""
    p = policy()
    if isinstance(value, JsonText) or _plain(value):
        before = value.text if isinstance(value, JsonText) else json.dumps(value, ensure_ascii=False)
        after = p.json_text(before, partial=partial)
        return sorted(Counter(_TOKEN.findall(after)) - Counter(_TOKEN.findall(before)))
    return sorted(token_counts(p.value(value)) - token_counts(value))
