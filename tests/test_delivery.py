"""Report delivery (fsar_tui/delivery.py) against real local servers, no mocks.

SMTP: aiosmtpd on 127.0.0.1 (plain, AUTH, STARTTLS and implicit TLS with a throwaway
self-signed certificate trusted through SSL_CERT_FILE). HTTP: a stdlib http.server in
a thread. Refused connections use a free port nobody listens on; timeouts use a socket
that listens but never answers. No PostgreSQL needed.
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.errors import EXIT_FAILED, EXIT_USAGE, CheckFailed, UsageError
from fsar_tui.services.delivery import (
    DeliveryError,
    SmtpTarget,
    mask_url,
    parse_smtp_url,
    send_mail,
)
from support.delivery import TIMEOUT, assert_clean, free_port, make_tls_cert, server_context

# ---- SMTP servers ---------------------------------------------------------------


class Recorder:
    """aiosmtpd handler: keeps every envelope; refuses recipients starting with 'bad'."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bad"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


class Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()
        self.seen: list[tuple[bytes, bytes]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        self.seen.append((auth_data.login, auth_data.password))
        ok = (auth_data.login, auth_data.password) == (self.user, self.password)
        # handled=False: let aiosmtpd answer 235/535 itself.
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator:
    """Start aiosmtpd servers on free ports; stopped at teardown. Returns (handler, port)."""
    started: list[Controller] = []

    def start(**kwargs) -> tuple[Recorder, int]:
        handler, port = Recorder(), free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return handler, port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory) -> tuple[Path, Path]:
    return make_tls_cert(tmp_path_factory)


def parse_mail(envelope) -> email.message.EmailMessage:
    # As received off the wire: CRLF line ends, which the comparisons below do not care about.
    raw = (envelope.original_content or envelope.content).replace(b"\r\n", b"\n")
    return email.message_from_bytes(raw, policy=email.policy.default)


# ---- SMTP: delivery --------------------------------------------------------------


def test_mail_with_two_recipients_and_attachment_arrives(smtp_server):
    handler, port = smtp_server()
    data = bytes(range(256)) * 4
    send_mail(
        f"smtp://127.0.0.1:{port}",
        "fsar@example.org",
        ["a@example.org", "b@example.org"],
        "Weekly ROI — 7d",
        "Résumé ✓\nsecond line\n",
        attachment=("fsar-report.json", data, "application/json"),
        timeout=TIMEOUT,
    )

    [envelope] = handler.envelopes
    assert envelope.mail_from == "fsar@example.org"
    assert envelope.rcpt_tos == ["a@example.org", "b@example.org"]
    msg = parse_mail(envelope)
    assert msg["Subject"] == "Weekly ROI — 7d"
    assert msg["From"] == "fsar@example.org"
    assert msg["To"] == "a@example.org, b@example.org"
    body = msg.get_body(("plain",))
    assert body.get_content_charset() == "utf-8"
    assert body.get_content() == "Résumé ✓\nsecond line\n"
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == "fsar-report.json"
    assert att.get_content_type() == "application/json"
    assert att.get_payload(decode=True) == data


def test_mail_without_attachment_is_plain_text(smtp_server):
    handler, port = smtp_server()
    send_mail(f"smtp://127.0.0.1:{port}/", "f@x", ["t@x"], "s", "just text", timeout=TIMEOUT)
    msg = parse_mail(handler.envelopes[0])
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content() == "just text\n"


def test_refused_recipient_is_a_delivery_error(smtp_server):
    handler, port = smtp_server()
    with pytest.raises(DeliveryError) as exc:
        send_mail(f"smtp://127.0.0.1:{port}", "f@x", ["bad@x"], "s", "b", timeout=TIMEOUT)
    msg = exc.value.message
    assert msg.startswith(f"SMTP delivery to smtp://127.0.0.1:{port} failed: ")
    assert "bad@x" in msg and "550" in msg and "no such mailbox" in msg
    assert_clean(msg)
    assert handler.envelopes == []
    assert exc.value.exit_code == EXIT_FAILED and isinstance(exc.value, CheckFailed)


def test_partly_refused_recipients_name_the_refused_ones(smtp_server):
    handler, port = smtp_server()
    with pytest.raises(DeliveryError) as exc:
        send_mail(f"smtp://127.0.0.1:{port}", "f@x", ["good@x", "bad@x"], "s", "b", timeout=TIMEOUT)
    msg = exc.value.message
    assert "1 of 2" in msg and "bad@x" in msg and "550" in msg
    assert_clean(msg)
    # The accepted recipient did get the mail.
    assert [e.rcpt_tos for e in handler.envelopes] == [["good@x"]]


