"""A seeded history laid out for retention tests: 40 days of tasks in ranges of 400 ids
(about four days each), a day partition of events per day, and two tasks of a month ago
still queued and running, alone in the lowest range — plus every figure the issue says
retention must not change, computed as of one instant. And archives as an attacker or a
disaster leaves them: rows rewritten with the manifest recomputed, column names swapped."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from fsar_tui.db import partitions
from fsar_tui.domain.attribution import METHODS

DAYS = 40
TASKS = 4000
FIRST_ID = 1001  # the first range of STEP ids; ids below hold the two old unfinished tasks
SEED_FIRST = 1101  # the seed's first id: 1001..1100 are for hand-written old tasks
STEP = 400  # ids per task range
TOP = FIRST_ID + STEP * 16  # ranges of STEP ids up to here (past the seed and then some), then one to the top
OLD_QUEUED, OLD_RUNNING = 5, 6
RETIRED_TASK, RETIRED_IDEA = 1001, "idea_retired"


def lay_out(dsn: str) -> None:
    """Small task ranges instead of revision 0029's million-id chunks (empty at head)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for p in partitions.list_partitions(conn, "execution_tasks"):
            if not p.is_default:
                conn.execute(f'ALTER TABLE execution_tasks DETACH PARTITION "{p.name}"')
                conn.execute(f'DROP TABLE "{p.name}"')
        partitions.create_task_partition(conn, None, FIRST_ID)
        for lower in range(FIRST_ID, TOP, STEP):
            partitions.create_task_partition(conn, lower, lower + STEP)
        partitions.create_task_partition(conn, TOP, 10**12)
        conn.execute("SELECT setval('execution_tasks_id_seq', %s, false)", (SEED_FIRST,))


def add_old_unfinished(dsn: str, now: datetime) -> None:
    """A task queued a month ago and one running since then, in the lowest range."""
    month = now - timedelta(days=30)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO execution_tasks (id, task_type, ai_model, status, created_at, queued_at) "
            "VALUES (%s, 'implement_idea', 'gpt-4o', 'queued', %s, %s)",
            (OLD_QUEUED, month, month),
        )
        conn.execute(
            "INSERT INTO execution_tasks (id, task_type, ai_model, status, worker_id, created_at, queued_at, "
            "started_at, lease_expires_at) VALUES (%s, 'implement_idea', 'gpt-4o', 'running', 'w-old', %s, %s, %s, "
            "now() + interval '1 hour')",
            (OLD_RUNNING, month, month, month + timedelta(minutes=1)),
        )


def add_retired_idea(dsn: str, now: datetime) -> None:
    """An idea implemented once, 38 days ago, that still earns inside the 30-day window:
    its completing task lies in a range retention drops (ROI's completing-task attribution
    and the per-idea figures need it, db/idea_completions.py)."""
    done = now - timedelta(days=38)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO execution_tasks (id, task_type, ai_model, status, idea_id, worker_id, attempt, created_at, "
            "queued_at, started_at, finished_at, input_tokens, output_tokens, cost_minor, currency, "
            "compute_cost_minor, result) VALUES (%s, 'idea_implementation', 'claude-3-opus', 'succeeded', %s, 'w-1', "
            "1, %s, %s, %s, %s, 1000, 2000, 12.5, 'USD', 1.25, '{\"ok\": true}')",
            (RETIRED_TASK, RETIRED_IDEA, done - timedelta(hours=1), done - timedelta(hours=1),
             done - timedelta(minutes=10), done),
        )  # fmt: skip
        for n, days_ago in enumerate((20, 5)):
            conn.execute(
                "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, idea_id) "
                "VALUES ('test', %s, 'revenue', 50000, 'USD', %s, %s)",
                (f"retired-{n}", now - timedelta(days=days_ago), RETIRED_IDEA),
            )


GATES = (  # 30-day gates on the rollups, so the gate figures cover the whole window
    ("test:roi-30d", "roi", "30 days", ">=", 0),
    ("test:failure-30d", "failure_rate", "30 days", "<=", 0.5),
    ("test:p90-30d", "p90_run_time", "30 days", "<=", 3600000),
    ("test:cost-30d", "cost_per_success", "30 days", "<=", 1000000),
)


