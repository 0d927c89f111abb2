"""json/jsonb on a connection, for work over documents an agent wrote (hostile size and
shape): `bounded_documents(conn)` makes the block's reads parse them with
domain/json_text.loads_bounded — a document nested too deep for Python's parser (which
PostgreSQL accepts: 3,000 levels), one it refuses, or one over `max_chars`, comes back as
a JsonText instead of raising RecursionError and ending a whole batch (issue 15:
`anonymize --dry-run` died on one such row, so one row blocked the retention job) — and
its writes store a JsonText as the document text it holds. The connection's own loaders
and dumpers are put back at the end of the block.

Used by services/anonymize.py (every scrubbed column) and the sensitive-results gate
(services/gates.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from psycopg import Connection
from psycopg.adapt import PyFormat
from psycopg.pq import Format
from psycopg.types.json import Json, Jsonb, set_json_dumps, set_json_loads

from fsar_tui.domain.json_text import JsonText, dumps_any_depth, loads_bounded

_JSON_TYPES = ("json", "jsonb")


def _dumps(value: Any) -> str:
    """A JsonText as its text; anything else as json.dumps (psycopg's default) would, at any depth."""
    if isinstance(value, JsonText):
        return value.text
    try:
        return json.dumps(value)
    except RecursionError:
        return dumps_any_depth(value)


@contextmanager
def bounded_documents(
    conn: Connection[Any], *, max_depth: int = 64, max_chars: int | None = None
) -> Iterator[Connection[Any]]:
    """For the block: json/jsonb read through loads_bounded(max_depth, max_chars), and a
    JsonText written as its text (see the module docstring)."""
    adapters = conn.adapters
    loaders = []
    for name in _JSON_TYPES:
        info = adapters.types.get(name)
        if info is None:
            continue
        for fmt in (Format.TEXT, Format.BINARY):
            loaders.append((info.oid, adapters.get_loader(info.oid, fmt)))
    dumpers = [(wrapper, adapters.get_dumper(wrapper, fmt)) for wrapper in (Json, Jsonb) for fmt in (PyFormat.TEXT,
               PyFormat.BINARY)]  # fmt: skip
    set_json_loads(partial(_loads, max_depth=max_depth, max_chars=max_chars), conn)
    set_json_dumps(_dumps, conn)
    try:
        yield conn
    finally:
        for oid, loader in loaders:
            if loader is not None:
                adapters.register_loader(oid, loader)
        for wrapper, dumper in dumpers:
            adapters.register_dumper(wrapper, dumper)


def _loads(data: str | bytes, *, max_depth: int, max_chars: int | None) -> Any:
    return loads_bounded(data, max_depth=max_depth, max_chars=max_chars)
