"""config.toml's `[notify]` (issue 20 point 3), as config.py reads it: the webhook URLs,
the SMTP URL, the mail's recipients and sender — checked when the file is read (a bad URL
or address: a one-line usage error naming the URL masked) and never shown with their
secrets (`mask_notify_url`: the password and token-like query values as ***). Whether
the SMTP server answers is the sending commands' check (services/notify.preflight).
Kept apart from config.py, which re-exports NotifyConfig, to keep each module short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class NotifyConfigError(ValueError):
    """Why config.toml's [notify] is refused (one line; config.py makes it a usage error)."""


@dataclass(frozen=True)
class NotifyConfig:
    """config.toml `[notify]`: webhook URLs (Alertmanager's webhook format), an SMTP URL
    and the mail's recipients and sender. The URLs hold secrets (tokens, passwords): the
    repr and `masked()` never show them."""

    webhooks: tuple[str, ...] = ()
    smtp: str | None = None
    to: tuple[str, ...] = ()
    sender: str | None = None  # `from`

    def __repr__(self) -> str:
        return f"NotifyConfig({self.masked()!r})"

    def masked(self) -> dict[str, Any]:
        return {
            "webhooks": [mask_notify_url(u) for u in self.webhooks],
            "smtp": mask_notify_url(self.smtp) if self.smtp else None,
            "to": list(self.to),
            "from": self.sender,
        }


def mask_notify_url(url: str) -> str:
    """`url` as the operator may see it: scheme, host and port only — webhook services
    carry their secret anywhere (Slack's and Teams' in the path, GitLab's in
    `private_token=`, some in the user name or the fragment), so the rest shows as `***` —
    with a short digest of the whole URL that tells two channels of one host apart."""
    import hashlib
    from urllib.parse import urlsplit

    from fsar_tui.domain.notify import scrub, secret_values

    digest = hashlib.sha256(url.strip().encode()).hexdigest()[:8]
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
        parts = None
    if parts is None or not parts.scheme or not host:
        return f"*** (#{digest})"  # not a URL we can show any part of
    user = "***@" if parts.username is not None or parts.password is not None else ""
    rest = "/***" if parts.path not in ("", "/") or parts.query or parts.fragment else ""
    shown = f"{parts.scheme}://{user}{host}{f':{port}' if port else ''}{rest} (#{digest})"
    return scrub(shown, secret_values(url))


def _strings(value: Any, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise NotifyConfigError(f"{source}: expected a list of non-empty strings")
    return [v.strip() for v in value]


def parse_notify(table: Any, source: str) -> NotifyConfig:
    """config.toml `[notify]` → NotifyConfig; unknown keys, a bad URL or address: usage
    errors naming the URL masked. Whether the SMTP server answers is checked by the
    commands that send (services/notify.preflight), not here."""

    if not isinstance(table, dict):
        raise NotifyConfigError(f"{source}: must be a table")
    unknown = sorted(set(table) - {"webhooks", "smtp", "to", "from"})
    if unknown:
        raise NotifyConfigError(f"{source}: unknown key(s): {', '.join(unknown)}")
    webhooks = _strings(table["webhooks"], f"{source} webhooks") if "webhooks" in table else []
    if len(webhooks) > 10:
        raise NotifyConfigError(f"{source} webhooks: at most 10")
    for url in webhooks:
        problem = url_problem(url, ("http", "https"))
        if problem:
            raise NotifyConfigError(f"{source} webhooks: bad URL {mask_notify_url(url)}: {problem}")
    smtp = table.get("smtp")
    if smtp is not None:
        if not isinstance(smtp, str) or not smtp.strip():
            raise NotifyConfigError(f'{source} smtp: expected a URL such as "smtp://user:pass@host:587?starttls=1"')
        problem = smtp_problem(smtp)
        if problem:
            raise NotifyConfigError(f"{source} smtp: bad URL {mask_notify_url(smtp)}: {problem}")
        smtp = smtp.strip()
    to = _strings(table["to"], f"{source} to") if "to" in table else []
    sender = table.get("from")
    if sender is not None and not isinstance(sender, str):
        raise NotifyConfigError(f"{source} from: expected a mail address")
    for address in [*to, *([sender] if sender else [])]:
        problem = address_problem(address)
        if problem:
            raise NotifyConfigError(f"{source}: {address!r}: {problem}")
    if smtp and not to:
        raise NotifyConfigError(f"{source}: smtp is set but `to` names no recipient")
    if to and not smtp:
        raise NotifyConfigError(f"{source}: `to` is set but no smtp URL to send the mail through")
    if not webhooks and not smtp:
        raise NotifyConfigError(f"{source}: set webhooks or smtp (or remove the section)")
    return NotifyConfig(webhooks=tuple(webhooks), smtp=smtp, to=tuple(to), sender=sender.strip() if sender else None)


# -- configuration checks (config.py's [notify]) ------------------------------------------

_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why `url` is no `schemes` URL with a host, or None. Quotes no part of the URL."""
    text = url.strip()
    if not text or any(c.isspace() or ord(c) < 32 for c in text):
        return "empty, or holds spaces or control characters"
    try:
        parts = urlsplit(text)
        port = parts.port  # parses the port: ValueError on a bad one
    except ValueError:
        return "malformed host or port (a password holding / ? # @ must be percent-encoded)"
    if parts.scheme.lower() not in schemes:
        return f"the scheme must be {' or '.join(s + '://' for s in schemes)}"
    if not parts.hostname:
        return "no host"
    if port == 0:
        return "port 0"
    return None


def smtp_problem(url: str) -> str | None:
    """url_problem for smtp:// and smtps://, with services/delivery's rules: no path, the
    only option starttls (on smtp:// only)."""
    problem = url_problem(url, ("smtp", "smtps"))
    if problem:
        return problem
    parts = urlsplit(url.strip())
    if parts.path not in ("", "/") or parts.fragment:
        return "unexpected path or fragment"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.lower() != "starttls":
            return "unknown option (only starttls=1)"
        if value.lower() not in ("", "1", "0", "true", "false", "yes", "no", "on", "off"):
            return "starttls must be 1 or 0"
        if parts.scheme.lower() == "smtps":
            return "smtps:// is already TLS; starttls applies to smtp:// only"
    return None


def address_problem(address: str) -> str | None:
    return None if _ADDRESS.fullmatch(address.strip()) else "not a mail address (name@host)"
