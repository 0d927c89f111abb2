"""Connection strings: masking secrets and describing targets.

Two DSN shapes reach us: libpq key/value (`host=db password=s3cret dbname=x`) and
URIs (`postgresql://user:s3cret@db:5432/x?sslmode=require&password=…`). MQTT URLs
(`mqtt://user:pw@broker:1883`) share the URI rule. `mask_dsn` keeps the shape the user
typed and replaces every password with `****`, so the masked text still tells them
which server they pointed at. `describe_target` gives the `host:port/database` used in
one-line error messages.

Nothing in fsar-tui prints a DSN without passing it through here.
"""

from __future__ import annotations

import re

from psycopg.conninfo import conninfo_to_dict

MASK = "****"

# scheme://user:password@host — passwords pasted without percent-encoding may hold
# '@', '/', '?' or '#', so the userinfo runs to the LAST '@'. When that '@' is really in
# the query string this over-masks, which is the safe way to be wrong.
_URI_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# password=... in a URI query string.
_URI_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")
# password=value / password = 'quoted value' in libpq key/value form.
_KV_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)")


def mask_dsn(dsn: str | None) -> str:
    """Return `dsn` with every password replaced by ****; keeps the DSN's shape."""
    if not dsn:
        return ""
    masked = mask_uri(dsn)
    return _KV_PASSWORD.sub(lambda k: k.group(1) + MASK, dsn) if masked is None else masked


def mask_uri(uri: str, *, secret_query: re.Pattern = _URI_QUERY_PASSWORD, mask: str = MASK) -> str | None:
    """`scheme://user:password@host…?password=…` with the password in the user info and
    the query parameters `secret_query` matches replaced by `mask`; None when `uri` has
    no scheme (the delivery URLs of fsar_tui/delivery.py share this rule)."""
    scheme = _URI_SCHEME.match(uri)
    if scheme is None:
        return None
    rest = uri[scheme.end() :]
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        userinfo, hostpart = "", rest
    elif ":" in userinfo:
        userinfo = f"{userinfo.split(':', 1)[0]}:{mask}"
    hostpart = secret_query.sub(lambda q: q.group(1) + mask, hostpart)
    return f"{scheme.group(0)}{userinfo}{at}{hostpart}"


def dsn_params(dsn: str) -> dict[str, str]:
    """Parse a DSN into libpq parameters; empty dict when it cannot be parsed."""
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except Exception:  # psycopg raises ProgrammingError for malformed strings
        return {}


def describe_target(dsn: str) -> str:
    """`host:port/database` for messages, never including a password."""
    p = dsn_params(dsn)
    host = p.get("host") or p.get("hostaddr") or "localhost"
    port = p.get("port") or "5432"
    db = p.get("dbname") or p.get("user") or "postgres"
    return f"{host}:{port}/{db}"


def _local(host: str) -> bool:
    return all(not h or h.startswith("/") or h in ("localhost", "127.0.0.1", "::1") for h in host.split(","))


def is_local_host(dsn: str) -> bool:
    """True when the DSN points at a unix socket or a loopback address."""
    p = dsn_params(dsn)
    return _local(p.get("hostaddr") or p.get("host", ""))


def tls_verdict(dsn: str, *, connected_host: str | None = None, tls_in_use: bool | None = None) -> tuple[bool, str]:
    """Does the connection use TLS where it must? A loopback or socket connection need not;
    a remote one must be encrypted (`tls_in_use`, from the live session) and insist on it in
    the DSN (sslmode=require, verify-ca or verify-full: 'prefer', the libpq default, falls
    back to plaintext without a word). `connected_host` is where the session really went
    (libpq also reads PGHOST, hostaddr…), so a DSN that names no host is not "local"."""
    local = _local(connected_host) if connected_host is not None else is_local_host(dsn)
    if local:
        return True, "local connection: TLS not required"
    if tls_in_use is False:
        return False, "remote connection is not encrypted: use sslmode=verify-full"
    mode = dsn_params(dsn).get("sslmode") or "prefer (default)"
    if mode in ("verify-full", "verify-ca"):
        return True, f"sslmode={mode}"
    if mode == "require":
        return True, "sslmode=require (encrypted, server not verified: verify-full is better)"
    return False, f"remote host with sslmode={mode}: use sslmode=verify-full (or require)"
