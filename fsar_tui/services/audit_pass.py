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
3. retention, when config.toml has a `[retention]` policy: after the evaluation and
   outside its transaction, services/retention.run applies it (archives, verifies,
   drops; the login must own the tables, else the pass says so in `retention_problem`);
   skipped in read-only mode. When (RetentionSchedule, one per database per process):
   - a run that happened (it dropped, or found nothing to do) or that failed for a
     lasting reason (not the tables' owner, a refused policy, no archive directory, a
     verification failure) waits `[retention] every` (default 1 h) from its end;
   - a run refused because another retention run or restore holds the database's lock
     (another panel, cron, an operator) is tried again at the next pass (a minute): the
     other may be a restore, or fail;
   - before running, the log is read: a partition dropped by anyone less than `every`
     ago (db/retention_lookup.recent_drops) means this interval's run happened
     elsewhere, and the next is due `every` after that drop. So with 25 panels one
     run drops per interval in total; a colliding panel does not run a second time
     after the first completed. A run that dropped nothing writes no log row, so other
     panels cannot see it: each may then plan once per `every`, drops nothing, and
     the lock still keeps them one at a time.
   Each pass carries the schedule's state (`retention_status`) for screen 4.
4. notifications, when config.toml has `[notify]` (services/notify.py): inside step 2's
   transaction (so only the evaluating panel, once) the state changes since the last
   notified ones are claimed — drift alerts, hard gates, aborted canaries, blocking
   proposals, and the readiness step 1 rehearsed; after its commit, what is due is sent
   and every attempt recorded (failed ones retried at later passes, with backoff).
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

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fsar_tui import clock
from fsar_tui.domain.redact import Policy, using_policy
from fsar_tui.domain.redact import policy as current_policy

if TYPE_CHECKING:
    from psycopg import Connection

    from fsar_tui.config import RetentionConfig
    from fsar_tui.db.retention_lookup import RecentDrops
    from fsar_tui.domain.gates import Gate, Verdict
    from fsar_tui.domain.notify_config import NotifyConfig
    from fsar_tui.services.retention import RunReport

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
    canaries: list = field(default_factory=list)  # services/canary_pass.Outcome, one per running canary


def evaluate(conn: Connection, gate: str | None = None, now: datetime | None = None) -> Evaluation:
    """Evaluate and record the enabled gates (or the one named), then — for all gates —
    run the drift detector and open/refresh/resolve alerts, and the canary judge
    (services/canary_pass.py: record, promote, abort); as of `now`, over every
    task finished before it (see the bound above). `conn`: autocommit, or a transaction
    (each gate is then a savepoint)."""
    from fsar_tui.db import drift
    from fsar_tui.services import canary_pass
    from fsar_tui.services import gates as gate_pass

    now = now or clock.now()
    out = Evaluation(gate_pass.run_gates(conn, gate, now))
    if gate is None:
        out.alerts = drift.apply(conn, drift.detect_all(conn, now))
        out.canaries = canary_pass.judge_running(conn, now)  # after the gates: it reads their verdicts
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
    retention_status: RetentionStatus | None = None  # the schedule after this pass (what screen 4 says)
    canaries: list = field(default_factory=list)  # services/canary_pass.Outcome: this pass's judge (evaluating panel)
    canary_problem: str | None = None  # the control messages of its moves that failed
    notify_events: int = 0  # state changes this pass claimed (services/notify.py)
    notify_sent: int = 0  # deliveries that went out at this pass
    notify_failed: int = 0  # attempts that failed at this pass (recorded, retried with backoff)
    notify_problem: str | None = None  # why claiming or delivering failed as a whole


