"""Run a threaded HTTP server until SIGINT or SIGTERM: the long-running commands that
listen (`fsar-tui metrics`, `fsar-tui stripe webhook`) share this, so each stops the
same way — the signal sets an event, the server shuts down (requests in flight finish),
its socket closes, the caller's cleanup runs, and the previous signal handlers are back.
(`fsar-tui serve` runs an asyncio server and stops through its event loop instead.)
"""

from __future__ import annotations

import signal
import socketserver
import threading
from collections.abc import Callable

POLL_S = 0.5  # how often the main thread looks at the stop event (signals land there)


def serve_until_signal(
    server: socketserver.BaseServer, *, name: str, started: Callable[[], None], cleanup: Callable[[], None]
) -> None:
    """Serve on a worker thread; `started()` once it runs (the start line), `cleanup()`
    after the server has stopped, whatever ended it."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    worker.start()
    try:
        started()
        while not stop.wait(POLL_S):
            pass
    finally:
        server.shutdown()
        server.server_close()
        worker.join()
        try:
            cleanup()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
