"""Retention, orchestrated: `fsar-tui retention run` / `restore` and the audit pass's turn.

A run, as of one `now`:
1. refuse a policy shorter than a raw-row reader's window (domain/retention.floors: one
   line, exit 2, nothing done), or a login that does not own the tables;
2. one run per database at a time (a transaction-level advisory lock held on a
   connection of its own: a session lock would outlive us behind a transaction pooler);
3. fold the duration samples, read each partition's facts, and plan (every partition
   gets a decision and a reason; `--dry-run` stops here and writes nothing);
4. archive every partition to drop into a new run directory, each file read back and
   verified against its manifest; if any fails, nothing at all is dropped (exit 1
   naming the file);
5. drop them one by one (db/retention.drop_partition: DETACH, the fingerprint checked
   under a short lock_timeout, DROP, in one transaction); a partition that changed since
   its export or whose lock did not come is kept, and its archive removed.
No partition to drop: "nothing to do", no directory written — so a second run is a no-op.

Without an archive directory nothing is dropped, unless `no_archive` says so explicitly
(the rows are then gone for good; the log still records what was dropped). A root another
account may write is refused (exit 2). Before planning, the run sweeps what interrupted
runs left (services/retention_archive.sweep): their temporary files go; an archive of a
partition never dropped (not in retention_log, the partition still there, written by
this database) is reported as an orphan, never deleted — one whose partition was dropped
is needed. A write that fails (a full disk) removes this run's directory and everything
in it and drops nothing: exit 1 naming the directory. Each drop logs the archive's
digest (domain/retention_manifest.archive_digest), which restore checks the archive
against.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import Connection

from fsar_tui import __version__, clock
from fsar_tui.db import partitions
from fsar_tui.db import retention as db
from fsar_tui.db import retention_restore as log_reads
from fsar_tui.db.connect import connect
from fsar_tui.db.rows import one
from fsar_tui.domain import retention as policy_math
from fsar_tui.domain.retention import EVENTS, TASKS, Decision, Policy
from fsar_tui.domain.retention_manifest import Manifest, archive_digest
from fsar_tui.errors import CheckFailed, UsageError, first_line
from fsar_tui.services import retention_archive as files

DEFAULT_LOCK_TIMEOUT_MS = 2000
LOCK_ATTEMPTS = 3  # a drop whose lock does not come is retried this often, then kept for the next run


@dataclass
class Outcome:
    """One partition's fate in a run."""

    table: str
    name: str
    lower: object
    upper: object
    action: str  # "dropped" | "would drop" | "kept" | "failed" (an error dropping it: kept, archive removed)
    reason: str
    rows: int | None = None
    manifest: str | None = None  # the archive's manifest, when it was archived

    def as_json(self) -> dict[str, object]:
        return {
            "table": self.table,
            "partition": self.name,
            "lower": policy_math.format_bound(self.lower),  # type: ignore[arg-type]
            "upper": policy_math.format_bound(self.upper),  # type: ignore[arg-type]
            "action": self.action,
            "reason": self.reason,
            "rows": self.rows,
            "manifest": self.manifest,
        }


@dataclass
class RunReport:
    dry_run: bool
    policy: dict[str, str | None]
    at: datetime
    archive: str | None = None  # this run's directory, when it wrote one
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the sweep of interrupted runs found

    @property
    def dropped(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.action in ("dropped", "would drop")]

    @property
    def nothing_to_do(self) -> bool:
        return not self.dropped and not self.failed

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.action == "failed"]


