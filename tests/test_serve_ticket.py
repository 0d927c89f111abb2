"""`fsar-tui serve`'s cookie carries a session ticket, never the token (the real server,
plain HTTP and WebSocket clients; tests/test_serve.py has the browser).

Browsers do not scope cookies by port: every other service on the same host name gets
the cookie. So it must not hold the serve token, nor anything the token can be read back
from; what it holds lets the page's static files and WebSocket in, only on the server
run that drew it.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from http.cookies import SimpleCookie
from urllib.parse import quote

import pytest

from test_serve import OPENED, TOKEN, Served, http_get, serving, ws_status


def ticket_of(served: Served, headers: dict[str, str] | None = None, token: str | None = TOKEN) -> tuple[str, str]:
    """(the ticket, the raw Set-Cookie header) of the page, let in by the token."""
    status, _, response = http_get(served.url("/", token), headers)
    assert status == 200, status
    set_cookie = response["Set-Cookie"]
    morsel = SimpleCookie(set_cookie)[f"fsar_serve_{served.port}"]
    return morsel.value, set_cookie


def encodings(token: str) -> set[str]:
    """The token as it might be carried reversibly in a cookie."""
    raw = token.encode()
    forms = {token, quote(token, safe=""), raw.hex(), raw.hex().upper(), token[::-1]}
    for encode in (base64.b64encode, base64.urlsafe_b64encode, base64.b32encode):
        text = encode(raw).decode()
        forms |= {text, text.rstrip("=")}
    return forms


def decodes_to_token(value: str, token: str) -> bool:
    """Whether the ticket, read as base64 or hex, holds the token."""
    for decode in (base64.urlsafe_b64decode, base64.b64decode, bytes.fromhex):
        for candidate in (value, value + "=" * (-len(value) % 4)):
            try:
                data = decode(candidate)
            except ValueError:
                continue
            if token.encode() in data:
                return True
    return False


def cookie_header(served: Served, ticket: str) -> dict[str, str]:
    return {"Cookie": f"fsar_serve_{served.port}={ticket}"}


def ws_url(served: Served) -> str:
    return served.url("/ws", None).replace("http://", "ws://")


@pytest.mark.slow
def test_the_cookie_carries_a_ticket_that_is_not_the_token_and_lets_the_page_in(db_dsn, isolated_env, tmp_path):
    with serving(db_dsn, isolated_env, tmp_path) as served:
        ticket, set_cookie = ticket_of(served)
        # Not the token, not any reversible form of it: in the header or the value.
        for form in encodings(TOKEN):
            assert form not in set_cookie and form not in ticket, form
        assert not decodes_to_token(ticket, TOKEN)
        assert len(ticket) >= 43
        attributes = set_cookie.lower()
        assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes
        # One ticket per run: the bearer header gets the same one; the ticket itself re-sets it.
        assert ticket_of(served, {"Authorization": f"Bearer {TOKEN}"}, token=None)[0] == ticket
        assert ticket_of(served, cookie_header(served, ticket), token=None)[0] == ticket

        # The ticket lets in the page, its static files and the WebSocket.
        assert http_get(served.url("/static/js/textual.js", None), cookie_header(served, ticket))[0] == 200
        assert http_get(served.url("/static/css/xterm.css", None), cookie_header(served, ticket))[0] == 200
        assert asyncio.run(ws_status(ws_url(served), cookie_header(served, ticket))) == 101
        session_id = served.wait_for(OPENED).group(1)
        served.wait_for(re.compile(rf"session {session_id} closed"))

        # A forged ticket, the token itself in the cookie, an empty cookie: 401 everywhere.
        for forged in (secrets.token_urlsafe(32), ticket[:-1], ticket + "A", TOKEN, ""):
            headers = cookie_header(served, forged)
            for path in ("/", "/static/js/textual.js"):
                status, _, response = http_get(served.url(path, None), headers)
                assert status == 401 and "Set-Cookie" not in response, (forged, path)
            assert asyncio.run(ws_status(ws_url(served), headers)) == 401, forged
        # Another server's cookie name (another port) carries nothing here either.
        other = {"Cookie": f"fsar_serve_{served.port + 1}={ticket}"}
        assert http_get(served.url("/", None), other)[0] == 401
        assert ticket not in served.output() and TOKEN not in served.output()


@pytest.mark.slow
def test_a_ticket_from_a_previous_run_is_refused(db_dsn, isolated_env, tmp_path):
    """The same token, the same port, a new run: the old ticket is worthless."""
    with serving(db_dsn, isolated_env, tmp_path) as first:
        old, _ = ticket_of(first)
        port = first.port
        assert http_get(first.url("/", None), cookie_header(first, old))[0] == 200
    with serving(db_dsn, isolated_env, tmp_path, "--port", str(port)) as second:
        assert second.port == port  # the same cookie name: only the value can tell them apart
        for path in ("/", "/static/js/textual.js"):
            assert http_get(second.url(path, None), cookie_header(second, old))[0] == 401, path
        assert asyncio.run(ws_status(ws_url(second), cookie_header(second, old))) == 401
        new, _ = ticket_of(second)
        assert new != old  # drawn per run: not a function of the token, which is unchanged
        assert http_get(second.url("/", None), cookie_header(second, new))[0] == 200
        assert second.children() == []  # no app was started for the old ticket
