"""A TCP proxy in the test process whose path to the server can be cut and restored: a
server restart as its clients see it, without restarting the shared server.

`CutProxy(host, port)` forwards 127.0.0.1:<free port> to host:port, one pair of threads
per connection. `cut()` closes every connection through it (the clients read EOF, as
when the server goes down) and stops listening (new connections are refused);
`restore()` listens on the same port again and forwards as before.
"""

from __future__ import annotations

import socket
import threading

from support.pgcluster import free_port


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv() or accept() on it
    except OSError:
        pass
    sock.close()


class CutProxy:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = free_port()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.restore()

    def restore(self) -> None:
        with self.lock:
            if self.listener is None:
                self.listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: the same port
                threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            pairs, self.pairs = self.pairs, []
        if listener is not None:
            _close(listener)
        for pair in pairs:
            for sock in pair:
                _close(sock)

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                if self.listener is not listener:  # cut meanwhile
                    client.close()
                    server.close()
                    return
                self.pairs.append((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):  # one side closed: so does the other
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
