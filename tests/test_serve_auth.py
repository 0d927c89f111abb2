"""domain/serve_auth.py: `fsar-tui serve`'s token, host and URL rules (no server here;
tests/test_serve.py runs the real one)."""

from __future__ import annotations

import pytest

from fsar_tui.domain import serve_auth as sa

TOKEN = "s3cret-token_0123456789"


def test_generated_tokens_are_long_unique_and_acceptable():
    tokens = {sa.generate_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) >= 43
        assert sa.check_token(token) == token


@pytest.mark.parametrize(
    "bad, why",
    [
        ("tiny-tok", "too short"),
        ("x" * (sa.MAX_TOKEN_LENGTH + 1), "too long"),
        ("has a space in it 0123", "only letters"),
        ("semi;colon-0123456789", "only letters"),
        ("newline\n0123456789abc", "only letters"),
        ("ünïcödé-0123456789abc", "only letters"),
        # `+` arrives as a space in `?token=`; `/` and `=` need quoting: not RFC 3986 unreserved.
        ("tok+abc/def=0123456789", "RFC 3986 unreserved"),
        ("plus+sign-0123456789", "RFC 3986 unreserved"),
        ("slash/0123456789abcdef", "RFC 3986 unreserved"),
        ("padded-0123456789abc==", "RFC 3986 unreserved"),
    ],
)
def test_a_bad_token_is_refused_without_quoting_it(bad, why):
    with pytest.raises(ValueError, match=why) as caught:
        sa.check_token(bad)
    assert bad not in str(caught.value)


def test_token_matches_exactly_and_never_a_missing_one():
    assert sa.token_matches(TOKEN, TOKEN)
    assert not sa.token_matches(TOKEN, TOKEN[:-1])
    assert not sa.token_matches(TOKEN, TOKEN + "x")
    assert not sa.token_matches(TOKEN, "")
    assert not sa.token_matches(TOKEN, None)
    assert not sa.token_matches(TOKEN, "\udcff")  # a lone surrogate from a hostile query: no crash


@pytest.mark.parametrize(
    "header, token",
    [
        (f"Bearer {TOKEN}", TOKEN),
        (f"bearer {TOKEN}", TOKEN),
        (f"  BEARER   {TOKEN}  ", TOKEN),
        (f"Basic {TOKEN}", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_header(header, token):
    assert sa.bearer_token(header) == token


TICKET = sa.generate_ticket()


def test_the_token_on_the_url_or_bearer_or_the_ticket_in_the_cookie_lets_a_request_in():
    assert sa.authorized(TOKEN, TICKET, query=TOKEN, authorization=None, cookie=None)
    assert sa.authorized(TOKEN, TICKET, query=None, authorization=f"Bearer {TOKEN}", cookie=None)
    assert sa.authorized(TOKEN, TICKET, query=None, authorization=None, cookie=TICKET)
    assert sa.authorized(TOKEN, TICKET, query="wrong", authorization=None, cookie=TICKET)  # stale URL, good cookie
    assert not sa.authorized(TOKEN, TICKET, query=None, authorization=None, cookie=None)
    assert not sa.authorized(TOKEN, TICKET, query="wrong", authorization="Bearer wrong", cookie="wrong")
    assert not sa.authorized(TOKEN, TICKET, query=None, authorization=TOKEN, cookie=None)  # no scheme: not a bearer


def test_the_cookie_carries_tickets_only_and_the_url_and_header_tokens_only():
    assert not sa.authorized(TOKEN, TICKET, query=None, authorization=None, cookie=TOKEN)
    assert not sa.authorized(TOKEN, TICKET, query=TICKET, authorization=f"Bearer {TICKET}", cookie=None)
    old_run = sa.generate_ticket()  # a ticket of another run (or another server)
    assert not sa.authorized(TOKEN, TICKET, query=None, authorization=None, cookie=old_run)
    assert not sa.authorized(TOKEN, TICKET, query=None, authorization=None, cookie="")


def test_tickets_are_random_long_and_unrelated_to_the_token():
    tickets = {sa.generate_ticket() for _ in range(50)}
    assert len(tickets) == 50
    for ticket in tickets:
        assert len(ticket) >= 43 and sa.check_token(ticket) == ticket  # cookie-safe characters
        assert TOKEN not in ticket


def test_cookie_names_are_per_port():
    assert sa.cookie_name(8000) != sa.cookie_name(8001)


@pytest.mark.parametrize(
    "host, checked",
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("0.0.0.0", "0.0.0.0"),
        ("localhost", "localhost"),
        ("ops-panel.example.com.", "ops-panel.example.com"),
    ],
)
def test_good_hosts(host, checked):
    assert sa.check_host(host) == checked


@pytest.mark.parametrize("host", ["", "not a host", "-bad.example", "bad-.example", "a..b", "x" * 64, "h/st", "ho$t"])
def test_bad_hosts(host):
    with pytest.raises(ValueError, match="not an IP address or a host name"):
        sa.check_host(host)


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("ops.example.com", False),
    ],
)
def test_loopback(host, loopback):
    assert sa.is_loopback(host) is loopback


def test_page_url_carries_a_generated_token_and_never_a_chosen_one():
    assert sa.page_url("127.0.0.1", 8000, "abc+/=") == "http://127.0.0.1:8000/?token=abc%2B%2F%3D"
    assert sa.page_url("::1", 9000, None) == "http://[::1]:9000/?token=<your token>"


def test_every_unreserved_character_is_accepted():
    token = "AZaz09._~-" + "x" * 16
    assert sa.check_token(token) == token


@pytest.mark.parametrize(
    "path_qs, logged",
    [
        ("/?token=abc", "/?…"),
        ("/ws?token=abc&width=80", "/ws?…"),
        ("/?TOKEN=abc", "/?…"),  # the token under any other name is dropped too
        ("/?access_token=abc&x=1", "/?…"),
        ("/static/js/textual.js", "/static/js/textual.js"),
        ("/x\x1b[31m\ny\x07", "/xy"),  # inert, one line
        ("/" + "a" * 500 + "?q=1", "/" + "a" * (sa.LOGGED_PATH_MAX - 2) + "…?…"),
    ],
)
def test_log_lines_hold_the_path_never_the_query(path_qs, logged):
    assert sa.logged_path(path_qs) == logged


@pytest.mark.parametrize(
    "origin, host, same",
    [
        (None, "127.0.0.1:8000", True),  # not a browser: the token decides
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://LOCALHOST:8000", "localhost:8000", True),
        ("http://evil.example", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
        ("null", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", None, False),
    ],
)
def test_websocket_origin(origin, host, same):
    assert sa.same_origin(origin, host) is same


def test_channel_names_the_browser_session():
    assert sa.channel("3f2a1b9c0d4e") == "browser:3f2a1b9c0d4e"


def test_os_user_says_the_channel(monkeypatch):
    from fsar_tui.db.actions import os_user

    monkeypatch.delenv(sa.CHANNEL_ENV, raising=False)
    plain = os_user()
    assert "(" not in plain
    monkeypatch.setenv(sa.CHANNEL_ENV, "browser:3f2a1b9c0d4e")
    assert os_user() == f"browser:3f2a1b9c0d4e ({plain})"
