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

from fsar_tui.domain.uri_mask import MASK, mask_uri

# password=value / password = 'quoted value' in libpq key/value form.
_KV_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)")


def mask_dsn(dsn: str | None) -> str:
    """Return `dsn` with every password replaced by ****; keeps the DSN's shape."""
    if not dsn:
        return ""
    masked = mask_uri(dsn)
    return _KV_PASSWORD.sub(lambda k: k.group(1) + MASK, dsn) if masked is None else masked


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