def add_gates(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, metric, window, comparator, threshold in GATES:
            conn.execute(
                "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold) "
                "VALUES (%s, %s, %s::interval, %s, %s)",
                (name, metric, window, comparator, threshold),
            )


def fold(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT fsar_fold_duration_samples()")


def figures(dsn: str, now: datetime) -> dict[Any, Any]:
    """Profiles (every window and grouping), ROI over 30 days (each attribution, every
    breakdown, per idea), every gate's verdict and the drift detector's signals."""
    from fsar_tui.db import drift
    from fsar_tui.db import gates as gate_reads
    from fsar_tui.db.profiles import load_profiles_sync
    from fsar_tui.db.roi import roi_data_sync
    from fsar_tui.services import gates as gate_pass
    from fsar_tui.services import roi_report

    out: dict[Any, Any] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for window in (timedelta(hours=1), timedelta(days=1), timedelta(days=7), timedelta(days=30)):
            for by in (("type", "model"), ("type", "model", "rollout"), ("type",), ("model",)):
                out["profile", window, by] = [repr(p) for p in load_profiles_sync(conn, now - window, now, now, by)]
        data = roi_data_sync(conn, (now - timedelta(days=29)).date(), now.date())
        out["completions"] = data.completions
        for method in METHODS:
            for by in ("type", "model", "idea", "rollout", "day"):
                out["roi", method, by] = roi_report.records(data, by, method)
        for gate in gate_reads.load_gates(conn, enabled_only=False):
            out["gate", gate.name] = gate_pass.evaluate(conn, gate, now)
        out["drift"] = drift.detect_all(conn, now)
    return out


def rows_md5(dsn: str, table: str) -> tuple[int, str]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY t.id)) FROM {table} t").fetchone()
    assert row is not None
    return row[0], row[1]


def clone_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# -- archives as an attacker or a disaster leaves them (tests/test_retention_archive.py) ----


def manifest_doc(manifest: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(manifest.read_text())
    return doc


def archive_of(manifest: Path) -> Path:
    return manifest.with_name(manifest_doc(manifest)["file"])


def write_manifest(manifest: Path, doc: dict[str, Any]) -> None:
    manifest.chmod(0o600)
    manifest.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def rewrite_rows(manifest: Path, edit: Callable[[bytes], bytes]) -> None:
    """A self-consistent tampering: the archive's rows edited and recompressed, and the
    manifest's row count, sizes and both checksums recomputed to match."""
    doc = manifest_doc(manifest)
    archive = archive_of(manifest)
    rows = edit(gzip.decompress(archive.read_bytes()))
    packed = gzip.compress(rows)
    archive.chmod(0o600)
    archive.write_bytes(packed)
    doc.update(
        rows=rows.count(b"\n"),
        bytes_compressed=len(packed),
        bytes_uncompressed=len(rows),
        sha256_compressed=hashlib.sha256(packed).hexdigest(),
        sha256_uncompressed=hashlib.sha256(rows).hexdigest(),
    )
    write_manifest(manifest, doc)


def swap_columns(manifest: Path, a: str, b: str) -> None:
    """The manifest's column list with two names swapped (the data untouched: its
    checksums still hold), so their values would load into each other's column."""
    doc = manifest_doc(manifest)
    cols = doc["columns"]
    i, j = (next(n for n, c in enumerate(cols) if c[0] == name) for name in (a, b))
    cols[i][0], cols[j][0] = cols[j][0], cols[i][0]
    write_manifest(manifest, doc)


def range_rows(dsn: str, table: str, lower: object, upper: object) -> int:
    """The rows of [lower, upper) of `table` (its partition key), wherever they are."""
    key = "id" if table == "execution_tasks" else "at"
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE {key} >= %s AND {key} < %s", (lower, upper)).fetchone()
    assert row is not None
    return int(row[0])


def names_of(dsn: str, table: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {p.name for p in partitions.list_partitions(conn, table)}