def scheduled_check(
    dsn: str,
    *,
    read_only: bool,
    statement_timeout_ms: int | None = None,
    policy: Policy | None = None,
    retention: RetentionConfig | None = None,
    min_interval_s: float | None = None,
    notify: NotifyConfig | None = None,
) -> CheckResult:
    """One pass. `policy`: the redaction policy the sensitive-results gate applies — a
    thread does not inherit the caller's context, so the app hands it over. `retention`:
    config.toml's `[retention]`, applied when due (step 3). `min_interval_s`: skip the
    evaluation when a pass recorded verdicts less than that long ago (None: evaluate).
    `notify`: config.toml's `[notify]`: the evaluating pass claims the state changes in
    its transaction and sends them after its commit (step 4)."""
    with using_policy(policy or current_policy()):
        result = _scheduled_check(
            dsn,
            read_only=read_only,
            statement_timeout_ms=statement_timeout_ms,
            min_interval_s=min_interval_s,
            notify=notify,
        )
    if retention is None:
        result.retention_status = RetentionStatus(OFF)
    elif read_only:
        result.retention_status = RetentionStatus(READ_ONLY)
    else:
        schedule = _SCHEDULES.setdefault(dsn, RetentionSchedule())
        result.retention, result.retention_problem = schedule.apply(dsn, retention, statement_timeout_ms)
        result.retention_status = schedule.status
    return result


