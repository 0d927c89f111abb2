"""A task's attempts, rebuilt from its events trail (pure).

An attempt is an event into 'running' (its number, worker and start) ended by the next
event out of 'running' (its end and outcome: succeeded, failed, cancelled, or queued —
put back: an executor retry, an expired lease or an operator's requeue). Since revision
0022 the event that ends an attempt badly carries the error its writer set with it
(task_events.error); before, only the task's last error was kept (execution_tasks.error,
overwritten by every attempt's end).

So an attempt's error is, in order: the one its ending event recorded; else, for the
latest attempt a worker or the reaper ended (not an operator's cancel), the task's own
error — unless that error is already recorded on another attempt's end (then it is that
attempt's, and this one's end wrote none: an operator's requeue); else none recorded.
A task without a trail (a legacy row, a bulk load without events) gets one attempt from
its own columns.

How an attempt ended, in words (`outcome_label`): a 'queued' end is "failed → retry"
when it has an error (the executor's retry), "lease lost" when that error is the lease
reaper's, and "requeued" when it has none (an operator put it back, or it ended before
revision 0022); a 'failed' end by the reaper is "lease lost" too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

WORKER_ENDS = ("succeeded", "failed", "queued")  # ends that write the task's error (not an operator cancel)
TERMINAL = ("succeeded", "failed", "cancelled")
SAME_PREFIX = 1000  # errors compared on their first characters (the trail keeps 4,096, a read may cut)
LEASE_LOST = "lease expired at "  # how the reaper's error starts (db/executor.REAP_SQL)


@dataclass(frozen=True)
class Attempt:
    number: int
    worker_id: str | None
    queued_at: datetime | None  # when it entered the queue before this start (wait = started - queued)
    started_at: datetime
    ended_at: datetime | None  # None: still running
    outcome: str  # running, succeeded, failed, cancelled, queued
    error: str | None
    error_kept: bool  # the error shown is this attempt's (recorded, or the task's last)

    @property
    def ended_badly(self) -> bool:
        return self.ended_at is not None and self.outcome in ("failed", "queued")

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "worker_id": self.worker_id,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "error": self.error,
            "error_kept": self.error_kept,
        }


def outcome_label(a: Attempt) -> str:
    """How the attempt ended, in the words an operator reads (see the module docstring)."""
    return label_of(a.outcome, a.error)


def label_of(outcome: str, error: str | None) -> str:
    """outcome_label from an attempt's outcome and error (`tasks show` holds them as a dict)."""
    if outcome in ("queued", "failed") and error is not None and error.startswith(LEASE_LOST):
        return "lease lost"
    if outcome == "queued":
        return "failed → retry" if error is not None else "requeued"
    return outcome


def _same(a: str, b: str) -> bool:
    return a[:SAME_PREFIX] == b[:SAME_PREFIX]


def attempts(events: Iterable[Mapping[str, Any]], task: Mapping[str, Any]) -> list[Attempt]:
    """The attempts of `task` (its row: status, attempt, worker_id, queued_at,
    started_at, finished_at, error) from its `events` (oldest first: from_status,
    to_status, attempt, worker_id, at, error)."""
    out: list[Attempt] = []
    entered_queue = None
    for e in events:
        if e["to_status"] == "queued":
            entered_queue = e["at"]
        if e["to_status"] == "running":
            out.append(Attempt(e["attempt"], e["worker_id"], entered_queue, e["at"], None, "running", None, False))
        elif e["from_status"] == "running" and out and out[-1].ended_at is None:
            error = e.get("error")
            out[-1] = replace(out[-1], ended_at=e["at"], outcome=e["to_status"], error=error,
                              error_kept=error is not None)  # fmt: skip
    if not out and task["attempt"] > 0 and task["started_at"] is not None:
        # No trail (a legacy row, or a bulk load without events): what the row itself says.
        ended = task["finished_at"] if task["status"] in TERMINAL else None
        out.append(
            Attempt(
                task["attempt"],
                task["worker_id"],
                task["queued_at"],
                task["started_at"],
                ended,
                task["status"],
                None,
                False,
            )  # fmt: skip
        )
    last_error = task.get("error")
    recorded = [a.error for a in out if a.error is not None]
    if last_error is not None and any(_same(r, last_error) for r in recorded):
        return out
    for i in range(len(out) - 1, -1, -1):
        a = out[i]
        if a.ended_at is not None and a.outcome in WORKER_ENDS:
            if not a.error_kept:
                out[i] = replace(a, error=last_error, error_kept=True)
            break
    return out
