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
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

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


_API_KEY = re.compile(
    r"\b(?:sk|pk|rk)[-_](?:live|test|proj|ant)?[-_]?[A-Za-z0-9_\-]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_\-]{30,}"
)
_ASSIGNED_SECRET = re.compile(
    r"(?i)((?:api[_-]?key|secret|token|password|passwd|access[_-]?key)[\"']?\s*[:=]\s*[\"']?)"
    r"([^\s\"',;}{]{6,})"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d])(?:\d[ \-]?){12,18}\d(?![\d])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)[ .\-]?)?\d{2,4}(?:[ .\-]\d{2,4}){2,4}(?![\w])")


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return REDACTED.format("card") if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}(:\d{2})?")


def _phone(match: re.Match[str]) -> str:
    text: str = match.group(0)
    digits = re.sub(r"\D", "", text)
    # Dates and times share the shape; a phone has 9+ digits, or 7+ with a country code.
    if _DATE.fullmatch(text.strip()) or _DATE.search(text):
        return text
    minimum = 7 if text.lstrip().startswith("+") else 9
    return REDACTED.format("phone") if minimum <= len(digits) <= 15 else text


# Detector name -> rewrite. Order matters: a bearer token is not also an api_key.
DETECTORS: dict[str, Callable[[str], str]] = {
    "bearer": lambda t: _BEARER.sub(lambda m: m.group(1) + REDACTED.format("bearer"), t),
    "api_key": lambda t: _API_KEY.sub(REDACTED.format("api_key"), t),
    "secret": lambda t: _ASSIGNED_SECRET.sub(
        lambda m: m.group(0) if m.group(2).startswith("[REDACTED") else m.group(1) + REDACTED.format("secret"), t
    ),
    "email": lambda t: _EMAIL.sub(REDACTED.format("email"), t),
    "card": lambda t: _CARD.sub(_card, t),
    "phone": lambda t: _PHONE.sub(_phone, t),
}

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


@dataclass(frozen=True)
class Policy:
    """Which detectors run, which JSON fields are always hidden, and extra named
    patterns (config.toml `[redaction]`); one instance is in force per process."""

    detectors: tuple[str, ...] = tuple(DETECTORS)
    fields: frozenset[str] = DEFAULT_FIELDS
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()

    def text(self, text: str) -> str:
        for name in self.detectors:
            text = DETECTORS[name](text)
        for name, pattern in self.patterns:
            text = pattern.sub(REDACTED.format(name), text)
        return text

    def value(self, value: Any) -> Any:
        """A JSON value with every string — keys included — redacted and every listed field's
        value hidden; numbers that detect as nothing, booleans and nulls are returned as they are."""
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                hidden = _FIELD_TOKEN if v not in (None, "") and str(k).lower() in self.fields else self.value(v)
                key = self.text(k) if isinstance(k, str) else k  # {"jane@example.com": "sent"}
                while key in out:  # two keys redacted alike: keep both values
                    key += "'"
                out[key] = hidden
            return out
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**8:
            # A card or phone number stored as a number is still one.
            as_text = str(value)
            redacted = self.text(as_text)
            return value if redacted == as_text else redacted
        return value


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


def value_findings(value: Any) -> list[str]:
    """findings() for a JSON value, field rules included."""
    import json

    before = json.dumps(value, ensure_ascii=False, default=str)
    after = json.dumps(policy().value(value), ensure_ascii=False, default=str)
    new = Counter(_TOKEN.findall(after)) - Counter(_TOKEN.findall(before))
    return sorted(new)
