"""The Stripe webhook receiver over real HTTP and a real database: signed events land in the
ledger, bad signatures and bad events are refused with a reason and store nothing,
duplicates are answered 200, wrong paths, methods and sizes are refused, the log says one
line per request without secrets, and the real `fsar-tui webhook` stops cleanly on SIGTERM."""

from __future__ import annotations

import http.client
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from fsar_tui.services.webhook import MAX_BODY_BYTES, make_server
from support.sql import q
from support.stripe_events import SECRET, charge, sign

PATH = "/stripe/webhook"


class Log(io.StringIO):
    """A log the server threads can write to while the test reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def lines(self) -> list[str]:
        with self.lock:
            return self.getvalue().splitlines()


@pytest.fixture
def webhook(db_dsn: str) -> Iterator[tuple[str, Log]]:
    """A receiver on a free loopback port, serving in a thread: (base URL, its log)."""
    log = Log()
    server = make_server(db_dsn, "127.0.0.1", 0, PATH, SECRET, log=log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def post(url: str, body: str | bytes, signature: str | None = None, method: str = "POST") -> tuple[int, dict]:
    data = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": "application/json", **({"Stripe-Signature": signature} if signature else {})}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def signed(ev: dict, secret: str = SECRET, timestamp: int | None = None) -> tuple[str, str]:
    payload = json.dumps(ev)
    return payload, sign(payload, secret, timestamp)


def test_signed_event_lands_and_a_duplicate_is_answered_200(webhook, db_dsn):
    url, log = webhook
    body, sig = signed(charge("evt_w1", "ch_w1", 4200, "gbp"))
    assert post(url + PATH, body, sig) == (200, {"result": "accepted"})
    assert q(db_dsn, "SELECT kind, amount_minor, currency, external_id FROM ledger_entries") == [
        ("revenue", 4200, "GBP", "evt_w1")
    ]
    assert post(url + PATH, body, sig) == (200, {"result": "duplicate"})
    body2, sig2 = signed({**charge("evt_w2", "x"), "type": "customer.created"})
    assert post(url + PATH, body2, sig2) == (200, {"result": "skipped"})
    assert q(db_dsn, "SELECT id, outcome FROM stripe_events ORDER BY id") == [
        ("evt_w1", "applied"),
        ("evt_w2", "skipped"),
    ]
    assert len(q(db_dsn, "SELECT * FROM ledger_entries")) == 1
    lines = log.lines()
    assert len(lines) == 3
    assert " POST /stripe/webhook 200 accepted evt_w1 charge.succeeded " in lines[0]
    assert " 200 duplicate evt_w1 " in lines[1] and " 200 skipped evt_w2 customer.created " in lines[2]
    assert all(SECRET not in line and "v1=" not in line for line in lines)


def test_bad_signatures_and_bad_events_are_400_and_store_nothing(webhook, db_dsn):
    url, log = webhook
    body, sig = signed(charge("evt_b1", "ch_b1"))
    cases = [
        (
            body.replace("1200", "9900"),
            sig,
            "bad Stripe signature: No signatures found matching the expected signature",
        ),
        (body, sign(body, "whsec_wrong"), "bad Stripe signature: No signatures found matching the expected signature"),
        (body, None, "missing Stripe signature"),
        (body, sign(body, timestamp=int(time.time()) - 3600), "bad Stripe signature: Timestamp outside the tolerance"),
        (json.dumps(charge("evt_b2", "ch_b2", currency="xyz")), None, "unknown currency 'xyz'"),
        ('{"id": ', None, "malformed JSON"),
    ]
    for payload, signature, reason in cases:
        if signature is None and not reason.startswith("missing"):
            signature = sign(payload)
        status, reply = post(url + PATH, payload, signature)
        assert status == 400 and reply["error"].startswith(reason), (reason, reply)
    assert q(db_dsn, "SELECT count(*) FROM stripe_events")[0][0] == 0
    assert q(db_dsn, "SELECT count(*) FROM ledger_entries")[0][0] == 0
    assert len(log.lines()) == len(cases) and all(" 400 rejected: " in line for line in log.lines())


def test_wrong_path_method_and_size(webhook):
    url, log = webhook
    body, sig = signed(charge("evt_p1", "ch_p1"))
    assert post(url + "/elsewhere", body, sig)[0] == 404
    assert post(url + PATH, b"", method="GET")[0] == 405
    assert post(url + PATH, body, sig, method="PUT")[0] == 405
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", PATH)
    conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    conn.endheaders()  # the body is never sent: the receiver answers from the header alone
    response = conn.getresponse()
    assert response.status == 413 and "larger than" in json.loads(response.read())["error"]
    conn.close()
    statuses = [line.split()[5] for line in log.lines()]
    assert statuses == ["404", "405", "405", "413"]


def test_an_unreachable_database_is_503():
    server = make_server("host=127.0.0.1 port=1 dbname=x connect_timeout=2", "127.0.0.1", 0, PATH, SECRET, log=Log())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        body, sig = signed(charge("evt_d1", "ch_d1"))
        assert post(f"http://127.0.0.1:{server.server_address[1]}{PATH}", body, sig) == (
            503,
            {"error": "database unavailable"},
        )
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the webhook never listened")


def test_the_real_command_serves_and_stops_on_sigterm(db_dsn, isolated_env, tmp_path):
    port = _free_port()
    env = {**isolated_env, "FSAR_STRIPE_WEBHOOK_SECRET": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsar_tui", "webhook", "--dsn", db_dsn, "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_port(port, proc)
        body, sig = signed(charge("evt_cli", "ch_cli", 3100, "eur"))
        assert post(f"http://127.0.0.1:{port}{PATH}", body, sig) == (200, {"result": "accepted"})
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"listening on http://127.0.0.1:{port}{PATH}; signatures verified" in err
    assert " POST /stripe/webhook 200 accepted evt_cli charge.succeeded " in err and "stopped" in err
    assert SECRET not in out + err and "Traceback" not in err
    assert q(db_dsn, "SELECT external_id, amount_minor, currency FROM ledger_entries") == [("evt_cli", 3100, "EUR")]
