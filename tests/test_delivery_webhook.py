"""Report delivery by webhook (services/delivery.post_webhook) against a real local HTTP
server (a stdlib http.server in a thread), no mocks: exact bytes, credentials, statuses,
redirects not followed, refused and silent servers, HTTPS with a trusted certificate."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from fsar_tui.errors import EXIT_FAILED, EXIT_USAGE, UsageError
from fsar_tui.services.delivery import (
    DeliveryError,
    post_webhook,
)
from support.delivery import TIMEOUT, assert_clean, free_port, make_tls_cert, server_context


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory) -> tuple[Path, Path]:
    return make_tls_cert(tmp_path_factory)


# ---- webhook ---------------------------------------------------------------------


class Receiver:
    """A stdlib HTTP server in a thread that records POSTs and answers with `status`."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.reply = b'{"ok": true}'
        self.location: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                        "method": "POST",
                    }
                )
                self._answer()

            def do_GET(self):
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": b"", "method": "GET"}
                )
                self._answer()

            def _answer(self):
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.reply)))
                self.end_headers()
                self.wfile.write(receiver.reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch) -> Iterator[Receiver]:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    r = Receiver()
    yield r
    r.close()


def test_webhook_post_arrives_with_exact_bytes_and_content_type(receiver):
    payload = '{"period": "7d", "roi": [1, 2.5, "é"]}'.encode()
    status = post_webhook(f"{receiver.url}/hooks/report?x=1", payload, timeout=TIMEOUT)
    assert status == 200
    [req] = receiver.requests
    assert req["method"] == "POST" and req["path"] == "/hooks/report?x=1"
    assert req["body"] == payload
    assert req["headers"]["Content-Type"] == "application/json"
    assert "Authorization" not in req["headers"]


def test_webhook_custom_content_type_and_2xx_status(receiver):
    receiver.status, receiver.reply = 202, b""
    assert post_webhook(receiver.url, b"a,b\n1,2\n", content_type="text/csv", timeout=TIMEOUT) == 202
    assert receiver.requests[0]["headers"]["Content-Type"] == "text/csv"
    assert receiver.requests[0]["body"] == b"a,b\n1,2\n"


def test_webhook_credentials_in_url_become_basic_auth(receiver):
    import base64

    url = f"http://bot:{quote('p@ss:w', safe='')}@127.0.0.1:{receiver.port}/h"
    post_webhook(url, b"{}", timeout=TIMEOUT)
    auth = receiver.requests[0]["headers"]["Authorization"]
    assert auth == "Basic " + base64.b64encode(b"bot:p@ss:w").decode()


def test_webhook_500_names_the_status(receiver):
    receiver.status, receiver.reply = 500, b"database\nexploded"
    url = f"http://bot:tok3n@127.0.0.1:{receiver.port}/h"
    with pytest.raises(DeliveryError) as exc:
        post_webhook(url, b"{}", timeout=TIMEOUT)
    msg = exc.value.message
    assert msg == (
        f"webhook POST to http://bot:***@127.0.0.1:{receiver.port}/h failed: "
        "HTTP 500 Internal Server Error: database exploded"
    )
    assert_clean(msg, "tok3n")
    assert exc.value.exit_code == EXIT_FAILED


def test_webhook_redirect_is_not_followed(receiver):
    receiver.status, receiver.location = 302, f"{receiver.url}/elsewhere"
    with pytest.raises(DeliveryError) as exc:
        post_webhook(receiver.url + "/h", b"{}", timeout=TIMEOUT)
    assert "HTTP 302" in exc.value.message and "redirects are not followed" in exc.value.message
    assert [r["method"] for r in receiver.requests] == ["POST"]


def test_webhook_connection_refused(monkeypatch):
    monkeypatch.delenv("http_proxy", raising=False)
    port = free_port()
    with pytest.raises(DeliveryError) as exc:
        post_webhook(f"http://u:pw9@127.0.0.1:{port}/h?token=abc", b"{}", timeout=TIMEOUT)
    msg = exc.value.message
    assert msg == f"webhook POST to http://u:***@127.0.0.1:{port}/h?token=*** failed: Connection refused"
    assert_clean(msg, "pw9", "abc")


def test_webhook_silent_server_times_out(monkeypatch):
    monkeypatch.delenv("http_proxy", raising=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(DeliveryError) as exc:
            post_webhook(f"http://127.0.0.1:{port}/", b"{}", timeout=0.3)
    assert exc.value.message.endswith("failed: timed out after 0.3s")


def test_webhook_https_with_trusted_certificate(tls_cert, monkeypatch):
    cert, key = tls_cert
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.delenv("https_proxy", raising=False)
    r = Receiver(server_context(cert, key))
    try:
        assert post_webhook(f"{r.url}/h", b"secure", timeout=TIMEOUT) == 200
    finally:
        r.close()
    assert r.requests[0]["body"] == b"secure"


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("ftp://u:pw@h/x", "scheme"),
        ("smtp://h", "scheme"),
        ("h/x", "scheme"),
        ("http://", "no host"),
        ("http://h:port/x", "bad port"),
    ],
)
def test_webhook_usage_errors(url, fragment):
    with pytest.raises(UsageError) as exc:
        post_webhook(url, b"{}")
    assert fragment in exc.value.message
    assert_clean(exc.value.message, ":pw@")
    assert exc.value.exit_code == EXIT_USAGE
