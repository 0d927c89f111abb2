"""Dropping a test process's finished databases on a thread of its own (tests/conftest.py).

`DROP DATABASE` makes PostgreSQL checkpoint before it removes the files: every dirty
buffer of every database on the server is written and fsynced (the shared CI server has
fsync on). A test's teardown waited for that — a tenth of a second on a quiet server,
seconds while other tests or benchmarks write — once per test, ~1,100 times a run.
`Reaper.drop_later` hands the name to a thread and returns: the next test runs while its
predecessors' databases are dropped, and drops that come back to back find little left
to flush. `close()` waits for the last drop; conftest's template_db then removes
whatever is left under the process's prefix, as before.

A failed drop is not the test's failure: its database is left for that sweep.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class Reaper:
    def __init__(self, drop: Callable[[str], None]) -> None:
        self._drop = drop
        self._names: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def drop_later(self, name: str) -> None:
        if self._thread is None:  # started by the first drop: a process that makes no database has no thread
            self._thread = threading.Thread(target=self._run, name="fsar-test-db-reaper", daemon=True)
            self._thread.start()
        self._names.put(name)

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                self._drop(name)
            except Exception:  # left for the session's sweep, which fails loudly
                pass

    def close(self) -> None:
        """Wait until every database handed over has been dropped (or failed to be)."""
        if self._thread is not None:
            self._names.put(None)
            self._thread.join()
            self._thread = None