def _scheduled_check(
    dsn: str,
    *,
    read_only: bool,
    statement_timeout_ms: int | None,
    min_interval_s: float | None = None,
    notify: NotifyConfig | None = None,
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
            result.canaries = evaluation.canaries
            try:
                with conn.transaction():  # a savepoint: housekeeping failing must not cost the verdicts
                    result.runs_pruned = gates.prune_runs(conn)
            except psycopg.Error as exc:  # e.g. a schema behind head (no 0018 yet)
                result.prune_problem = first_line(exc)
            if notify is not None:  # claimed under this transaction's lock: one panel notifies
                _notify_claim(conn, notify, result)
        try:  # after the verdicts' commit, its own transaction: its locks are held for no longer
            result.partitions_created = partitions.ensure_partitions(conn, now=result.at)
        except psycopg.Error as exc:  # a busy table (lock_timeout), a schema behind 0029
            result.partition_problem = first_line(exc)
        if notify is not None:  # after the commit: no lock is held while a receiver answers
            _notify_deliver(conn, notify, result)
    return result


def _notify_claim(conn: Connection, cfg: NotifyConfig, result: CheckResult) -> None:
    import psycopg

    from fsar_tui.errors import first_line
    from fsar_tui.services import notify

    refused: list[str] = []
    try:
        with conn.transaction():  # a savepoint: a failing claim must not cost the verdicts
            result.notify_events = notify.claim_changes(conn, cfg, result.at, result.problems, refused)
    except psycopg.Error as exc:  # e.g. a schema behind 0038
        result.notify_problem = first_line(exc)
        return
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        result.notify_problem = f"not claimed: {refused[0]}{more}"


def _notify_deliver(conn: Connection, cfg: NotifyConfig, result: CheckResult) -> None:
    from fsar_tui.errors import first_line
    from fsar_tui.services import notify

    try:
        delivered = notify.deliver_due(conn, cfg)
    except Exception as exc:  # the database failing mid-delivery: said on screen 4, never the pass's end
        result.notify_problem = first_line(exc)
        return
    result.notify_sent, result.notify_failed = delivered.ok, delivered.failed


# -- step 3: retention's schedule ------------------------------------------------------------

OFF, READ_ONLY, RAN, FAILED, BUSY, ELSEWHERE = "off", "read-only", "ran", "failed", "busy", "elsewhere"
# services/retention.run_lock's refusal: the one failure retried at the next pass. Matched
# by its words (it is a CheckFailed like the lasting ones); test_retention_surfacing
# fails if they change.
IN_PROGRESS = "another retention run or restore is in progress"


@dataclass(frozen=True)
class RetentionStatus:
    """Where this panel's retention schedule stands after a pass."""

    state: str  # OFF | READ_ONLY | RAN | FAILED | BUSY | ELSEWHERE
    at: datetime | None = None  # the run, the attempt, or (ELSEWHERE) the newest drop, UTC
    did: str | None = None  # RAN: what the run did; ELSEWHERE: what was dropped
    problem: str | None = None  # FAILED, BUSY: why it could not run
    next_at: datetime | None = None  # the next run no later than this (None: at the next pass)


def summarise(report: RunReport) -> str:
    """A run's report in one line: what it dropped (and where the archives are), and the
    partitions it meant to drop but kept (a busy table, a row changed since its export:
    services/retention._drop words each "… next run")."""
    dropped = [o for o in report.outcomes if o.action == "dropped"]
    failed = [o for o in report.outcomes if o.action == "kept" and o.reason.endswith("next run")]
    if not dropped and not failed:
        return "nothing to do"
    rows = sum(o.rows or 0 for o in dropped)
    done = f"dropped {len(dropped)} partition(s), {rows:,} rows"
    done += f", archived in {report.archive}" if report.archive else (" (no archive)" if dropped else "")
    if failed:
        done += f"; kept {len(failed)} for the next run: {failed[0].name}: {failed[0].reason}"
    return done


class RetentionSchedule:
    """One panel's turn at retention on one database (see the module docstring, step 3).
    `clock_s`: monotonic seconds (tests step it); `after_write`: handed to the run (tests
    act while its lock is held)."""

    def __init__(self, clock_s: Callable[[], float] = time.monotonic) -> None:
        self.clock_s = clock_s
        self.due_s: float | None = None  # monotonic: not before this (None: due now)
        self.status: RetentionStatus | None = None
        self.after_write: Callable[[Path], None] | None = None
        self._running = threading.Lock()  # `e` during a pass: the panel's own run goes once

    def apply(self, dsn: str, cfg: RetentionConfig, statement_timeout_ms: int | None) -> tuple[str | None, str | None]:
        """(what this pass's run did, why it could not run); (None, None) when not due, or
        when a drop less than `every` ago (by anyone) was this interval's run. Never
        raises: a failing retention must not cost the pass its verdicts."""
        if (self.due_s is not None and self.clock_s() < self.due_s) or not self._running.acquire(blocking=False):
            return None, None
        try:
            return self._apply(dsn, cfg, statement_timeout_ms)
        finally:
            self._running.release()

    def _wait(self, seconds: float, status: RetentionStatus) -> None:
        self.due_s = self.clock_s() + seconds
        self.status = status

    def _apply(self, dsn: str, cfg: RetentionConfig, statement_timeout_ms: int | None) -> tuple[str | None, str | None]:
        import psycopg

        from fsar_tui.domain import retention as policy_math
        from fsar_tui.errors import FsarError, first_line
        from fsar_tui.services import retention, retention_archive

        at = clock.now()
        every = timedelta(seconds=cfg.every_s)
        try:
            recent = _recent_drops(dsn, cfg.every_s, statement_timeout_ms)
        except psycopg.Error:
            recent = None  # the run below meets the same problem and says it
        if recent is not None:
            wait = max(0.0, cfg.every_s - recent.age_s)
            did = f"dropped {recent.partitions} partition(s), {recent.rows:,} rows"
            newest = recent.newest_at.astimezone(UTC)
            self._wait(wait, RetentionStatus(ELSEWHERE, newest, did, next_at=at + timedelta(seconds=wait)))
            return None, None
        try:
            policy = policy_math.policy_from(cfg.task_events, cfg.tasks)
            report = retention.run(
                dsn,
                policy,
                archive_root=cfg.archive or retention_archive.default_root(),
                statement_timeout_ms=statement_timeout_ms,
                after_write=self.after_write,
            )
        except (FsarError, psycopg.Error, OSError, policy_math.RetentionError) as exc:
            why = exc.message if isinstance(exc, FsarError) else first_line(exc)
            if why.startswith(IN_PROGRESS):  # someone else's turn: look again at the next pass
                self._wait(0.0, RetentionStatus(BUSY, at, problem=why))
            else:  # lasting: trying every minute would only say it again
                self._wait(cfg.every_s, RetentionStatus(FAILED, at, problem=why, next_at=clock.now() + every))
            return None, why
        did = summarise(report)
        # From the run's end: its own drops are then older than `every` when it is due again.
        self._wait(cfg.every_s, RetentionStatus(RAN, at, did, next_at=clock.now() + every))
        return did, None


_SCHEDULES: dict[str, RetentionSchedule] = {}  # per database: this process's schedule


def _recent_drops(dsn: str, within_s: float, statement_timeout_ms: int | None) -> RecentDrops | None:
    from fsar_tui.db.connect import connect
    from fsar_tui.db.retention_lookup import recent_drops

    with connect(dsn, autocommit=True, statement_timeout_ms=statement_timeout_ms) as conn:
        return recent_drops(conn, within_s)
