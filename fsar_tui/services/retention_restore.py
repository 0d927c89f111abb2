"""`fsar-tui retention restore FILE`: an archived partition back into its table.

FILE names an archive or its manifest. Refused, with nothing written, when:
- the file fails verification against its manifest (a flipped byte, a cut-short file:
  exit 1 naming it);
- the archive does not answer to a 'dropped' entry of this database's retention_log not
  restored since — same table, partition, bounds and rows, and the logged digest of its
  data, columns and range (domain/retention_manifest.match_log) — exit 1: a file edited
  with its manifest recomputed, column names reordered, another database's archive.
  `not_in_log` (`--not-in-log`) skips this check, for disaster recovery into a database
  whose log lacks the entry (a restored dump, a downgrade below revision 0030 dropped
  the log); the file is still verified against its manifest, and the column names must
  be in the table's order (also for drops logged before the digest covered them);
- the table's columns no longer take the archived ones;
- any of the archive's rows is in the table already, by primary key (restored before);
- this login is not the tables' owner (exit 2: only the bulk loader's rows pass the
  triggers uncounted — restored rows were counted when first written, so counting them
  again would double every figure).
The rows go back in one transaction (db/retention_restore.restore_partition) into
whatever partition covers the range now, or one made for it, hashed again as they are
loaded: a file that changed between the check and the load rolls it all back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from fsar_tui.db import partitions
from fsar_tui.db import retention as db
from fsar_tui.db import retention_restore as load
from fsar_tui.db.connect import connect
from fsar_tui.domain.retention import format_bound
from fsar_tui.domain.retention_manifest import (
    Manifest,
    StreamDigest,
    archive_digest,
    column_order_problem,
    column_problem,
    copy_fields,
    match_log,
)
from fsar_tui.errors import CheckFailed, UsageError, first_line
from fsar_tui.services import retention_archive as files
from fsar_tui.services.retention import DEFAULT_LOCK_TIMEOUT_MS, run_lock

NOT_OWNER = (
    "retention restore needs the tables' owner (the role that ran `fsar-tui migrate`): this login is not "
    "a member of it: nothing written"
)


@dataclass
class RestoreReport:
    action: str  # "restored" | "would restore"
    table: str
    partition: str
    lower: str
    upper: str
    rows: int
    manifest: str
    into: list[str] = field(default_factory=list)  # the partitions the rows go into

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def _log_digest(conn: psycopg.Connection, manifest: Manifest, manifest_path: Path, not_in_log: bool) -> str:
    """The digest the restore logs (its drop's, so a later restore pairs with the right
    drop); raises CheckFailed when the archive does not match the log (see the docstring)."""
    found = match_log(manifest, load.log_entries(conn, manifest.table, manifest.partition))
    if isinstance(found, str) and not not_in_log:
        raise CheckFailed(f"{manifest_path}: {found}: nothing restored")
    if not_in_log or (not isinstance(found, str) and found.legacy):
        problem = column_order_problem(manifest.columns, db.columns(conn, manifest.table))
        if problem:
            raise CheckFailed(
                f"{manifest_path}: {problem} (no logged checksum covers its column list): nothing restored"
            )
    return archive_digest(manifest) if isinstance(found, str) else found.sha256


def restore(
    dsn: str,
    file: Path,
    *,
    dry_run: bool = False,
    not_in_log: bool = False,
    statement_timeout_ms: int | None = None,
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
) -> RestoreReport:
    manifest_path, _ = files.locate(file)
    manifest, archive, problems = files.verify_file(manifest_path)
    if problems:
        raise CheckFailed(
            f"{archive}: fails verification against its manifest: {problems[0]}: nothing restored",
            details=problems[1:],
        )
    part = partitions.Partition(manifest.table, manifest.partition, manifest.lower, manifest.upper, False)
    report = RestoreReport(
        "would restore" if dry_run else "restored",
        manifest.table,
        manifest.partition,
        format_bound(manifest.lower),
        format_bound(manifest.upper),
        manifest.rows,
        str(manifest_path),
    )
    names = [c for c, _ in manifest.columns]
    missing = [k for k in load.PRIMARY_KEY[manifest.table] if k not in names]
    if missing:
        raise CheckFailed(f"{manifest_path}: the manifest lists no {', '.join(missing)} column: nothing restored")
    positions = [names.index(k) for k in load.PRIMARY_KEY[manifest.table]]

    def keys() -> Iterable[tuple[str, ...]]:
        return copy_fields(files.rows_chunks(archive), positions)

    with connect(dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
        if not db.available(conn):
            raise UsageError("the schema has no retention tables yet (revision 0030): run `fsar-tui migrate`")
        if not dry_run and not db.owns_tables(conn):
            raise UsageError(NOT_OWNER)
        problem = column_problem(manifest.columns, db.columns(conn, manifest.table))
        if problem:
            raise CheckFailed(f"{manifest_path}: {problem}: nothing restored")
        sha256 = _log_digest(conn, manifest, manifest_path, not_in_log)
        if dry_run:
            try:
                report.into = load.covering(conn, part)[1] or [part.name]
                load.check_keys(conn, part, keys)
            except db.Refused as exc:
                raise CheckFailed(f"{manifest_path}: {exc}") from None
            return report
        digest = StreamDigest()

        def chunks() -> Iterator[bytes]:
            for chunk in files.rows_chunks(archive):
                digest.update(chunk)
                yield chunk

        def check(rows: int) -> str | None:
            if digest.hexdigest != manifest.sha256_uncompressed or digest.rows != manifest.rows:
                return f"{archive.name} changed while it was loaded"
            if rows != manifest.rows:
                return f"{rows:,} rows loaded where the manifest says {manifest.rows:,}"
            return None

        with run_lock(dsn, statement_timeout_ms):
            try:
                report.rows, report.into = load.restore_partition(
                    conn,
                    part,
                    names,
                    chunks(),
                    check,
                    keys,
                    manifest=str(manifest_path),
                    sha256=sha256,
                    lock_timeout_ms=lock_timeout_ms,
                )
            except (load.NotOwner, psycopg.errors.InsufficientPrivilege):
                raise UsageError(NOT_OWNER) from None
            except db.Refused as exc:
                raise CheckFailed(f"{manifest_path}: {exc}") from None
            except psycopg.errors.UniqueViolation as exc:
                key = (exc.diag.message_detail or "").strip() or first_line(exc)
                raise CheckFailed(
                    f"{manifest_path}: rows of the archive are in {part.table} already ({key}): nothing written"
                ) from None
            except (psycopg.errors.DataError, psycopg.errors.IntegrityError, psycopg.errors.RaiseException) as exc:
                raise CheckFailed(f"{manifest_path}: {first_line(exc)}: nothing written") from None
            except OSError as exc:
                raise CheckFailed(f"{archive}: cannot read: {exc}: nothing written") from None
    return report
