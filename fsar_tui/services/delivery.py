"""Report delivery: mail a report over SMTP or POST it to a webhook.

This module owns the transport only: parsing and masking delivery URLs, building the
mail, talking SMTP/HTTP, and turning every failure into one exception with a one-line
message. What the report says, and when to deliver it, belong to the report code.
Synchronous and stdlib only (smtplib, email.message, urllib.request, ssl).

URL forms
    smtp://[user[:password]@]host[:port][?starttls=1]
        Plain SMTP, default port 25. `starttls=1` (also true/yes/on; 0/false/no/off)
        upgrades the connection with STARTTLS before any login.
    smtps://[user[:password]@]host[:port]
        SMTP over implicit TLS, default port 465.
    http(s)://[user:password@]host[:port]/path?query
        Webhook target; credentials in the URL become an HTTP Basic Authorization
        header. Redirects are not followed (a redirected POST silently loses its body).

User names and passwords are percent-decoded (`p%40ss` is the password `p@ss`). TLS
uses the system's default trust store and verifies the host name.

Errors
    UsageError (exit 2)      the URL or an argument is malformed: wrong scheme, no host,
                             bad port, unknown option.
    DeliveryError (exit 1)   the delivery was attempted and failed: connection refused,
                             timeout, TLS failure, SMTP error reply, refused recipients,
                             a non-2xx HTTP status.

Every message is a single line and names the target through `mask_url`, which
replaces the URL's password (and secret-looking query parameters) with ***. The
password itself is also scrubbed from any server or library text quoted in a message.
"""

from __future__ import annotations

import base64
import http.client
import re
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from fsar_tui.domain.uri_mask import mask_uri
from fsar_tui.errors import CheckFailed, UsageError
from fsar_tui.services.socket_deadline import Deadline

MASK = "***"
_Smtp = TypeVar("_Smtp", bound=smtplib.SMTP)

