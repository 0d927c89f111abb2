"""The redaction policy's detectors (domain/redact.py applies them): what each catches,
and why each runs in time linear in its input.

Each detector rewrites a text, replacing what it catches with `[REDACTED:<kind>]`. What
they catch is the policy's (documented in redact.py); this module owns how. An agent
writes the text, so an attacker chooses its size and shape, and a detector that
backtracks or restarts can be made to run for minutes. The first email pattern,
`[A-Za-z0-9._%+\\-]+@…`, did: Python's `re` tries every start position of a run of
local-part characters and scans the run to its end from each (0.10 s at 10 k
characters, 0.39 s at 20 k, 1.57 s at 40 k; a 1 MB base64url-looking error never
rendered). How each stays linear, with the same matches as the old patterns
(property-tested against them, tests/test_redact_linear.py):

- email: a local part starts only where a run of local-part characters starts (a
  look-behind), so no run is scanned twice; the domain pattern's labels cannot overlap
  (a label stops at `.`), so backtracking over them is linear too. Where `@` is rare the
  work is per `@`: the local part is measured backwards over a reversed copy of the text
  (a run ends at an `@`, so each character is looked at once).
- card, phone, bearer, api_key, secret: the old patterns rewritten to start with a
  character class (no leading `\\b` or look-behind), so `re` skips to the positions that
  can start a match, the old `\\b` / look-behind checked after the first character. Every
  quantifier is bounded, or runs over a class the next element cannot match, so an
  attempt costs at most the run it looks at, and the next attempt starts past it.
- Cheap guards first: card and phone need a digit, email an `@`, bearer and secret their
  keywords (on the case-folded text); where secret's keywords are rare, only the few
  places they occur are tried.
- ASCII text (str.isascii() is O(1)) is matched by ASCII-mode twins of the patterns,
  about a third faster; on ASCII text they match exactly what the Unicode ones do (`\\s`
  spelled out to keep U+001C–U+001F, which Unicode counts as whitespace).

Configured extra patterns (`[redaction.patterns]`) are the operator's regexes, run as
written: they are not the attacker's to choose, but they are not proven linear either.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

REDACTED = "[REDACTED:{}]"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _twins(pattern: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(Unicode pattern, its ASCII-mode twin for ASCII text). `{S}` is whitespace outside a
    class, `{s}` inside one."""
    unicode = re.compile(pattern.replace("{S}", r"\s").replace("{s}", r"\s"))
    ascii_ = re.compile(pattern.replace("{S}", r"[\s\x1c-\x1f]").replace("{s}", r"\s\x1c-\x1f"), re.ASCII)
    return unicode, ascii_


