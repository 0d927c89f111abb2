"""A tiny TCP proxy in the test process that can turn into a black hole.

`BlackHoleProxy(host, port)` forwards 127.0.0.1:<free port> to host:port, one pair of
threads per connection. `black_hole()` then makes the path silent the way a dead
network is silent: no RST, no FIN, nothing. Only stopping forwarding would not do it:
the proxy's kernel would still acknowledge what the client sends and answer its
keepalive probes, so the client's TCP would never notice. So every client-facing socket
(and the listening one, for new connections) gets a classic BPF socket filter that
drops every incoming segment before TCP sees it (SO_ATTACH_FILTER, unprivileged):
nothing the client sends is acknowledged, keepalive probes go unanswered, new SYNs are
ignored — from the client, a black hole.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import threading

from support.pgcluster import free_port

SO_ATTACH_FILTER = 26  # Linux
_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)  # BPF_RET | BPF_K, 0: accept 0 bytes — drop


def drop_everything(sock: socket.socket) -> None:
    """Attach a socket filter that drops every incoming packet of `sock`."""
    program = ctypes.create_string_buffer(_DROP_ALL)
    fprog = struct.pack("HL", 1, ctypes.addressof(program))  # struct sock_fprog {len; *filter}
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)  # the kernel copies the program


class BlackHoleProxy:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.silent = threading.Event()
        self.closed = threading.Event()
        self.clients: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.clients.append(client)
                if self.silent.is_set():
                    drop_everything(client)
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.silent.is_set():
                    continue  # swallowed: a black hole answers nothing
                dst.sendall(data)
        except OSError:
            pass
        if not self.silent.is_set():  # an ordinary close passes on; a black hole says nothing
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def black_hole(self) -> None:
        """From now on, every packet from a client is dropped and nothing is forwarded."""
        with self.lock:
            self.silent.set()
            drop_everything(self.listener)
            for client in self.clients:
                drop_everything(client)

    def close(self) -> None:
        self.closed.set()
        with self.lock:
            for s in [self.listener, *self.clients]:
                try:
                    s.close()
                except OSError:
                    pass
