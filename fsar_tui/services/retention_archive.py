"""Retention archive files on disk: one directory per run, one gzip file of COPY text per
partition with its manifest beside it (the format: domain/retention_manifest.py).

Nothing is ever overwritten: a run's directory is created new (a clash takes the next
name), each file is written under a temporary name opened exclusively, flushed and
fsynced, then linked to its final name — `link` fails rather than replace an existing
file — and the directory fsynced. Read back before anything is dropped: `verify_file`
decompresses the file from disk, counts its rows and checks both checksums against the
manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from fsar_tui.domain.retention_manifest import (
    ARCHIVE_SUFFIX,
    MANIFEST_SUFFIX,
    Manifest,
    ManifestError,
    StreamDigest,
    parse_manifest,
    verify,
)
from fsar_tui.errors import CheckFailed, UsageError

CHUNK = 1 << 20
GZIP_LEVEL = 6  # zlib's default: ~4x on COPY text of tasks, at the speed COPY delivers it


def default_root() -> Path:
    """Where archives go when neither --archive nor [retention] archive says."""
    import platformdirs

    return platformdirs.user_data_path("fsar-tui") / "retention"


def new_run_dir(root: Path, now: datetime) -> Path:
    """A new, empty directory for this run's archives under `root` (created if need be)."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        candidate = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        _fsync_dir(root)
        return candidate
    raise OSError(f"no free run directory name under {root}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, final: Path) -> None:
    """Give the fsynced temporary file its final name, never replacing one."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise CheckFailed(f"{final} exists already: an archive is never overwritten") from None
    tmp.unlink()


class ArchiveWriter:
    """One partition's archive being written: feed it the COPY stream, then `finish`."""

    def __init__(self, directory: Path, stem: str) -> None:
        self.directory = directory
        self.path = directory / f"{stem}{ARCHIVE_SUFFIX}"
        self.manifest_path = directory / f"{stem}{MANIFEST_SUFFIX}"
        self._tmp = directory / f".{stem}{ARCHIVE_SUFFIX}.tmp"
        self._fh = open(self._tmp, "xb")  # closed by finish() or abort()
        self._comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: a gzip member
        self._outer = hashlib.sha256()
        self._size = 0
        self.raw = StreamDigest()

    def write(self, data: bytes) -> None:
        self.raw.update(data)
        self._out(self._comp.compress(data))

    def _out(self, data: bytes) -> None:
        if data:
            self._fh.write(data)
            self._outer.update(data)
            self._size += len(data)

    def finish(self, **fields: object) -> Manifest:
        """Close the file (fsynced), write its manifest; both published under final names."""
        self._out(self._comp.flush())
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        manifest = Manifest(
            file=self.path.name,
            rows=self.raw.rows,
            bytes_compressed=self._size,
            bytes_uncompressed=self.raw.size,
            sha256_compressed=self._outer.hexdigest(),
            sha256_uncompressed=self.raw.hexdigest,
            **fields,  # type: ignore[arg-type]
        )
        mtmp = self.directory / f".{self.manifest_path.name}.tmp"
        with open(mtmp, "x", encoding="utf-8") as fh:
            fh.write(manifest.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        _publish(self._tmp, self.path)
        _publish(mtmp, self.manifest_path)
        _fsync_dir(self.directory)
        return manifest

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def rows_chunks(path: Path) -> Iterator[bytes]:
    """The archive's COPY text, decompressed as it is read."""
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def locate(file: Path) -> tuple[Path, Path]:
    """(manifest, archive) for FILE, which names either."""
    name = file.name
    if name.endswith(MANIFEST_SUFFIX):
        stem = name[: -len(MANIFEST_SUFFIX)]
    elif name.endswith(ARCHIVE_SUFFIX):
        stem = name[: -len(ARCHIVE_SUFFIX)]
    else:
        raise UsageError(f"{file}: not a retention archive ({ARCHIVE_SUFFIX}) or manifest ({MANIFEST_SUFFIX})")
    return file.with_name(stem + MANIFEST_SUFFIX), file.with_name(stem + ARCHIVE_SUFFIX)


def read_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such manifest (an archive is restored with the manifest beside it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return parse_manifest(text)
    except ManifestError as exc:
        raise CheckFailed(f"{path}: {exc}") from None


def verify_file(manifest_path: Path) -> tuple[Manifest, Path, list[str]]:
    """The manifest, its archive file, and every way the file differs from it."""
    manifest = read_manifest(manifest_path)
    archive = manifest_path.with_name(manifest.file)
    try:
        return manifest, archive, verify(manifest, file_chunks(archive))
    except FileNotFoundError:
        return manifest, archive, [f"{archive.name} is missing"]
    except OSError as exc:
        return manifest, archive, [f"cannot read {archive.name}: {exc.strerror}"]


def discard(manifest_path: Path, archive: Path) -> None:
    """Remove an archive this run wrote for a partition it then kept (the rows are still
    in the table: the file would only be a stale copy)."""
    for path in (manifest_path, archive):
        path.unlink(missing_ok=True)
