"""A wall-clock deadline over a blocking socket exchange (services/delivery.py).

A socket timeout bounds each read, not the exchange: a peer that sends one byte just
inside every timeout — an HTTP status line and headers, an SMTP greeting or reply,
dripped — holds the caller for as long as it likes (the audit pass, here: a webhook
receiver dripping its headers held it for good). `Deadline` shuts the watched sockets
down when the exchange's time is up, from a timer thread: the blocked read returns at
once (end of stream or an error), the caller's library raises, and `expired` tells the
caller why. The base class's shutdown is called on the socket's descriptor, so a TLS
socket is cut the same way (its TLS layer is not touched from the timer's thread).

Sockets are watched through getters (`lambda: conn.sock`): a connection that upgrades
to TLS replaces its socket, and the getter finds the current one when the time is up.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType

SocketGetter = Callable[[], socket.socket | None]


class Deadline:
    """`with Deadline(seconds) as d:` … `d.watch(lambda: conn.sock)` … `d.expired`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._getters: list[SocketGetter] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, getter: SocketGetter) -> None:
        """Shut this socket down when the time is up (at once if it already is)."""
        with self._lock:
            self._getters.append(getter)
            late = self.expired
        if late:
            _shut(getter())

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            getters = list(self._getters)
        for getter in getters:
            _shut(getter())

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):  # closed already, or never connected
        pass