def test_connection_refused_masks_password_and_has_no_traceback():
    port = free_port()
    with pytest.raises(DeliveryError) as exc:
        send_mail(f"smtp://ops:s3cr%40t@127.0.0.1:{port}", "f@x", ["t@x"], "s", "b", timeout=TIMEOUT)
    msg = exc.value.message
    assert msg == f"SMTP delivery to smtp://ops:***@127.0.0.1:{port} failed: Connection refused"
    assert_clean(msg, "s3cr", "s3cr@t", "s3cr%40t")
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_silent_server_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(DeliveryError) as exc:
            send_mail(f"smtp://127.0.0.1:{port}", "f@x", ["t@x"], "s", "b", timeout=0.3)
    assert exc.value.message.endswith("failed: timed out after 0.3s")


def test_auth_login_with_percent_encoded_password(smtp_server):
    password = "p@ss w/rd:ü"
    auth = Authenticator("ops", password)
    handler, port = smtp_server(authenticator=auth, auth_require_tls=False)
    send_mail(f"smtp://ops:{quote(password, safe='')}@127.0.0.1:{port}", "f@x", ["t@x"], "s", "b", timeout=TIMEOUT)
    assert auth.seen == [(b"ops", password.encode())]
    assert len(handler.envelopes) == 1


def test_auth_wrong_password_is_a_delivery_error_without_the_password(smtp_server):
    auth = Authenticator("ops", "right")
    handler, port = smtp_server(authenticator=auth, auth_require_tls=False)
    with pytest.raises(DeliveryError) as exc:
        send_mail(f"smtp://ops:wrongpw@127.0.0.1:{port}", "f@x", ["t@x"], "s", "b", timeout=TIMEOUT)
    msg = exc.value.message
    assert msg.startswith(f"SMTP delivery to smtp://ops:***@127.0.0.1:{port} failed: login refused: 535")
    assert_clean(msg, "wrongpw")
    assert handler.envelopes == []


def test_login_against_a_server_without_auth_fails(smtp_server):
    handler, port = smtp_server()  # no authenticator: AUTH is not offered
    with pytest.raises(DeliveryError) as exc:
        send_mail(f"smtp://ops:hunter2@127.0.0.1:{port}", "f@x", ["t@x"], "s", "b", timeout=TIMEOUT)
    assert "AUTH" in exc.value.message
    assert_clean(exc.value.message, "hunter2")
    assert handler.envelopes == []


def test_starttls_against_a_server_without_it_fails(smtp_server):
    _, port = smtp_server()
    with pytest.raises(DeliveryError) as exc:
        send_mail(f"smtp://127.0.0.1:{port}?starttls=1", "f@x", ["t@x"], "s", "b", timeout=TIMEOUT)
    assert "STARTTLS" in exc.value.message
    assert_clean(exc.value.message)


def test_starttls_with_trusted_certificate_delivers(smtp_server, tls_cert, monkeypatch):
    cert, key = tls_cert
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    auth = Authenticator("ops", "pw")
    # auth_require_tls left at its default (True): the login only works after STARTTLS.
    handler, port = smtp_server(tls_context=server_context(cert, key), authenticator=auth)
    send_mail(f"smtp://ops:pw@127.0.0.1:{port}?starttls=1", "f@x", ["t@x"], "tls", "b", timeout=TIMEOUT)
    assert auth.seen == [(b"ops", b"pw")]
    assert parse_mail(handler.envelopes[0])["Subject"] == "tls"


def test_smtps_with_trusted_certificate_delivers(smtp_server, tls_cert, monkeypatch):
    cert, key = tls_cert
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    handler, port = smtp_server(ssl_context=server_context(cert, key))
    send_mail(f"smtps://127.0.0.1:{port}", "f@x", ["t@x"], "implicit", "b", timeout=TIMEOUT)
    assert parse_mail(handler.envelopes[0])["Subject"] == "implicit"


def test_smtps_with_untrusted_certificate_fails(smtp_server, tls_cert, tmp_path, monkeypatch):
    cert, key = tls_cert
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    handler, port = smtp_server(ssl_context=server_context(cert, key))
    with pytest.raises(DeliveryError) as exc:
        send_mail(f"smtps://ops:pw@127.0.0.1:{port}", "f@x", ["t@x"], "s", "b", timeout=TIMEOUT)
    assert "TLS certificate not trusted" in exc.value.message
    assert_clean(exc.value.message, ":pw@")
    assert handler.envelopes == []


def test_smtps_against_plain_server_is_a_tls_error(smtp_server):
    _, port = smtp_server()
    with pytest.raises(DeliveryError) as exc:
        send_mail(f"smtps://127.0.0.1:{port}", "f@x", ["t@x"], "s", "b", timeout=TIMEOUT)
    assert "failed: " in exc.value.message
    assert_clean(exc.value.message)


