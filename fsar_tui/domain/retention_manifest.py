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

A manifest only vouches for itself: whoever can write the file can rewrite both. What
ties an archive to the drop it came from is the database's own retention_log: the drop
logs `archive_digest(manifest)` — one sha256 over the data's sha256, the canonical column
list, the table, partition, bounds and row count — so column names reordered (values
would load into each other's column) or rows edited with the manifest recomputed no
longer match the log. `match_log` finds the 'dropped' entry an archive answers to (and
not restored since); drops logged before the digest covered the columns carry the plain
data digest, still accepted (`LogMatch.legacy`: the caller then checks the column order).
`range_cover` says whether a restored range goes into the partition(s) covering it now or
needs its own; `copy_fields` reads the key columns out of COPY text for the per-row check.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from fsar_tui.domain.retention import TABLES, Bound

FORMAT = "fsar-tui retention archive"
VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
ARCHIVE_SUFFIX = ".copy.gz"
_HEX64 = frozenset("0123456789abcdef")

PARTITION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


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
    # Which database wrote it ("<system identifier>/<database oid>", and its name): a run
    # tells its own interrupted archives from another database's in a shared root.
    database_id: str | None = None
    database: str | None = None

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
        try:  # in UTC, as the partitions' bounds are; 9999-12-31T23:59-12:00 has no UTC twin
            return at.astimezone(UTC)
        except OverflowError:
            raise ManifestError(f"{what}: {value[:40]!r} is outside the years 1-9999 in UTC") from None
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
    partition = str(_field(doc, "partition", str))
    # A partition's name as fsar-tui makes them (an identifier PostgreSQL holds as is): a
    # NUL or a quote in it is no archive of ours, and must not reach a query.
    if not PARTITION_NAME.fullmatch(partition):
        raise ManifestError("manifest 'partition' is not a partition name (letters, digits, _; at most 63)")
    policy = doc.get("policy") or {}
    revision = doc.get("schema_revision")
    database_id, database = doc.get("database_id"), doc.get("database")
    return Manifest(
        table=str(table),
        partition=partition,
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
        database_id=database_id if isinstance(database_id, str) else None,
        database=database if isinstance(database, str) else None,
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


def column_order_problem(archived: list[tuple[str, str]], current: list[tuple[str, str]]) -> str | None:
    """Why the archived column names cannot be in the order they were exported in: an
    export lists the table's columns in the table's order, and columns are only ever
    added (at the end) or dropped, so the names still in the table keep their order."""
    position = {name: n for n, (name, _) in enumerate(current)}
    seen = [name for name, _ in archived if name in position]
    for a, b in zip(seen, seen[1:], strict=False):
        if position[a] > position[b]:
            return f"the manifest lists {a} before {b}, out of the table's column order"
    return None


# -- the archive against the database's retention_log ----------------------------------------


def _bound_key(bound: Bound) -> int | str | None:
    return bound.astimezone(UTC).isoformat() if isinstance(bound, datetime) else bound


def archive_digest(manifest: Manifest) -> str:
    """What a drop logs as the archive's sha256: the data's digest with everything that
    decides where its values go back (see the module docstring)."""
    doc = {
        "table": manifest.table,
        "partition": manifest.partition,
        "lower": _bound_key(manifest.lower),
        "upper": _bound_key(manifest.upper),
        "rows": manifest.rows,
        "sha256_uncompressed": manifest.sha256_uncompressed,
        "columns": [list(c) for c in manifest.columns],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class LogEntry:
    """One retention_log row of the archive's table and partition."""

    id: int
    action: str  # "dropped" | "restored"
    lower: str | None  # the bounds as logged (text; None: unbounded)
    upper: str | None
    rows: int
    sha256: str | None


@dataclass(frozen=True)
class LogMatch:
    entry: LogEntry  # the 'dropped' entry the archive answers to
    legacy: bool  # logged with the plain data digest: the column list is not covered

    @property
    def sha256(self) -> str:
        """What the restore logs: the drop's own digest (a later restore pairs with it)."""
        return self.entry.sha256 or ""


def _same_bound(logged: str | None, bound: Bound) -> bool:
    if logged is None or bound is None:
        return logged is None and bound is None
    try:
        if isinstance(bound, datetime):
            return datetime.fromisoformat(logged) == bound
        return int(logged) == bound
    except ValueError:
        return False


def _differences(manifest: Manifest, entry: LogEntry) -> list[str]:
    out = []
    if not (_same_bound(entry.lower, manifest.lower) and _same_bound(entry.upper, manifest.upper)):
        out.append(f"bounds [{entry.lower}, {entry.upper}) logged")
    if entry.rows != manifest.rows:
        out.append(f"rows {manifest.rows:,} differ from the {entry.rows:,} logged")
    if entry.sha256 is None:
        out.append("dropped without an archive (--no-archive)")
    elif entry.sha256 not in (archive_digest(manifest), manifest.sha256_uncompressed):
        out.append("its rows or column list differ from the ones dropped (checksum)")
    return out


def open_drops(entries: Sequence[LogEntry]) -> list[LogEntry]:
    """The 'dropped' entries not restored since: a restore logs its drop's digest, and
    closes the latest open drop logged with it (a partition may be dropped, made again by
    a late row, and dropped again: each drop is its own archive)."""
    opened: list[LogEntry] = []
    for e in sorted(entries, key=lambda e: e.id):
        if e.action == "dropped":
            opened.append(e)
        elif e.action == "restored":
            same = [n for n, d in enumerate(opened) if d.sha256 == e.sha256]
            if same:
                del opened[same[-1]]
    return opened


def match_log(manifest: Manifest, entries: Sequence[LogEntry]) -> LogMatch | str:
    """The open 'dropped' entry this archive answers to, or why there is none (one line)."""
    drops = [e for e in entries if e.action == "dropped"]
    if not drops:
        return (
            f"no 'dropped' entry for {manifest.partition} in this database's retention_log (an archive of "
            "another database, or a log lost to a downgrade: --not-in-log restores it anyway)"
        )
    opened = {e.id for e in open_drops(entries)}
    found = [(e, _differences(manifest, e)) for e in drops]
    exact = [e for e, diffs in found if not diffs]
    for e in exact:
        if e.id in opened:
            return LogMatch(e, legacy=e.sha256 != archive_digest(manifest))
    if exact:
        return f"{manifest.partition} is restored already: the log has a restore after its drop (row {exact[-1].id})"
    e, diffs = min(found, key=lambda f: (len(f[1]), -f[0].id))
    return f"does not match this database's retention_log (the drop logged as row {e.id}): {'; '.join(diffs)}"


# -- where restored rows go, and their keys --------------------------------------------------


def _key(bound: Bound, *, upper: bool) -> tuple[int, object] | tuple[int]:
    """A bound made comparable: None is -inf as a lower bound, +inf as an upper one."""
    return ((1,) if upper else (-1,)) if bound is None else (0, bound)


def range_cover(parts: Iterable[tuple[Bound, Bound]], lower: Bound, upper: Bound) -> str:
    """How the partitions with bounds `parts` cover [lower, upper): "none" (the range's own
    partition is made), "whole" (the rows load into them) or "part" (refused)."""
    lo, hi = _key(lower, upper=False), _key(upper, upper=True)
    spans = [(_key(a, upper=False), _key(b, upper=True)) for a, b in parts]
    overlapping = sorted((a, b) for a, b in spans if a < hi and b > lo)
    if not overlapping:
        return "none"
    reached = lo
    for a, b in overlapping:
        if a > reached:
            return "part"  # a gap the rows would fall into (the DEFAULT partition)
        reached = max(reached, b)
        if reached >= hi:
            return "whole"
    return "part"


def copy_fields(chunks: Iterable[bytes], positions: Sequence[int]) -> Iterator[tuple[str, ...]]:
    """Per row of COPY text, the fields at `positions` (key columns: numbers and instants,
    which COPY writes without escapes)."""
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            fields = line.split(b"\t")
            yield tuple(fields[p].decode() for p in positions)
    if rest:
        fields = rest.split(b"\t")
        yield tuple(fields[p].decode() for p in positions)