@contextmanager
def run_lock(dsn: str, statement_timeout_ms: int | None) -> Iterator[None]:
    with connect(dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as lock, lock.transaction():
        got = one(lock.execute("SELECT pg_try_advisory_xact_lock(%s)", (db.RETENTION_LOCK,)).fetchone())[0]
        if not got:
            raise CheckFailed("another retention run or restore is in progress on this database: nothing done")
        yield


def check_policy(conn: Connection, policy: Policy) -> None:
    if not db.available(conn):
        raise UsageError("the schema has no retention tables yet (revision 0030): run `fsar-tui migrate`")
    if policy.empty:
        raise UsageError("no retention policy: give --task-events and/or --tasks, or set [retention] in config.toml")
    why = policy_math.refusal(policy, policy_math.floors(db.gate_reaches(conn)))
    if why:
        raise UsageError(f"retention refused: {why}")


def gather(conn: Connection, policy: Policy, now: datetime) -> list[policy_math.PartitionFacts]:
    facts: list[policy_math.PartitionFacts] = []
    if policy.task_events_s is not None:
        facts += [db.event_facts(p) for p in partitions.list_partitions(conn, EVENTS)]
    cutoff = policy.cutoff(TASKS, now)
    if cutoff is not None:
        next_id = db.next_task_id(conn)
        facts += [db.task_facts(conn, p, next_id, cutoff) for p in partitions.list_partitions(conn, TASKS)]
    restored = db.restores(conn)
    keys = db.referencing_keys(conn) if cutoff is not None else []
    blocked = (
        f"table {keys[0][0]} references execution_tasks (foreign key {keys[0][1]}"
        + (f", and {len(keys) - 1} more" if len(keys) > 1 else "")
        + "): PostgreSQL refuses to detach a range it may point into — drop that constraint to let ranges go"
        if keys
        else None
    )
    return [
        replace(
            f,
            restored_at=policy_math.last_restore(f, restored),
            blocked=blocked if f.table == TASKS and not f.is_default else None,
        )
        for f in facts
    ]


def _outcome(d: Decision, action: str, reason: str | None = None, rows: int | None = None) -> Outcome:
    f = d.facts
    return Outcome(f.table, f.name, f.lower, f.upper, action, reason or d.reason, rows if rows is not None else f.rows)


@dataclass
class _Archived:
    decision: Decision
    export: db.Export
    manifest: Manifest | None
    manifest_path: Path | None
    archive_path: Path | None


def run(
    dsn: str,
    policy: Policy,
    *,
    archive_root: Path | None,
    no_archive: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
    statement_timeout_ms: int | None = None,
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
    after_write: Callable[[Path], None] | None = None,
) -> RunReport:
    """One retention run (see the module docstring). `after_write(archive)`: called once
    each archive is on disk, before it is read back (tests corrupt it there)."""
    now = now or clock.now()
    report = RunReport(dry_run, policy.describe(), now)
    with connect(dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
        check_policy(conn, policy)
        if not dry_run and not db.owns_tables(conn):  # a role to change, as for restore: exit 2
            raise UsageError(
                "retention drops partitions: this login is not a member of the tables' owner "
                "(run it as the role that ran `fsar-tui migrate`): nothing done"
            )
        if not dry_run and not no_archive and archive_root is not None:
            files.check_root(archive_root)
        with run_lock(dsn, statement_timeout_ms) if not dry_run else _no_lock():
            if not dry_run:
                if not no_archive and archive_root is not None:
                    report.notes = _sweep(conn, archive_root)
                db.fold_samples(conn)
            decisions = policy_math.plan(gather(conn, policy, now), policy, now)
            drops = [d for d in decisions if d.drop]
            if dry_run:
                for d in decisions:
                    rows = d.facts.rows if d.facts.rows is not None or not d.drop else db.count_rows(conn, d.facts)
                    report.outcomes.append(_outcome(d, "would drop" if d.drop else "kept", rows=rows))
                return report
            report.outcomes = [_outcome(d, "kept") for d in decisions if not d.drop]
            if not drops:
                return report
            run_dir, archived = _archive_all(conn, drops, policy, now, report, archive_root, no_archive, after_write)
            try:
                for a in archived:
                    report.outcomes.append(_drop(conn, a, lock_timeout_ms))
                if run_dir is not None and not any(run_dir.path.iterdir()):
                    run_dir.path.rmdir()  # every partition was kept after all: no archive written
                    report.archive = None
                elif run_dir is not None:
                    run_dir.complete()
            finally:
                if run_dir is not None:
                    run_dir.close()
    return report


def _sweep(conn: Connection, root: Path) -> list[str]:
    """Sweep the run directories interrupted runs left under `root`; what it found, as notes."""
    ident = db.database_identity(conn)[0]
    live = {
        table: {(p.name, p.lower, p.upper) for p in partitions.list_partitions(conn, table)}
        for table in (TASKS, EVENTS)
    }

    def judge(m: Manifest) -> str:
        digests = (archive_digest(m), m.sha256_uncompressed)
        try:
            logged = log_reads.log_entries(conn, m.table, m.partition)
        except psycopg.DataError:  # a name PostgreSQL cannot hold (a NUL): not one of ours
            return "unknown"
        if any(e.action == "dropped" and e.sha256 in digests for e in logged):
            return "dropped"  # needed: its rows are gone from the table
        if m.database_id == ident and (m.partition, m.lower, m.upper) in live[m.table]:
            return "orphan"
        return "unknown"  # another database's, or a log lost to a downgrade: not ours to say

    swept = files.sweep(root, judge)
    notes = []
    if swept.temporaries:
        where = sorted({str(p.parent) for p in swept.temporaries})
        notes.append(f"removed {len(swept.temporaries)} temporary file(s) interrupted runs left in {', '.join(where)}")
    notes += [
        f"orphan archive {m}: an interrupted run's copy of a partition never dropped (its rows are still in the "
        "table); not deleted: remove it (and its .copy.gz) when you like"
        for m in swept.orphans
    ]
    notes += [
        f"orphan archive {p}: an interrupted run wrote it but not its manifest (never dropped); not deleted"
        for p in swept.strays
    ]
    return notes


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


def _archive_all(
    conn: Connection,
    drops: list[Decision],
    policy: Policy,
    now: datetime,
    report: RunReport,
    root: Path | None,
    no_archive: bool,
    after_write: Callable[[Path], None] | None,
) -> tuple[files.RunDir | None, list[_Archived]]:
    """Export every partition to drop; with an archive, write and verify each (in the run
    directory returned, locked). A failed verification raises, and so does a failed write
    (its directory removed): nothing has been dropped yet."""
    if no_archive:
        return None, [_Archived(d, _export(conn, d, None), None, None, None) for d in drops]
    if root is None:
        raise UsageError("no archive directory (give --archive DIR or set [retention] archive): nothing dropped")
    try:
        run_dir = files.new_run_dir(root, now)
    except OSError as exc:
        raise UsageError(
            f"cannot create an archive directory under {root}: {exc.strerror or exc}: nothing dropped "
            "(give --archive DIR, or --no-archive to drop without one)"
        ) from None
    report.archive = str(run_dir.path)
    try:
        archived = _write_all(conn, drops, policy, now, run_dir.path, after_write)
    except (OSError, psycopg.Error) as exc:
        # Nothing was dropped: every file of this run is a copy of rows still in the table.
        run_dir.remove()
        run_dir.close()
        report.archive = None
        if isinstance(exc, psycopg.Error):
            raise
        raise CheckFailed(
            f"archive write failed in {run_dir.path}: {exc.strerror or first_line(exc)}: nothing dropped "
            "(this run's files removed)"
        ) from None
    except BaseException:
        run_dir.close()  # a failed verification: its files stay for the operator; the next run reports them
        raise
    return run_dir, archived


def _write_all(
    conn: Connection,
    drops: list[Decision],
    policy: Policy,
    now: datetime,
    run_dir: Path,
    after_write: Callable[[Path], None] | None,
) -> list[_Archived]:
    revision = db.schema_revision(conn)
    database_id, database = db.database_identity(conn)
    done: list[_Archived] = []
    for d in drops:
        table = d.facts.table
        cols = db.columns(conn, table)
        writer = files.ArchiveWriter(run_dir, d.facts.name)
        try:
            export = _export(conn, d, writer.write, [c for c, _ in cols])
            manifest = writer.finish(
                table=table,
                partition=d.facts.name,
                lower=d.facts.lower,
                upper=d.facts.upper,
                columns=cols,
                schema_revision=revision,
                created_at=now.isoformat(),
                fsar_tui_version=__version__,
                policy=policy.describe(),
                database_id=database_id,
                database=database,
            )
        except BaseException:
            writer.abort()
            raise
        if after_write is not None:
            after_write(writer.path)
        _, _, problems = files.verify_file(writer.manifest_path)
        if not problems and manifest.rows != export.fingerprint.rows:
            problems = [f"{manifest.rows:,} rows written, the partition held {export.fingerprint.rows:,}"]
        if problems:
            raise CheckFailed(
                f"archive verification failed for {writer.path}: {problems[0]}: nothing dropped",
                details=problems[1:],
            )
        done.append(_Archived(d, export, manifest, writer.manifest_path, writer.path))
    return done


def _export(
    conn: Connection, d: Decision, write: Callable[[bytes], None] | None, cols: list[str] | None = None
) -> db.Export:
    cols = cols if cols is not None else [c for c, _ in db.columns(conn, d.facts.table)]
    return db.export_partition(conn, d.facts.table, d.facts.name, cols, write)


def _drop(conn: Connection, a: _Archived, lock_timeout_ms: int) -> Outcome:
    f = a.decision.facts
    part = partitions.Partition(f.table, f.name, f.lower, f.upper, False)
    manifest = str(a.manifest_path) if a.manifest_path else None
    sha = archive_digest(a.manifest) if a.manifest else None
    rows = a.export.fingerprint.rows
    why: str | None = None
    for attempt in range(LOCK_ATTEMPTS):
        try:
            db.drop_partition(
                conn,
                part,
                a.export.fingerprint,
                a.export.completions,
                manifest=manifest,
                sha256=sha,
                newest=f.newest if f.table == TASKS else (f.upper if isinstance(f.upper, datetime) else None),
                lock_timeout_ms=lock_timeout_ms,
            )
            reason = a.decision.reason + ("" if manifest else " (no archive: --no-archive)")
            return Outcome(f.table, f.name, f.lower, f.upper, "dropped", reason, rows, manifest)
        except db.Refused as exc:
            why = str(exc)
            break
        except psycopg.errors.LockNotAvailable:
            why = f"the table stayed busy ({LOCK_ATTEMPTS} tries of {lock_timeout_ms} ms for its lock): kept, next run"
            time.sleep(0.2 * (attempt + 1))
        except psycopg.errors.QueryCanceled as exc:
            why = f"the check under the lock exceeded the statement timeout ({first_line(exc)}): kept, next run"
            break
        except psycopg.Error as exc:
            # Anything else (a customer's object depending on it, the server gone): the
            # partition stays whole (its transaction rolled back), its archive goes — a
            # run that fails every hour must not leave a full copy behind every hour.
            if a.manifest_path and a.archive_path:
                files.discard(a.manifest_path, a.archive_path)
            why = f"could not drop it ({first_line(exc)}): kept, its archive removed"
            return Outcome(f.table, f.name, f.lower, f.upper, "failed", why, rows, None)
    if a.manifest_path and a.archive_path:
        files.discard(a.manifest_path, a.archive_path)
    return Outcome(f.table, f.name, f.lower, f.upper, "kept", why or "kept", rows, None)