def test_send_mail_usage_errors():
    port = free_port()
    with pytest.raises(UsageError, match="recipient"):
        send_mail(f"smtp://127.0.0.1:{port}", "f@x", [], "s", "b")
    with pytest.raises(UsageError, match="sender"):
        send_mail(f"smtp://127.0.0.1:{port}", " ", ["t@x"], "s", "b")
    with pytest.raises(UsageError, match="header"):
        send_mail(f"smtp://127.0.0.1:{port}", "f@x", ["t@x"], "two\nlines", "b")
    with pytest.raises(UsageError, match="MIME"):
        send_mail(f"smtp://127.0.0.1:{port}", "f@x", ["t@x"], "s", "b", attachment=("a", b"x", "json"))


# ---- parse_smtp_url ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("smtp://mail.example", SmtpTarget("mail.example", 25)),
        ("smtp://mail.example:2525/", SmtpTarget("mail.example", 2525)),
        ("SMTP://Mail.Example:587?starttls=1", SmtpTarget("mail.example", 587, starttls=True)),
        ("smtp://h?starttls", SmtpTarget("h", 25, starttls=True)),
        ("smtp://h?starttls=0", SmtpTarget("h", 25)),
        ("smtps://h", SmtpTarget("h", 465, implicit_tls=True)),
        ("smtps://u:p@h:4650", SmtpTarget("h", 4650, implicit_tls=True, username="u", password="p")),
        ("smtp://ops@h", SmtpTarget("h", 25, username="ops")),
        ("smtp://ops%40corp:p%40ss%2Fw%3Ard@h", SmtpTarget("h", 25, username="ops@corp", password="p@ss/w:rd")),
        ("smtp://u:@h", SmtpTarget("h", 25, username="u", password="")),
        ("smtp://[::1]:2525", SmtpTarget("::1", 2525)),
    ],
)
def test_parse_smtp_url(url, expected):
    assert parse_smtp_url(url) == expected


def test_smtp_target_repr_hides_password():
    assert "s3cret" not in repr(parse_smtp_url("smtp://u:s3cret@h"))


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://h", "scheme"),
        ("mailto:ops@h", "scheme"),
        ("h:25", "scheme"),
        ("", "scheme"),
        ("smtp://", "no host"),
        ("smtp://u:p@:25", "no host"),
        ("smtp://h:abc", "bad port"),
        ("smtp://h:70000", "bad port"),
        ("smtp://h:0", "port 0"),
        ("smtp://h/path", "path"),
        ("smtp://h?tls=1", "unknown option"),
        ("smtp://h?starttls=maybe", "starttls"),
        ("smtps://h?starttls=1", "smtps"),
        ("smtp://[::1", "IPv6"),
    ],
)
def test_parse_smtp_url_rejects(url, fragment):
    with pytest.raises(UsageError) as exc:
        parse_smtp_url(url)
    assert fragment in exc.value.message
    assert "\n" not in exc.value.message
    assert exc.value.exit_code == EXIT_USAGE


def test_parse_error_does_not_quote_an_unencoded_password():
    # '/' in the password ends the authority: urlsplit sees port "pa", the start of the password.
    with pytest.raises(UsageError) as exc:
        parse_smtp_url("smtp://ops:pa/ss@h:25")
    assert "pa/ss" not in exc.value.message and "'pa'" not in exc.value.message
    assert "percent-encoded" in exc.value.message


# ---- mask_url ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, masked",
    [
        ("smtp://ops:hunter2@host:2525", "smtp://ops:***@host:2525"),
        ("smtps://ops@host", "smtps://ops@host"),
        ("smtp://host", "smtp://host"),
        ("https://u:p@w/x?a=1", "https://u:***@w/x?a=1"),
        ("https://h/hook?token=abc&x=1&sig=zz", "https://h/hook?token=***&x=1&sig=***"),
        ("https://h/x?email=a@b", "https://h/x?email=a@b"),
        ("smtp://u:p@ss/w?rd#@h", "smtp://u:***@h"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


hosts = st.from_regex(r"[a-z][a-z0-9.-]{0,15}(:[0-9]{1,5})?", fullmatch=True)
users = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-%", max_size=12)
passwords = st.text(min_size=1, max_size=30).filter(lambda p: p.strip())
tails = st.sampled_from(["", "/", "/hook", "/a/b?x=1", "?starttls=1", "/p?q=a:b"])


@given(
    scheme=st.sampled_from(["smtp", "smtps", "http", "https"]),
    user=users,
    password=passwords,
    host=hosts,
    tail=tails,
    encode=st.booleans(),
)
def test_mask_url_never_leaves_the_password(scheme, user, password, host, tail, encode):
    written = quote(password, safe="") if encode else password
    # (No '@' in host or tail: one there legitimately moves the boundary; covered above.)
    url = f"{scheme}://{user}:{written}@{host}{tail}"
    masked = mask_url(url)
    assert masked == f"{scheme}://{user}:***@{host}{tail}"
    # Meaningful only when the password is not also a piece of the visible parts.
    visible = f"{scheme}://{user}:***@{host}{tail}".replace("***", "")
    if written not in visible:  # (the mask's own asterisks are not the password: '*' is one)
        assert written not in masked.replace(":***@", ":@", 1)
