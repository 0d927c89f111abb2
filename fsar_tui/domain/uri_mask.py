"""Masking a URI's secrets — the password in its user info and the query parameters that
carry credentials — pure, so the DSN helpers (fsar_tui/dsn.py) and the notification
config (domain/notify_config.py) share one rule."""

from __future__ import annotations

import re

MASK = "****"

# scheme://user:password@host — passwords pasted without percent-encoding may hold
# '@', '/', '?' or '#', so the userinfo runs to the LAST '@'. When that '@' is really in
# the query string this over-masks, which is the safe way to be wrong.
_URI_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# password=... in a URI query string.
_URI_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def mask_uri(uri: str, *, secret_query: re.Pattern[str] = _URI_QUERY_PASSWORD, mask: str = MASK) -> str | None:
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