# `(?<!\w[Bb])` after the first character is the old leading `\b`: the character before
# the match is not a word character. The rest is case-insensitive as before (so the
# token class still takes what Unicode case folding adds, e.g. U+212A KELVIN SIGN).
_BEARER = _twins(r"([Bb](?<!\w[Bb])(?i:earer{S}+))(?i:[A-Za-z0-9._~+/\-]{8,}=*)")
_API_KEY = _twins(
    r"[sprgxA](?<!\w[sprgxA])(?:"
    r"(?<=[spr])k[-_](?:live|test|proj|ant)?[-_]?[A-Za-z0-9_\-]{16,}"
    r"|(?<=g)h[pousr]_[A-Za-z0-9]{20,}"
    r"|(?<=x)ox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|(?<=A)KIA[0-9A-Z]{16}\b"
    r"|(?<=A)Iza[0-9A-Za-z_\-]{30,})"
)
# Case-insensitive keywords, no `\b` (as before); U+017F (long s) folds to `s`.
_ASSIGNED_SECRET = _twins(
    r"([AaSs\u017fTtPp](?i:(?<=a)pi[_-]?key|(?<=s)ecret|(?<=t)oken|(?<=p)assword|(?<=p)asswd|(?<=a)ccess[_-]?key)"
    r"(?i:[\"']?{S}*[:=]{S}*[\"']?))(?i:([^{s}\"',;}{]{6,}))"
)
# Old: (?<![\d])(?:\d[ \-]?){12,18}\d(?![\d]) — the same 13–19 digits, the separator now
# before each digit but the first; twelve steps unrolled (single-character repeats, which
# `re` runs without a repeated group's bookkeeping).
_CARD = _twins(r"\d(?<!\d\d)" + r"[ \-]?\d" * 12 + r"(?:[ \-]?\d){0,6}(?!\d)")
# Old: (?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)[ .\-]?)?\d{2,4}(?:[ .\-]\d{2,4}){2,4}(?![\w]).
# Its three starts (`+`, `(`, a digit) exclude each other, so they become three branches.
_PHONE = _twins(
    r"[+(\d](?<![\w+][+(\d])(?:"
    r"(?<=\+)\d{1,3}[ .\-]?(?:\(\d{2,4}\)[ .\-]?)?\d{2,4}"
    r"|(?<=\()\d{2,4}\)[ .\-]?\d{2,4}"
    r"|(?<=\d)\d{1,3}"
    r")[ .\-]\d{2,4}[ .\-]\d{2,4}(?:[ .\-]\d{2,4}){0,2}(?!\w)"
)
_DIGIT = re.compile(r"\d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CARD_SEPARATORS = str.maketrans("", "", " -")
_PHONE_PUNCTUATION = str.maketrans("", "", " .-()+")


def _pick(twins: tuple[re.Pattern[str], re.Pattern[str]], text: str) -> re.Pattern[str]:
    return twins[1] if text.isascii() else twins[0]


def _has_digit(text: str) -> bool:
    if text.isascii():
        return any(d in text for d in "0123456789")
    return _DIGIT.search(text) is not None


def _card(match: re.Match[str]) -> str:
    # A match is 13–19 digits and separators by construction: only Luhn decides.
    return REDACTED.format("card") if luhn_ok(match.group(0).translate(_CARD_SEPARATORS)) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    # Dates share the shape (a clock time cannot: a match holds no `:`); a phone has 9+
    # digits, or 7+ with a country code.
    if "-" in text and _ISO_DATE.search(text):
        return text
    digits = len(text.translate(_PHONE_PUNCTUATION))
    minimum = 7 if text[0] == "+" else 9
    return REDACTED.format("phone") if minimum <= digits <= 15 else text


def _secret_rewrite(m: re.Match[str]) -> str:
    return m.group(0) if m.group(2).startswith("[REDACTED") else m.group(1) + REDACTED.format("secret")


# -- email ---------------------------------------------------------------------------------

_LOCAL_CHARS = "A-Za-z0-9._%+\\-"
_LOCAL_RUN = re.compile(f"[{_LOCAL_CHARS}]*")  # matched on the reversed text: the run before an `@`
# The old pattern's domain, unchanged: labels are runs of [A-Za-z0-9-], so backtracking
# over the repetition steps back one label at a time (linear in the domain's length).
_DOMAIN = re.compile(r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_EMAIL_TOKEN = REDACTED.format("email")
# One re.sub, a local part starting only where a run of local characters starts. It
# differs from the old pattern only where an address starts right at the end of the
# previous one, inside a run (`a@b.com.x@c.com`: the old scan resumed at `.x`); that needs
# an `@`, a run of local characters and another `@` (a domain is local characters too),
# so text without `@<run>@` may take this path and the rest takes the scan.
_EMAIL_AT_RUN_START = re.compile(f"(?<![{_LOCAL_CHARS}])[{_LOCAL_CHARS}]++@" + _DOMAIN.pattern)
_AT_RUN_AT = re.compile(f"@[{_LOCAL_CHARS}]++@")
# Below one `@` per this many characters the scan (work per `@`) beats the re.sub (work
# per character: its pattern starts with a look-behind, so `re` tries every position).
_SPARSE_AT = 32


@dataclass
class ScanWork:
    """What an email scan looked at (tests: the work is linear in the input)."""

    at_signs: int = 0
    local_chars: int = 0
    domain_chars: int = 0


def redact_emails(text: str, work: ScanWork | None = None) -> str:
    """Every address replaced, exactly as `[A-Za-z0-9._%+\\-]+@<domain>` with re.sub would
    (leftmost, non-overlapping), in time linear in the text."""
    ats = text.count("@")
    if not ats:
        return text
    if work is None and ats * _SPARSE_AT > len(text) and _AT_RUN_AT.search(text) is None:
        return _EMAIL_AT_RUN_START.sub(_EMAIL_TOKEN, text)
    return _scan_emails(text, work)


def _scan_emails(text: str, work: ScanWork | None) -> str:
    reversed_text = text[::-1]
    n = len(text)
    out: list[str] = []
    done = 0  # text[:done] is in `out`; a local part never starts before it
    at = text.find("@")
    while at >= 0:
        # The local part: the run of local characters ending just before the `@`, but not
        # before the end of the previous address (the old scan resumed there).
        local = _LOCAL_RUN.match(reversed_text, n - at)  # `*`: always matches
        run = 0 if local is None else local.end() - (n - at)
        start = max(at - run, done)
        domain = _DOMAIN.match(text, at + 1) if start < at else None
        if work is not None:
            work.at_signs += 1
            work.local_chars += run
            work.domain_chars += 0 if domain is None else domain.end() - at
        if domain is None:
            at = text.find("@", at + 1)
            continue
        out.append(text[done:start])
        out.append(_EMAIL_TOKEN)
        done = domain.end()
        at = text.find("@", done)
    out.append(text[done:])
    return "".join(out)


# -- secret ----------------------------------------------------------------------------------

# Each keyword contains one of these; checked on the case-folded text (what `(?i)` takes
# for a letter of them folds to that letter, but for `i`, which none of these contains).
# Where a keyword can start, relative to where its needle was found.
_SECRET_NEEDLES = {"key": (-7, -6, -4, -3), "secret": (0,), "token": (0,), "passw": (0,)}
_SPARSE_SECRET = 256  # at most one keyword per this many characters: try only where they are


def _secret(text: str) -> str:
    folded = text.casefold()
    hits = sum(folded.count(needle) for needle in _SECRET_NEEDLES)
    if not hits:
        return text
    pattern = _pick(_ASSIGNED_SECRET, text)
    if not text.isascii() or hits * _SPARSE_SECRET > len(text):
        return pattern.sub(_secret_rewrite, text)
    # ASCII: the folded text is the text in lower case, same positions. A match starts
    # where a keyword starts, and every keyword holds a needle: try only those starts, in
    # order — the first that matches is the one re.sub would have found.
    starts: set[int] = set()
    for needle, offsets in _SECRET_NEEDLES.items():
        at = folded.find(needle)
        while at >= 0:
            starts.update(at + o for o in offsets if at + o >= 0)
            at = folded.find(needle, at + 1)
    out: list[str] = []
    done = 0
    for start in sorted(starts):
        if start < done:
            continue
        m = pattern.match(text, start)
        if m is not None:
            out += [text[done:start], _secret_rewrite(m)]
            done = m.end()
    out.append(text[done:])
    return "".join(out)


# -- the detectors, in the order the policy applies them -----------------------------------


def _bearer(text: str) -> str:
    if "bearer" not in text.casefold():  # every character `(?i)` takes for one of "bearer" folds to it
        return text
    return _pick(_BEARER, text).sub(lambda m: m.group(1) + REDACTED.format("bearer"), text)


def _api_key(text: str) -> str:
    return _pick(_API_KEY, text).sub(REDACTED.format("api_key"), text)


def _cards(text: str) -> str:
    return _pick(_CARD, text).sub(_card, text) if _has_digit(text) else text


def _phones(text: str) -> str:
    return _pick(_PHONE, text).sub(_phone, text) if _has_digit(text) else text


# Detector name -> rewrite. Order matters: a bearer token is not also an api_key.
DETECTORS: dict[str, Callable[[str], str]] = {
    "bearer": _bearer,
    "api_key": _api_key,
    "secret": _secret,
    "email": redact_emails,
    "card": _cards,
    "phone": _phones,
}
