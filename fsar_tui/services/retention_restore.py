"""`fsar-tui retention restore FILE`: an archived partition back into its table.

FILE names an archive or its manifest. Refused, with nothing written, when: the file
fails verification against its manifest (a flipped byte, a cut-short file: exit 1 naming
it); the table's columns no longer take the archived ones; rows of the range are in the
table already (restored before, or new rows the range now holds); this login is not the
tables' owner (only the bulk loader's rows pass the triggers uncounted — restored rows
were counted when first written, so counting them again would double every figure).
The rows go back in one transaction (db/retention.restore_partition), hashed again as
they are loaded: a file that changed between the check and the load rolls it all back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from fsar_tui.db import partitions
from fsar_tui.db import retention as db
from fsar_tui.db.connect import connect
from fsar_tui.domain.retention import format_bound
from fsar_tui.domain.retention_manifest import StreamDigest, column_problem
from fsar_tui.errors import CheckFailed, UsageError, first_line
from fsar_tui.services import retention_archive as files
from fsar_tui.services.retention import DEFAULT_LOCK_TIMEOUT_MS, run_lock


@dataclass
class RestoreReport:
    action: str  # "restored" | "would restore"
    table: str
    partition: str
    lower: str
    upper: str
    rows: int
    manifest: str

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def restore(
    dsn: str,
    file: Path,
    *,
    dry_run: bool = False,
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
    with connect(dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
        if not db.available(conn):
            raise UsageError("the schema has no retention tables yet (revision 0030): run `fsar-tui migrate`")
        problem = column_problem(manifest.columns, db.columns(conn, manifest.table))
        if problem:
            raise CheckFailed(f"{manifest_path}: {problem}: nothing restored")
        if db.range_has_rows(conn, part):
            raise CheckFailed(
                f"{manifest_path}: rows of {part.name}'s range are in {part.table} already "
                "(restored before?): nothing written"
            )
        if dry_run:
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
                report.rows = db.restore_partition(
                    conn,
                    part,
                    [c for c, _ in manifest.columns],
                    chunks(),
                    check,
                    manifest=str(manifest_path),
                    sha256=manifest.sha256_uncompressed,
                    lock_timeout_ms=lock_timeout_ms,
                )
            except db.Refused as exc:
                raise CheckFailed(f"{manifest_path}: {exc}") from None
            except (psycopg.errors.DataError, psycopg.errors.IntegrityError, psycopg.errors.RaiseException) as exc:
                raise CheckFailed(f"{manifest_path}: {first_line(exc)}: nothing written") from None
            except OSError as exc:
                raise CheckFailed(f"{archive}: cannot read: {exc}: nothing written") from None
    return report
