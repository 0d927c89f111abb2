"""The audit pass: the app's scheduled check and the evaluation it shares with `fsar-tui
audit run` (`evaluate`: the gates, then the drift detector, as of one `now`).

The scheduled check runs FIRST_CHECK_AFTER_S after connecting, then every CHECK_EVERY_S,
in a thread, on its own connection:
1. warm artifacts: every rollout target's rollback is rehearsed in a transaction that
   is rolled back (db/rollouts.rehearse) — the screen shows "rollback ready, verified N
   min ago" or the failure in red;
2. `evaluate`: every enabled gate is evaluated and its verdict recorded, then the drift
   detector opens, refreshes or resolves alerts; then verdicts past retention are pruned
   (at most 5,000 a pass; db/gates.prune_runs); after that transaction's commit, by
   the same panel, partition maintenance (db/partitions.ensure_partitions: the
   partitions ahead, rows a DEFAULT partition caught moved out).
3. retention, when config.toml has a `[retention]` policy: at most once every
   `[retention] every` (default 1 h) per process, after the evaluation and outside its
   transaction, services/retention.run applies it (archives, verifies, drops; the
   login must own the tables, else the pass says so in `retention_problem`); skipped in
   read-only mode, one run per database at a time (its own lock, db/retention.py).
Step 2 writes, so it is skipped in read-only mode, and only one running app does it at
a time (a transaction-level advisory lock, tried not waited for: other panels just
read the verdicts). The app also passes `min_interval_s`: a pass that finds verdicts
another panel recorded less than that long ago does not evaluate again, so however
many panels are open the gates and the detector run about once per CHECK_EVERY_S in
total (25 panels each evaluating every minute was 25 passes a minute; issue 18).
A read-only panel still re-hashes artifacts (list_targets) but cannot
rehearse, and says so.

The bound. The row trigger folds finished tasks' samples into the hour rollups only on
about one change in 256, so on a quiet system samples can stay unfolded indefinitely.
Nothing here waits for that: the drift indicators (db/drift.py) and the rollup-backed
gates (db/profiles.py, db/roi.py) read the rollups *and* the unfolded samples in one
statement, and the other gates read the tasks themselves. So a pass counts every task
that finished before it began, folded or not, and an hour is judged by the first pass
that begins after the hour closes: in the app at most CHECK_EVERY_S (60 s) after the
hour closes, plus that pass's own run time (the evaluating panel's; FIRST_CHECK_AFTER_S
after it connects); from cron, at the next `audit run`. How many hours of a shift the
detector needs before it alarms is the detector's business (domain/drift.py: at least
four); traffic after the hour plays no part. The pass reads, it does not fold: it needs
no right to the housekeeping functions (domain/privileges.py) and never takes the fold's
lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from fsar_tui import clock
from fsar_tui.domain.redact import Policy, using_policy
from fsar_tui.domain.redact import policy as current_policy

if TYPE_CHECKING:
    from psycopg import Connection

    from fsar_tui.config import RetentionConfig
    from fsar_tui.domain.gates import Gate, Verdict

CHECK_EVERY_S = 60
# The app's min_interval_s is CHECK_EVERY_S less this: a panel's own next pass (its
# timer, give or take a scheduling delay) still evaluates when no other panel did.
PASS_SLACK_S = 5.0
FIRST_CHECK_AFTER_S = 3.0  # after connecting: the first screen's reads go first
EVALUATOR_LOCK = 727002  # pg advisory lock key: one evaluating panel per database


@dataclass
class Evaluation:
    verdicts: list[tuple[Gate, Verdict]] = field(default_factory=list)
    alerts: tuple[int, int] | None = None  # drift (firing, resolved now); None: not run (one gate asked for)


def evaluate(conn: Connection, gate: str | None = None, now: datetime | None = None) -> Evaluation:
    """Evaluate and record the enabled gates (or the one named), then — for all gates —
    run the drift detector and open/refresh/resolve alerts; both as of `now`, over every
    task finished before it (see the bound above). `conn`: autocommit, or a transaction
    (each gate is then a savepoint)."""
    from fsar_tui.db import drift
    from fsar_tui.services import gates as gate_pass

    now = now or clock.now()
    out = Evaluation(gate_pass.run_gates(conn, gate, now))
    if gate is None:
        out.alerts = drift.apply(conn, drift.detect_all(conn, now))
    return out


@dataclass
class CheckResult:
    at: datetime
    targets: list = field(default_factory=list)  # db.rollouts.Target
    problems: dict[str, str | None] = field(default_factory=dict)  # target -> why a rollback would fail
    rehearsed: bool = False
    gates_evaluated: int | None = None  # None: not this panel's turn (read-only, or another panel holds the lock)
    failing_hard: list[str] = field(default_factory=list)
    alerts_firing: int = 0
    runs_pruned: int = 0  # verdicts past retention deleted by this pass (db/gates.prune_runs)
    prune_problem: str | None = None  # why pruning failed (the verdicts were kept regardless)
    partitions_created: list[str] = field(default_factory=list)  # db/partitions.ensure_partitions, this pass
    partition_problem: str | None = None  # why partition maintenance failed (retried next pass)
    retention: str | None = None  # what this pass's retention run did (None: not due, or not configured)
    retention_problem: str | None = None  # why it could not run


def scheduled_check(
    dsn: str,
    *,
    read_only: bool,
    statement_timeout_ms: int | None = None,
    policy: Policy | None = None,
    retention: RetentionConfig | None = None,
    min_interval_s: float | None = None,
) -> CheckResult:
    """One pass. `policy`: the redaction policy the sensitive-results gate applies — a
    thread does not inherit the caller's context, so the app hands it over. `retention`:
    config.toml's `[retention]`, applied when due (step 3). `min_interval_s`: skip the
    evaluation when a pass recorded verdicts less than that long ago (None: evaluate)."""
    with using_policy(policy or current_policy()):
        result = _scheduled_check(
            dsn, read_only=read_only, statement_timeout_ms=statement_timeout_ms, min_interval_s=min_interval_s
        )
    if retention is not None and not read_only:
        from fsar_tui.services.retention import scheduled_run

        result.retention, result.retention_problem = scheduled_run(dsn, retention, statement_timeout_ms)
    return result


def _scheduled_check(
    dsn: str, *, read_only: bool, statement_timeout_ms: int | None, min_interval_s: float | None = None
) -> CheckResult:
    import psycopg

    from fsar_tui.db import gates, partitions, rollouts
    from fsar_tui.db.connect import connect
    from fsar_tui.db.rows import one
    from fsar_tui.errors import first_line

    result = CheckResult(at=clock.now())
    with connect(dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
        result.targets = rollouts.list_targets(conn)
        for t in result.targets:
            if t.rollback_to is None and t.problem == "no earlier revision":
                result.problems[t.target] = None
            elif read_only:
                result.problems[t.target] = t.problem
            else:
                result.problems[t.target] = rollouts.rehearse(conn, t)
        result.rehearsed = not read_only
        if read_only:
            return result
        # One transaction holding a transaction-level lock (each gate a savepoint inside it):
        # a session lock would outlive us on a PgBouncer server connection in transaction mode.
        with conn.transaction():
            if not one(conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (EVALUATOR_LOCK,)).fetchone())[0]:
                return result
            age = gates.last_pass_age_s(conn) if min_interval_s is not None else None
            if age is not None and min_interval_s is not None and age < min_interval_s:
                return result  # another panel's pass this interval: read its verdicts
            evaluation = evaluate(conn)
            result.gates_evaluated = len(evaluation.verdicts)
            result.failing_hard = [g.name for g, v in evaluation.verdicts if g.hard and v.verdict == "fail"]
            result.alerts_firing = evaluation.alerts[0] if evaluation.alerts else 0
            try:
                with conn.transaction():  # a savepoint: housekeeping failing must not cost the verdicts
                    result.runs_pruned = gates.prune_runs(conn)
            except psycopg.Error as exc:  # e.g. a schema behind head (no 0018 yet)
                result.prune_problem = first_line(exc)
        try:  # after the verdicts' commit, its own transaction: its locks are held for no longer
            result.partitions_created = partitions.ensure_partitions(conn, now=result.at)
        except psycopg.Error as exc:  # a busy table (lock_timeout), a schema behind 0029
            result.partition_problem = first_line(exc)
    return result
