"""Retention archives, pure: the manifest written beside each archived partition, and
its verification against the bytes of the archive file.

An archive file is one partition's rows as PostgreSQL's COPY text format (one line per
row, newline-terminated; a newline inside a value is written as `\\n`, so counting
newline bytes counts rows), gzip-compressed. Its manifest (`<file>.manifest.json`) says
what it holds and how to check it:

    {"format": "fsar-tui retention archive", "version": 1,
     "table": "task_events", "partition": "task_events_20250101",
     "lower": "2025-01-01T00:00:00+00:00", "upper": "2025-01-02T00:00:00+00:00",
     "bound": "time", "file": "task_events_20250101.copy.gz", "copy_format": "text",
     "rows": 81234, "bytes_compressed": …, "bytes_uncompressed": …,
     "sha256_compressed": "…", "sha256_uncompressed": "…",
     "columns": [["id", "bigint"], …], "schema_revision": "0030_retention",
     "created_at": "…", "fsar_tui_version": "0.1.0", "policy": {"task_events": "14d", …}}

`verify` streams the file's bytes through sha256, gzip decompression, a second sha256
and a newline count, and compares all four with the manifest: a flipped byte anywhere
fails it. No I/O here: the caller hands over the file's chunks.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from fsar_tui.domain.retention import TABLES, Bound

FORMAT = "fsar-tui retention archive"
VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
ARCHIVE_SUFFIX = ".copy.gz"
_HEX64 = frozenset("0123456789abcdef")


class ManifestError(ValueError):
    """A manifest that cannot be read or trusted: one line saying why."""


@dataclass(frozen=True)
class Manifest:
    table: str
    partition: str
    lower: Bound
    upper: Bound
    file: str
    rows: int
    bytes_compressed: int
    bytes_uncompressed: int
    sha256_compressed: str
    sha256_uncompressed: str
    columns: list[tuple[str, str]]
    schema_revision: str | None
    created_at: str
    fsar_tui_version: str
    policy: dict[str, str | None] = field(default_factory=dict)
    copy_format: str = "text"

    @property
    def bound(self) -> str:
        return "time" if self.table == "task_events" else "id"

    def to_json(self) -> str:
        doc = {"format": FORMAT, "version": VERSION, **asdict(self), "bound": self.bound}
        doc["lower"], doc["upper"] = _bound_out(self.lower), _bound_out(self.upper)
        doc["columns"] = [list(c) for c in self.columns]
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _bound_out(bound: Bound) -> int | str | None:
    return bound.isoformat() if isinstance(bound, datetime) else bound


def _bound_in(value: object, kind: str, what: str) -> Bound:
    if value is None:
        return None
    if kind == "time":
        if not isinstance(value, str):
            raise ManifestError(f"{what}: expected an ISO instant or null")
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise ManifestError(f"{what}: not an ISO instant: {value[:40]!r}") from None
        if at.tzinfo is None:
            raise ManifestError(f"{what}: an instant without a time zone")
        return at
    if not isinstance(value, int) or isinstance(value, bool):
        raise ManifestError(f"{what}: expected a whole number or null")
    return value


def _field(doc: dict[str, object], key: str, kind: type | tuple[type, ...]) -> object:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ManifestError(f"manifest field {key!r} is missing or not a {getattr(kind, '__name__', kind)}")
    return value


def _count(doc: dict[str, object], key: str) -> int:
    value = _field(doc, key, int)
    assert isinstance(value, int)
    if value < 0:
        raise ManifestError(f"manifest field {key!r} is negative")
    return value


def _digest(doc: dict[str, object], key: str) -> str:
    value = str(_field(doc, key, str))
    if len(value) != 64 or not set(value) <= _HEX64:
        raise ManifestError(f"manifest field {key!r} is not a sha256 in hex")
    return value


def parse_manifest(text: str) -> Manifest:
    """A manifest from its JSON text; anything missing or malformed is a ManifestError."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise ManifestError("not a retention manifest (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestError("not a retention manifest (no 'format': 'fsar-tui retention archive')")
    if doc.get("version") != VERSION:
        raise ManifestError(f"manifest version {doc.get('version')!r} is not {VERSION}: a newer fsar-tui wrote it")
    table = _field(doc, "table", str)
    if table not in TABLES:
        raise ManifestError(f"manifest table {str(table)[:40]!r} is not one of {', '.join(TABLES)}")
    kind = "time" if table == "task_events" else "id"
    file = str(_field(doc, "file", str))
    if not file or "/" in file or "\\" in file or file.startswith("."):
        raise ManifestError("manifest 'file' must be a plain file name beside the manifest")
    raw_columns = _field(doc, "columns", list)
    assert isinstance(raw_columns, list)
    columns: list[tuple[str, str]] = []
    for c in raw_columns:
        if not (isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) and x for x in c)):
            raise ManifestError("manifest 'columns' must be [name, type] pairs")
        columns.append((c[0], c[1]))
    if not columns:
        raise ManifestError("manifest 'columns' is empty")
    if doc.get("copy_format", "text") != "text":
        raise ManifestError("manifest 'copy_format' is not 'text'")
    policy = doc.get("policy") or {}
    revision = doc.get("schema_revision")
    return Manifest(
        table=str(table),
        partition=str(_field(doc, "partition", str)),
        lower=_bound_in(doc.get("lower"), kind, "manifest 'lower'"),
        upper=_bound_in(doc.get("upper"), kind, "manifest 'upper'"),
        file=file,
        rows=_count(doc, "rows"),
        bytes_compressed=_count(doc, "bytes_compressed"),
        bytes_uncompressed=_count(doc, "bytes_uncompressed"),
        sha256_compressed=_digest(doc, "sha256_compressed"),
        sha256_uncompressed=_digest(doc, "sha256_uncompressed"),
        columns=columns,
        schema_revision=revision if isinstance(revision, str) else None,
        created_at=str(_field(doc, "created_at", str)),
        fsar_tui_version=str(_field(doc, "fsar_tui_version", str)),
        policy={str(k): (v if isinstance(v, str) else None) for k, v in policy.items()}
        if isinstance(policy, dict)
        else {},
    )


