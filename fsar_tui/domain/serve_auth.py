"""`fsar-tui serve`'s access rules as pure functions: the token (made, checked, where a
request may carry it), the session ticket its cookie carries, the host to bind, the URLs
printed, and the actor channel a browser session writes under. No I/O;
services/serve.py applies them to every request.

A request is let in when ANY of these holds (every comparison constant-time,
hmac.compare_digest, so its time says nothing about how much matched):
- `?token=` on the URL equals the server's token (what the operator opens; the page is
  served for it);
- `Authorization: Bearer <token>` equals it (scripts, reverse proxies);
- the cookie the page sets (HttpOnly, SameSite=Strict, Path=/, named per port) equals
  this server's session ticket. A browser cannot add a header to its WebSocket handshake
  or to the page's own `<script>`/`<link>` loads, and textual-serve's JS appends
  `?width=…` to the WebSocket URL, so a token in that URL would not survive: the cookie
  is how the static files and the WebSocket get in.

The cookie never carries the token. Browsers do not scope cookies by port: every other
service on the same host name receives it. So it carries a ticket: random bytes drawn
when the server starts (generate_ticket), unrelated to the token and held only in that
process's memory. Presenting the token (query or bearer) is how a browser gets it; it
lets in only this server, only while it runs — a restarted server draws a new one and
refuses every older ticket. The token, which outlives the run (--token,
FSAR_SERVE_TOKEN), is never in a cookie, so a neighbour on another port can at worst use
a running server's ticket, never learn the token.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from urllib.parse import urlencode, urlsplit

from fsar_tui.domain.sanitize import one_line

TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits
TICKET_BYTES = 32  # the session ticket: as many random bits as a generated token
MIN_TOKEN_LENGTH = 16  # a token given by the operator: shorter is a guessable secret
MAX_TOKEN_LENGTH = 512
QUERY_PARAM = "token"
CHANNEL_ENV = "FSAR_ACTOR_CHANNEL"  # read by db/actions.os_user() in the served app
# A token travels in URLs, headers and cookies: RFC 3986's unreserved characters only,
# which no URL, header or cookie changes (a `+` in `?token=` decodes as a space, `/` and
# `=` need quoting). secrets.token_urlsafe draws from [A-Za-z0-9_-]: a subset.
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~-]+")
TOKEN_RULE = "only letters, digits and . _ ~ - (RFC 3986 unreserved characters) are allowed"
LOGGED_PATH_MAX = 200  # a refused request's path in a log line: no more than this
# RFC 1123 host names: labels of letters, digits and inner hyphens.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def generate_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def generate_ticket() -> str:
    """A server run's session ticket: what its cookie carries. Random, drawn per run, so
    it says nothing about the token and no later run accepts it."""
    return secrets.token_urlsafe(TICKET_BYTES)


def check_token(token: str) -> str:
    """A token given by the operator (--token, FSAR_SERVE_TOKEN): long enough, and made of
    characters a URL, a header and a cookie carry unchanged; else ValueError saying why
    (never quoting the token: it is a secret, even a bad one)."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"too short: at least {MIN_TOKEN_LENGTH} characters (or leave it out: one is generated)")
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"too long: at most {MAX_TOKEN_LENGTH} characters")
    if not _TOKEN_CHARS.fullmatch(token):
        raise ValueError(TOKEN_RULE)
    return token


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time equality; a missing token never matches."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogatepass"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authorized(token: str, ticket: str, *, query: str | None, authorization: str | None, cookie: str | None) -> bool:
    """Whether a request carrying these may in: the token on the URL or in the bearer
    header, or this run's ticket in the cookie (a cookie holding the token is refused:
    cookies carry tickets only). Every candidate is compared (no early exit on the first
    one present), so which of them was tried does not show either."""
    results = [token_matches(token, given) for given in (query, bearer_token(authorization))]
    results.append(token_matches(ticket, cookie))
    return any(results)


def cookie_name(port: int) -> str:
    """Cookies are per host, not per port: two servers on one host each keep their own
    ticket (and neither's is the other's: each refuses the other's ticket anyway)."""
    return f"fsar_serve_{port}"


def check_host(host: str) -> str:
    """--host: an IP address or a host name (RFC 1123); else ValueError."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.rstrip(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError("not an IP address or a host name")
    return name


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server reachable from this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """The host as it goes in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


def page_url(host: str, port: int, token: str | None) -> str:
    """The URL to open; `token` None prints a placeholder (a token the operator chose is
    not echoed: it is in their shell history or environment already)."""
    base = f"http://{url_host(host)}:{port}/"
    if token is None:
        return f"{base}?{QUERY_PARAM}=<your token>"
    return f"{base}?{urlencode({QUERY_PARAM: token})}"


def logged_path(path_qs: str) -> str:
    """A request's path for a log line: never its query string, whose every value may be a
    token a client put under another name (`?TOKEN=`, `?access_token=`); "?…" says there
    was one. Inert (no control character) and on one line, cut to LOGGED_PATH_MAX."""
    parts = urlsplit(path_qs)
    path = one_line(parts.path)
    if len(path) > LOGGED_PATH_MAX:
        path = path[: LOGGED_PATH_MAX - 1] + "…"
    return path + ("?…" if parts.query else "")


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """A WebSocket handshake's Origin against the Host it was sent to. A browser always
    sends Origin: another site's page opening our WebSocket (cross-site WebSocket
    hijacking) is refused even if the browser attached our cookie. No Origin: not a
    browser (a script with the bearer header), allowed."""
    if origin is None:
        return True
    if not host_header:
        return False
    netloc = urlsplit(origin).netloc
    return bool(netloc) and netloc.lower() == host_header.strip().lower()


def channel(session_id: str) -> str:
    """The actor channel of a browser session: the served app's operator log rows claim
    `browser:<session id> (<os user>)` (db/actions.os_user)."""
    return f"browser:{session_id}"
