"""Retention archive files on disk: one directory per run, one gzip file of COPY text per
partition with its manifest beside it (the format: domain/retention_manifest.py).

Nothing is ever overwritten: a run's directory is created new (a clash takes the next
name), each file is written under a temporary name opened exclusively, flushed and
fsynced, then linked to its final name — `link` fails rather than replace an existing
file — and the directory fsynced. Read back before anything is dropped: `verify_file`
decompresses the file from disk, counts its rows and checks both checksums against the
manifest.

Archives are raw rows (payloads, results, errors: personal data and secrets possibly),
by design — a restore brings back the same bytes — so they are kept like database
backups: files 0600, directories 0700 whatever the umask, and a root another account
may write (group or world) is refused (`check_root`, exit 2).

A run holds an exclusive `flock` on its directory while it writes it, and marks it
complete (`RUN_COMPLETE`) when it is done. `sweep` — the next run's first step, under the
database's run lock — visits the directories neither complete nor locked (a run killed
with kill -9, a crash): it removes their temporary files (a live run's are never seen:
its directory is locked) and hands each manifest to the caller, which says whether the
partition was dropped with it (the archive is needed: kept), or the archive is an
orphan (reported, never deleted here); a directory whose every archive is accounted for
is marked complete, so it is not visited again. A run that fails writing (a full disk)
removes its own directory, every file in it (`RunDir.remove`: nothing was dropped yet).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from fsar_tui.errors import CheckFailed, FsarError, UsageError

CHUNK = 1 << 20
GZIP_LEVEL = 6  # zlib's default: ~4x on COPY text of tasks, at the speed COPY delivers it
FILE_MODE, DIR_MODE = 0o600, 0o700
RUN_COMPLETE = ".complete"  # in a run directory: the run ended (see the module docstring)
TMP_SUFFIX = ".tmp"
RUN_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$")


def default_root() -> Path:
    """Where archives go when neither --archive nor [retention] archive says."""
    import platformdirs

    return platformdirs.user_data_path("fsar-tui") / "retention"


def check_root(root: Path) -> None:
    """Refuse an archive root another account may write: it could remove or replace
    archives (a restore then loads what it wrote)."""
    try:
        st = root.stat()
    except OSError:
        return  # made 0700 when the run writes (or cannot be: new_run_dir says why)
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"archive root {root} is not a directory: nothing dropped")
    if st.st_uid not in (os.geteuid(), 0):  # its owner may plant or replace archives
        raise UsageError(
            f"archive root {root} belongs to another account (uid {st.st_uid}): archives hold raw rows, "
            "keep them in a directory of this account's (or root's): nothing dropped"
        )
    if st.st_mode & 0o022:
        raise UsageError(
            f"archive root {root} is group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o}): archives hold "
            f"raw rows, keep them like database backups (chmod go-w {root}): nothing dropped"
        )


def _make_dirs(path: Path) -> None:
    """`mkdir -p` whose new directories are 0700 whatever the umask."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs, left as it is
        os.chmod(d, DIR_MODE)  # mkdir's mode went through the umask


class RunDir:
    """This run's directory, flocked (exclusively) until `close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def still_there(self) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return False

    def complete(self) -> None:
        """Mark the run done: its directory is not visited by `sweep` any more."""
        _mark_complete(self.path)

    def remove(self) -> None:
        """Remove the directory and every file in it (all this run's: it made it); best
        effort (a failure writing is being reported: what is left, the next run sweeps)."""
        try:
            for p in self.path.iterdir():
                p.unlink(missing_ok=True)
            self.path.rmdir()
        except OSError:
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _mark_complete(directory: Path) -> None:
    fd = os.open(directory / RUN_COMPLETE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(directory)


def new_run_dir(root: Path, now: datetime) -> RunDir:
    """A new, empty, locked directory (0700) for this run's archives under `root` (made
    0700 if need be; refused when others may write it)."""
    _make_dirs(root)
    check_root(root)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        candidate = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            candidate.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(candidate, DIR_MODE)
        run_dir = RunDir(candidate)
        if not run_dir.still_there():  # swept as empty before it was locked: take another
            run_dir.close()
            continue
        _fsync_dir(root)
        return run_dir
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


def _private(path: Path, mode: str, encoding: str | None = None):  # -> IO
    """A new file (never an existing one) readable by this account only, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode.replace("x", "w"), encoding=encoding)
    except BaseException:
        os.close(fd)
        raise


class ArchiveWriter:
    """One partition's archive being written: feed it the COPY stream, then `finish`."""

    def __init__(self, directory: Path, stem: str) -> None:
        self.directory = directory
        self.path = directory / f"{stem}{ARCHIVE_SUFFIX}"
        self.manifest_path = directory / f"{stem}{MANIFEST_SUFFIX}"
        self._tmp = directory / f".{stem}{ARCHIVE_SUFFIX}.tmp"
        self._fh = _private(self._tmp, "xb")  # closed by finish() or abort()
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
        with _private(mtmp, "x", encoding="utf-8") as fh:
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
        # A regular file only: a FIFO (or a device) named *.manifest.json would block the
        # read forever, or feed it without end.
        if path.exists() and not path.is_file():
            raise UsageError(f"{path}: not a regular file")
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


@dataclass
class Swept:
    """What `sweep` found in the run directories interrupted runs left."""

    temporaries: list[Path] = field(default_factory=list)  # removed
    orphans: list[Path] = field(default_factory=list)  # manifests of partitions never dropped
    strays: list[Path] = field(default_factory=list)  # archives whose manifest was never written


def _try_lock(directory: Path) -> int | None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None  # a live run's
    return fd


def sweep(root: Path, judge: Callable[[Manifest], str]) -> Swept:
    """Visit the run directories of interrupted runs (see the module docstring).
    `judge(manifest)`: "dropped" (its partition was dropped with it: needed), "orphan"
    (never dropped), or anything else (not this database's to say)."""
    swept = Swept()
    if not root.is_dir():
        return swept
    for d in sorted(root.iterdir()):
        if not RUN_NAME.match(d.name) or d.is_symlink() or not d.is_dir() or (d / RUN_COMPLETE).exists():
            continue
        fd = _try_lock(d)
        if fd is None:
            continue
        try:
            _sweep_one(d, judge, swept)
        finally:
            os.close(fd)
    return swept


def _sweep_one(d: Path, judge: Callable[[Manifest], str], swept: Swept) -> None:
    for p in sorted(d.iterdir()):
        if p.name.startswith(".") and p.name.endswith(TMP_SUFFIX) and p.is_file():
            p.unlink()
            swept.temporaries.append(p)
    if not any(d.iterdir()):
        d.rmdir()  # killed before it wrote anything
        return
    verdicts = []
    for m in sorted(d.glob(f"*{MANIFEST_SUFFIX}")):
        try:
            verdict = judge(read_manifest(m))
        except (FsarError, ValueError, OverflowError, OSError):
            # Not ours to judge (garbage, a bound out of range): left where it is, and one
            # such file must never stop the run that found it.
            verdict = "unreadable"
        if verdict == "orphan":
            swept.orphans.append(m)
        verdicts.append(verdict)
    described = {m.name[: -len(MANIFEST_SUFFIX)] for m in d.glob(f"*{MANIFEST_SUFFIX}")}
    strays = [p for p in sorted(d.glob(f"*{ARCHIVE_SUFFIX}")) if p.name[: -len(ARCHIVE_SUFFIX)] not in described]
    swept.strays += strays
    if verdicts and not strays and all(v == "dropped" for v in verdicts):
        _mark_complete(d)