# Query parameters whose values are credentials (webhook tokens, signatures, keys).
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:password|passwd|pass|pwd|secret|token|access_token|api_key|apikey|key|sig|signature)=)[^&#]*"
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_EXCERPT = 200  # characters of an HTTP error body quoted in a message


class DeliveryError(CheckFailed):
    """A delivery was attempted and failed: exit 1, one-line message, no password."""


@dataclass(frozen=True)
class SmtpTarget:
    """A parsed SMTP URL. `password` is kept out of repr()."""

    host: str
    port: int
    implicit_tls: bool = False  # smtps://
    starttls: bool = False  # smtp://…?starttls=1
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def mask_url(url: str | None) -> str:
    """`url` with the password in `scheme://user:password@host` replaced by ***.

    Passwords pasted without percent-encoding may contain '@', '/', '?' or '#', so the
    user info runs to the LAST '@'; when that '@' really sits in the path or query the
    result is over-masked, which is the safe way to be wrong. Query parameters named
    like credentials (password=, token=, key=, sig=…) are masked too. Text without a
    scheme is returned unchanged.
    """
    if not url:
        return ""
    masked = mask_uri(url, secret_query=_SECRET_QUERY, mask=MASK)
    return url if masked is None else masked


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse `smtp://` / `smtps://` URLs (see the module docstring); UsageError otherwise."""
    shown = mask_url(url)
    parts = _split(url, shown, "SMTP")
    port = parts.port
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise UsageError(f"bad SMTP URL {shown}: the scheme must be smtp:// or smtps://")
    if not parts.hostname:
        raise UsageError(f"bad SMTP URL {shown}: no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise UsageError(f"bad SMTP URL {shown}: unexpected path or fragment")
    if port == 0:
        raise UsageError(f"bad SMTP URL {shown}: port 0")
    starttls = False
    for key, value in _query_pairs(parts.query):
        if key.lower() != "starttls":
            raise UsageError(f"bad SMTP URL {shown}: unknown option {key!r} (only starttls=1)")
        if value.lower() in _TRUE:
            starttls = True
        elif value.lower() in _FALSE:
            starttls = False
        else:
            raise UsageError(f"bad SMTP URL {shown}: starttls={value!r} (use 1 or 0)")
    if starttls and scheme == "smtps":
        raise UsageError(f"bad SMTP URL {shown}: smtps:// is already TLS; starttls applies to smtp:// only")
    return SmtpTarget(
        host=parts.hostname,
        port=port or (465 if scheme == "smtps" else 25),
        implicit_tls=scheme == "smtps",
        starttls=starttls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def build_message(
    sender: str, recipients: list[str], subject: str, body: str, *, attachment: tuple[str, bytes, str] | None = None
) -> EmailMessage:
    """The mail `send_mail` sends: UTF-8 text/plain body, optional attachment."""
    msg = EmailMessage()
    try:
        msg["From"] = sender
        msg["To"] = ", ".join(recipients)
        msg["Subject"] = subject
    except ValueError as e:  # a header with CR/LF in it
        raise UsageError(f"bad mail header: {_one_line(str(e))}") from None
    msg.set_content(body, subtype="plain", charset="utf-8")
    if attachment is not None:
        filename, data, mimetype = attachment
        maintype, _, subtype = mimetype.partition("/")
        if not maintype or not subtype:
            raise UsageError(f"bad attachment MIME type {mimetype!r} (expected type/subtype)")
        msg.add_attachment(bytes(data), maintype=maintype, subtype=subtype, filename=filename)
    return msg


def send_mail(
    url: str,
    sender: str,
    recipients: list[str],
    subject: str,
    body: str,
    *,
    attachment: tuple[str, bytes, str] | None = None,
    timeout: float = 15,
    deadline_s: float | None = None,
) -> None:
    """Mail `body` (and the optional (filename, data, mimetype) attachment) via the SMTP URL.
    `timeout` bounds each network operation, `deadline_s` (default 3 × timeout) the whole
    exchange (socket_deadline.py).

    UsageError for a malformed URL or missing sender/recipients; DeliveryError when the
    server cannot be reached, TLS or login fails, the server answers with an error, or
    any recipient is refused (the message names them; the others did get the mail).
    """
    target = parse_smtp_url(url)
    recipients = [r.strip() for r in recipients if r and r.strip()]
    if not recipients:
        raise UsageError("no mail recipient (--to ADDR)")
    if not sender or not sender.strip():
        raise UsageError("no mail sender (--from ADDR)")
    msg = build_message(sender.strip(), recipients, subject, body, attachment=attachment)
    shown = mask_url(url)
    secrets = [s for s in (target.password,) if s]
    limit = 3 * timeout if deadline_s is None else deadline_s
    with Deadline(limit) as deadline:
        try:
            refused = _smtp_send(_smtp_connect(target, timeout, deadline), msg, target, sender.strip(), recipients)
        except smtplib.SMTPRecipientsRefused as e:
            raise DeliveryError(
                f"SMTP delivery to {shown} failed: every recipient refused: {_scrub(_refusals(e.recipients), *secrets)}"
            ) from None
        except (OSError, smtplib.SMTPException, ssl.SSLError, UnicodeError, ValueError) as e:
            reason = _too_slow(limit) if deadline.expired else _scrub(_smtp_reason(e, timeout), *secrets)
            raise DeliveryError(f"SMTP delivery to {shown} failed: {reason}") from None
    if refused:
        delivered = len(recipients) - len(refused)
        raise DeliveryError(
            f"SMTP delivery to {shown} failed for {len(refused)} of {len(recipients)} recipients "
            f"(the other {delivered} got it): refused {_scrub(_refusals(refused), *secrets)}"
        )


def post_webhook(
    url: str,
    payload: bytes,
    *,
    content_type: str = "application/json",
    timeout: float = 15,
    deadline_s: float | None = None,
) -> int:
    """POST `payload` to an http(s) URL and return the (2xx) HTTP status.

    `timeout` bounds each network operation, `deadline_s` (default 3 × timeout) the whole
    exchange (socket_deadline.py: a receiver dripping its answer is cut off).
    UsageError for a non-http(s) or malformed URL; DeliveryError for any network or TLS
    error, a timeout, a redirect, or a status outside 2xx.
    """
    shown = mask_url(url)
    parts = _split(url, shown, "webhook")
    if parts.scheme.lower() not in ("http", "https"):
        raise UsageError(f"bad webhook URL {shown}: the scheme must be http:// or https://")
    if not parts.hostname:
        raise UsageError(f"bad webhook URL {shown}: no host")
    headers = {"Content-Type": content_type, "User-Agent": "fsar-tui"}
    secrets: list[str] = []
    target = url.strip()
    if parts.username is not None or parts.password is not None:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        secrets = [s for s in (password, parts.password) if s]
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        netloc = parts.netloc.rpartition("@")[2]
        target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    request = urllib.request.Request(target, data=bytes(payload), headers=headers, method="POST")
    limit = 3 * timeout if deadline_s is None else deadline_s
    with Deadline(limit) as deadline:
        opener = urllib.request.build_opener(_NoRedirect(), *_watched_handlers(deadline, ssl.create_default_context()))
        try:
            with opener.open(request, timeout=timeout) as response:
                # The status is all a delivery needs: the body is not read (a receiver answering
                # with gigabytes, or one byte a second, held the pass for as long as it liked).
                status = response.status
        except urllib.error.HTTPError as e:
            reason = f"HTTP {e.code} {e.reason}".rstrip()
            if 300 <= e.code < 400:
                reason += " (redirects are not followed)"
            excerpt = _body_excerpt(e)
            if excerpt:
                reason += f": {excerpt}"
            raise DeliveryError(f"webhook POST to {shown} failed: {_scrub(reason, *secrets)}") from None
        except urllib.error.URLError as e:
            if deadline.expired:
                raise DeliveryError(f"webhook POST to {shown} failed: {_too_slow(limit)}") from None
            reason = _net_reason(e.reason, timeout) if isinstance(e.reason, BaseException) else str(e.reason)
            raise DeliveryError(f"webhook POST to {shown} failed: {_scrub(reason, *secrets)}") from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            reason = _too_slow(limit) if deadline.expired else _scrub(_net_reason(e, timeout), *secrets)
            raise DeliveryError(f"webhook POST to {shown} failed: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook POST to {shown} failed: HTTP {status}")
    return status


# ---- internals -------------------------------------------------------------------


def _smtp_connect(target: SmtpTarget, timeout: float, deadline: Deadline) -> smtplib.SMTP:
    """A client connected to `target` (greeting read), its socket under `deadline`."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if target.implicit_tls:
        client = _watched_smtp(smtplib.SMTP_SSL, deadline)(timeout=timeout, context=context)
    else:
        client = _watched_smtp(smtplib.SMTP, deadline)(timeout=timeout)
    client._host = target.host  # type: ignore[attr-defined]  # what __init__(host) sets: STARTTLS checks it
    try:
        client.connect(target.host, target.port)
    except BaseException:
        client.close()
        raise
    return client


def smtp_hello(target: SmtpTarget, timeout: float, deadline_s: float | None = None) -> None:
    """Connect, EHLO, QUIT: whether the server answers (services/notify.preflight). The
    library's exceptions pass through; TimeoutError when the whole exchange took too long."""
    with Deadline(3 * timeout if deadline_s is None else deadline_s) as deadline:
        try:
            client = _smtp_connect(target, timeout, deadline)
            try:
                client.ehlo_or_helo_if_needed()
            finally:
                try:
                    client.quit()
                except (OSError, smtplib.SMTPException):
                    client.close()
        except (OSError, smtplib.SMTPException):
            if deadline.expired:
                raise TimeoutError from None
            raise


def _smtp_send(client: smtplib.SMTP, msg: EmailMessage, target: SmtpTarget, sender: str, recipients: list[str]) -> dict:
    """EHLO, optionally STARTTLS and log in, send; returns the refused recipients."""
    context = ssl.create_default_context()
    try:
        client.ehlo_or_helo_if_needed()
        if target.starttls:
            client.starttls(context=context)
            client.ehlo()
        if target.username is not None:
            _login(client, target.username, target.password or "")
        return client.send_message(msg, from_addr=sender, to_addrs=recipients)
    finally:
        # The mail is sent (or not) by now; an odd reply to QUIT changes nothing.
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib's login, except that non-ASCII credentials go as UTF-8 AUTH PLAIN (RFC 4616).

    smtplib encodes every AUTH exchange as ASCII and would fail before asking the server.
    """
    if (user + password).isascii():
        client.login(user, password)
        return
    if not client.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    if "PLAIN" not in client.esmtp_features["auth"].upper().split():
        raise smtplib.SMTPException("non-ASCII credentials need AUTH PLAIN, which the server does not offer")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, reply = client.docmd("AUTH", f"PLAIN {token}")
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, reply)


def _watched_smtp(base: type[_Smtp], deadline: Deadline) -> type[_Smtp]:
    class Watched(base):  # type: ignore[valid-type,misc]
        def _get_socket(self, host, port, timeout):
            deadline.watch(lambda: self.sock)  # the current one: STARTTLS replaces it
            return super()._get_socket(host, port, timeout)

    return Watched


def _watched_handlers(deadline: Deadline, context: ssl.SSLContext) -> list[urllib.request.BaseHandler]:
    """urllib's HTTP and HTTPS handlers whose connections' sockets are under `deadline`."""

    def watched(base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        class Watched(base):  # type: ignore[valid-type,misc]
            def connect(self) -> None:
                deadline.watch(lambda: self.sock)
                super().connect()
                # urllib lets go of conn.sock once the response has it (an error's body
                # is read after): the socket itself is watched too.
                sock = self.sock
                deadline.watch(lambda: sock)

        return Watched

    plain, tls = watched(http.client.HTTPConnection), watched(http.client.HTTPSConnection)

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(plain, req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(tls, req, context=self._context, check_hostname=self._check_hostname)  # type: ignore[attr-defined]

    return [HTTP(), HTTPS(context=context)]


def _too_slow(limit: float) -> str:
    return f"no complete answer within {limit:g}s (the server answered too slowly)"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib turns a redirected POST into a GET without the body."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _split(url: str, shown: str, what: str):
    """urlsplit with its port checked; UsageError (quoting no part of the URL) when malformed.

    The library's own ValueError text is not quoted: for a password holding an
    unencoded '/', the "port" it complains about is the start of the password.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        raise UsageError(f"bad {what} URL {shown}: malformed host (IPv6 addresses go in [brackets])") from None
    try:
        _ = parts.port  # the property parses the port and raises on a bad one
    except ValueError:
        hint = " (a password containing / ? or # must be percent-encoded)" if "@" in url else ""
        raise UsageError(f"bad {what} URL {shown}: bad port, expected a number 1-65535{hint}") from None
    return parts


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if not eq:
            value = "1"  # a bare ?starttls means on
        pairs.append((unquote(key), unquote(value)))
    return pairs


def _refusals(refused: dict) -> str:
    items = []
    for addr, reply in refused.items():
        try:
            code, text = reply
            items.append(f"{addr} ({code} {_decode(text)})")
        except (TypeError, ValueError):
            items.append(f"{addr} ({reply})")
    return ", ".join(items)


def _smtp_reason(e: BaseException, timeout: float) -> str:
    if isinstance(e, smtplib.SMTPAuthenticationError):
        return f"login refused: {e.smtp_code} {_decode(e.smtp_error)}"
    if isinstance(e, smtplib.SMTPSenderRefused):
        return f"sender {e.sender} refused: {e.smtp_code} {_decode(e.smtp_error)}"
    if isinstance(e, smtplib.SMTPResponseException):
        return f"{e.smtp_code} {_decode(e.smtp_error)}"
    if isinstance(e, smtplib.SMTPNotSupportedError):
        return f"server does not support it: {e}"
    if isinstance(e, smtplib.SMTPServerDisconnected) and isinstance(e.__context__, TimeoutError):
        return f"timed out after {timeout:g}s"  # smtplib reports a read timeout as a disconnect
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return f"server disconnected: {e}" if str(e) else "server disconnected"
    return _net_reason(e, timeout)


def _net_reason(e: BaseException, timeout: float) -> str:
    if isinstance(e, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout:g}s"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {e.verify_message or e.reason}"
    if isinstance(e, ssl.SSLError):
        return f"TLS error: {e.reason or e}"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve host: {e.strerror or e}"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _body_excerpt(e: urllib.error.HTTPError) -> str:
    try:
        data = e.read(_EXCERPT + 1) if e.fp is not None else b""
    except (OSError, http.client.HTTPException, ValueError):
        return ""
    text = _one_line(data.decode("utf-8", "replace"))
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _scrub(text: str, *secrets: str | None) -> str:
    """`text` on one line with every secret (raw and percent-decoded) replaced by ***."""
    text = _one_line(text)
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, unquote(secret), _one_line(secret)}:
            if form and form.strip():
                text = text.replace(form, MASK)
    return text
