"""A receiver that drips its answer — one byte inside every socket timeout — no longer
holds a delivery (and the audit pass sending it) for good: services/socket_deadline.py
cuts the whole exchange at its deadline. Real sockets: a TCP server in a thread that
dribbles an HTTP status line, an HTTP error body, or an SMTP greeting.

Each test runs the send in a thread and only checks that it came back, with the error
that names the deadline — the bound on the join is a liveness check (without the
deadline the send never returns), not a speed goal."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from fsar_tui.domain.notify_config import NotifyConfig
from fsar_tui.errors import UsageError
from fsar_tui.services import delivery
from fsar_tui.services import notify as notifier
from fsar_tui.services.delivery import DeliveryError
from fsar_tui.services.socket_deadline import Deadline

DRIP_S = 0.5  # well inside the 3 s socket timeout the sends use here (1 s: preflight, the pass)
LIVENESS_S = 60


class Dripper:
    """Accepts connections; on each, reads what arrives (for HTTP, the request) and then
    sends `head` at once and `drip` one byte every DRIP_S, for ever, until stopped."""

    def __init__(self, head: bytes, drip: bytes, *, read_first: bool) -> None:
        self.head, self.drip, self.read_first = head, drip, read_first
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.5)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.read_first:
                    conn.settimeout(5)
                    conn.recv(65536)
                conn.sendall(self.head)
                i = 0
                while not self.stop.wait(DRIP_S):
                    conn.sendall(self.drip[i % len(self.drip) : i % len(self.drip) + 1])
                    i += 1
            except OSError:
                return  # the client hung up: what the deadline is for


@pytest.fixture
def dripper() -> Iterator:
    made: list[Dripper] = []

    def make(head: bytes, drip: bytes, *, read_first: bool = True) -> Dripper:
        made.append(Dripper(head, drip, read_first=read_first))
        return made[-1]

    yield make
    for d in made:
        d.stop.set()
        d.listener.close()


def returns(fn) -> BaseException | None:
    """Run `fn` in a thread; the exception it ended with (None: it returned)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(LIVENESS_S)
    assert not thread.is_alive(), "the send is still waiting on a dripping peer"
    return outcome[0]


def test_a_webhook_dripping_its_headers_is_cut_at_the_deadline(dripper):
    peer = dripper(b"", b"HTTP/1.1 200 OK\r\nX-Drip: " + b"a" * 10_000)
    error = returns(lambda: delivery.post_webhook(f"http://127.0.0.1:{peer.port}/hook", b"{}", timeout=3, deadline_s=2))
    assert isinstance(error, DeliveryError) and "no complete answer within 2s" in error.message, error


def test_a_webhook_error_dripping_its_body_is_cut_and_keeps_its_status(dripper):
    peer = dripper(b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n", b"x")
    error = returns(lambda: delivery.post_webhook(f"http://127.0.0.1:{peer.port}/hook", b"{}", timeout=3, deadline_s=2))
    assert isinstance(error, DeliveryError) and "HTTP 500" in error.message, error  # 200 bytes: 100 s of drip


def test_an_smtp_server_dripping_its_greeting_is_cut_at_the_deadline(dripper):
    peer = dripper(b"", b"220-" + b"w" * 5000, read_first=False)
    error = returns(
        lambda: delivery.send_mail(
            f"smtp://127.0.0.1:{peer.port}", "a@example.com", ["b@example.com"], "s", "b", timeout=3, deadline_s=2
        )
    )
    assert isinstance(error, DeliveryError) and "no complete answer within 2s" in error.message, error


def test_preflight_against_a_dripping_smtp_server_is_one_usage_error(dripper, monkeypatch):
    peer = dripper(b"", b"220-" + b"w" * 5000, read_first=False)
    cfg = NotifyConfig(smtp=f"smtp://u:SECRET@127.0.0.1:{peer.port}", to=("b@example.com",))
    error = returns(lambda: notifier.preflight(cfg, timeout=1))
    assert isinstance(error, UsageError) and "no complete answer within 3s" in error.message, error
    assert "SECRET" not in error.message


def test_the_pass_records_a_dripping_receiver_as_a_failed_attempt(db_dsn, dripper, monkeypatch):
    from fsar_tui.services import audit_pass
    from support.sql import q
    from test_notify import PROPOSAL, attempts, block

    peer = dripper(b"", b"HTTP/1.1 200 OK\r\nX-Drip: " + b"a" * 10_000)
    monkeypatch.setattr(notifier, "WEBHOOK_TIMEOUT_S", 1)  # deadline 3 s
    block(db_dsn)
    cfg = NotifyConfig(webhooks=(f"http://127.0.0.1:{peer.port}/hook",))
    result: list = []
    assert returns(lambda: result.append(audit_pass.scheduled_check(db_dsn, read_only=False, notify=cfg))) is None
    assert result[0].notify_failed >= 1
    assert attempts(db_dsn, f"proposal:{PROPOSAL}") == [(1, "failed", None, True)]
    (error,) = q(db_dsn, "SELECT last_error FROM notify_deliveries")[0]
    assert "no complete answer within 3s" in error


def test_a_deadline_that_expired_before_the_socket_existed_shuts_it_at_once():
    a, b = socket.socketpair()
    with a, b, Deadline(0.01) as deadline:
        threading.Event().wait(0.2)
        assert deadline.expired
        deadline.watch(lambda: a)
        assert a.recv(10) == b""  # shut down: end of stream, not a wait
