"""Audit and rollback benchmarks (issue: confirmed rollback to committed transaction
≤ 200 ms; `audit run` over 10 M tasks ≤ 2 s).

Same database, same run:
- `audit run` as the CLI does it — every enabled gate measured, judged and recorded,
  then the drift detector over every type × model — against the naive evaluation of the
  rollup-backed part: failure rate, p90 (percentile_cont), cost per success over the
  window and baseline, and the hourly drift series, all as GROUP BYs over
  execution_tasks.
- rollback: from the operator's confirmation to the committed transaction
  (db/rollouts.rollback: lock, optimistic check, re-hash, copy, NOTIFY, operator log),
  alternating rollback and roll-forward on one target, against a naive client-side copy
  (LOCK TABLE, artifact fetched, re-serialised and re-hashed in Python, inserted back).
On 1,000,000 seeded tasks (BENCH_SCALE=small: 100,000) and, when BENCH_QUEUE_DSN names
one, on that database as it is (audit run only: a bench must not roll back its targets).
"""

from __future__ import annotations

import json
import os
import time

from psycopg.types.json import Jsonb

from bench.common import median, print_table, seeded_database
from fsar_tui.db import rollouts
from fsar_tui.db.connect import connect
from fsar_tui.domain.rollouts import artifact_sha256
from fsar_tui.services.audit_pass import evaluate

NAIVE_GATES_SQL = """
    SELECT count(*) FILTER (WHERE status = 'failed')::float8 / nullif(count(*) FILTER (WHERE status IN
               ('succeeded', 'failed')), 0),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
               FILTER (WHERE status IN ('succeeded', 'failed')),
           sum(cost_minor)::float8 / nullif(count(*) FILTER (WHERE status = 'succeeded'), 0)
    FROM execution_tasks WHERE finished_at >= now() - %s::interval AND finished_at < now() - %s::interval"""

NAIVE_DRIFT_SQL = """
    SELECT date_trunc('hour', finished_at), task_type, ai_model,
           count(*) FILTER (WHERE status = 'failed'), count(*),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)), sum(cost_minor)
    FROM execution_tasks WHERE finished_at >= now() - interval '66 hours' AND status IN ('succeeded', 'failed')
    GROUP BY 1, 2, 3"""


def _timed(fn, repeat: int) -> tuple[list[float], object]:
    samples, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t) * 1000)
    return samples, result


def audit_rows(dsn: str) -> tuple[str, list[list[object]]]:
    with connect(dsn, autocommit=True, statement_timeout_ms=0) as conn:
        tasks = conn.execute("SELECT count(*) FROM execution_tasks").fetchone()[0]

        def audit_run():
            return evaluate(conn).verdicts  # what `audit run` and the scheduled pass run

        fast, verdicts = _timed(audit_run, 5)

        def naive():
            for window, before in (("1 hour", "0"), ("25 hours", "1 hour"), ("169 hours", "1 hour")):
                conn.execute(NAIVE_GATES_SQL, (window, before)).fetchall()
            return conn.execute(NAIVE_DRIFT_SQL).fetchall()

        slow, _ = _timed(naive, 1 if tasks > 2_000_000 else 3)
    ours, theirs = median(fast), median(slow)
    errors = [g.name for g, v in verdicts if v.verdict == "error"]
    return f"{tasks:,} tasks", [
        ["audit run: gates + drift", f"{ours:.0f} ms", f"{theirs / ours:,.0f}× faster", "≤ 2 s at 10 M"],
        ["naive: GROUP BY / percentile_cont over tasks", f"{theirs:,.0f} ms", "1×", ""],
        ["gates evaluated (errors)", f"{len(verdicts)} ({len(errors)})", ", ".join(errors), "0 errors"],
    ]


def rollback_rows(dsn: str, n: int = 20) -> list[list[object]]:
    with connect(dsn, autocommit=True, statement_timeout_ms=0) as conn:
        target = next(t for t in rollouts.list_targets(conn) if t.ready)

        def once():
            t = next(x for x in rollouts.list_targets(conn) if x.target == target.target)
            start = time.perf_counter()
            rollouts.rollback(conn, t.target, t.rollback_to, expected_active=t.active, actor="bench", reason="bench")
            return (time.perf_counter() - start) * 1000

        ours = [once() for _ in range(n)]

        def naive_once():
            start = time.perf_counter()
            with conn.transaction():
                conn.execute("LOCK TABLE rollouts, rollout_revisions IN EXCLUSIVE MODE")
                rid, active = conn.execute(
                    "SELECT id, active_revision FROM rollouts WHERE target = %s", (target.target,)
                ).fetchone()
                (artifact,) = conn.execute(
                    "SELECT artifact FROM rollout_revisions WHERE rollout_id = %s AND revision = %s", (rid, active - 1)
                ).fetchone()
                copy = json.loads(json.dumps(artifact))
                sha = artifact_sha256(copy)
                new = conn.execute(
                    "INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256, created_by, "
                    "reason, rollback_of) SELECT %s, max(revision) + 1, %s, %s, 'bench', 'naive', %s "
                    "FROM rollout_revisions WHERE rollout_id = %s RETURNING revision",
                    (rid, Jsonb(copy), sha, active - 1, rid),
                ).fetchone()[0]
                conn.execute("UPDATE rollouts SET active_revision = %s WHERE id = %s", (new, rid))
            return (time.perf_counter() - start) * 1000

        naive = [naive_once() for _ in range(n)]
    ours.sort()
    return [
        [
            "rollback: confirm → committed (median)",
            f"{median(ours):.1f} ms",
            f"{median(naive) / median(ours):.1f}× the naive time",
            "≤ 200 ms",
        ],
        ["rollback: slowest of " + str(n), f"{ours[-1]:.1f} ms", "", "≤ 200 ms"],
        ["naive client-side copy under a table lock (median)", f"{median(naive):.1f} ms", "1×", ""],
    ]


def run(server_dsn: str) -> None:
    with seeded_database(server_dsn, seed=13) as (dsn, _):
        label, rows = audit_rows(dsn)
        rows += rollback_rows(dsn)
    print_table(f"Audit and rollback, {label}", ["measure", "value", "ratio", "goal"], rows)
    existing = os.environ.get("BENCH_QUEUE_DSN")
    if existing:
        label, rows = audit_rows(existing)
        print_table(f"audit run on BENCH_QUEUE_DSN ({label})", ["measure", "value", "ratio", "goal"], rows)