@dataclass
class StreamDigest:
    """Fed the uncompressed COPY stream as it is written: its rows, size and sha256."""

    rows: int = 0
    size: int = 0
    _sha: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)

    def update(self, data: bytes) -> None:
        self._sha.update(data)
        self.size += len(data)
        self.rows += data.count(b"\n")

    @property
    def hexdigest(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True)
class Measured:
    """What a pass over an archive file found."""

    rows: int
    bytes_compressed: int
    bytes_uncompressed: int
    sha256_compressed: str
    sha256_uncompressed: str
    problem: str | None = None  # the file could not be decompressed at all


def measure(chunks: Iterable[bytes]) -> Measured:
    """Hash the compressed bytes, decompress them (every gzip member) and hash and count the result."""
    outer = hashlib.sha256()
    inner = StreamDigest()
    size = 0
    decomp = zlib.decompressobj(31)
    fed = False  # the current member has started
    try:
        for chunk in chunks:
            outer.update(chunk)
            size += len(chunk)
            data = chunk
            while data:
                fed = True
                inner.update(decomp.decompress(data))
                if decomp.eof:  # a member ended: the rest (if any) is the next member
                    data = decomp.unused_data
                    decomp = zlib.decompressobj(31)
                    fed = False
                else:
                    data = b""
    except zlib.error as exc:
        return Measured(inner.rows, size, inner.size, outer.hexdigest(), inner.hexdigest, f"not gzip data: {exc}")
    problem = None
    if size == 0:
        problem = "the file is empty"
    elif fed:
        problem = "the gzip stream is cut short"
    return Measured(inner.rows, size, inner.size, outer.hexdigest(), inner.hexdigest, problem)


def problems(manifest: Manifest, measured: Measured) -> list[str]:
    """Every way the file differs from its manifest (empty: verified)."""
    out = [measured.problem] if measured.problem else []
    if measured.problem and manifest.sha256_compressed != measured.sha256_compressed:
        # What was decompressed before the failure says nothing more.
        return [*out, f"compressed sha256 {measured.sha256_compressed} differs from the manifest's"]
    checks = (
        ("compressed sha256", manifest.sha256_compressed, measured.sha256_compressed),
        ("size", manifest.bytes_compressed, measured.bytes_compressed),
        ("uncompressed sha256", manifest.sha256_uncompressed, measured.sha256_uncompressed),
        ("uncompressed size", manifest.bytes_uncompressed, measured.bytes_uncompressed),
        ("row count", manifest.rows, measured.rows),
    )
    out += [f"{what} {got} differs from the manifest's {want}" for what, want, got in checks if want != got]
    return out


def verify(manifest: Manifest, chunks: Iterable[bytes]) -> list[str]:
    """`problems` of the file whose bytes are `chunks`."""
    return problems(manifest, measure(chunks))


def column_problem(archived: list[tuple[str, str]], current: list[tuple[str, str]]) -> str | None:
    """Why rows with `archived` columns cannot go back into a table that has `current` ones."""
    now = dict(current)
    missing = [name for name, _ in archived if name not in now]
    if missing:
        return f"the table has no column(s) {', '.join(missing[:5])} any more"
    changed = [f"{name} {kind} → {now[name]}" for name, kind in archived if now[name] != kind]
    if changed:
        return f"column type(s) changed since the archive: {', '.join(changed[:5])}"
    return None
