"""FSAR proposals in the database (fsar_proposals, revisions 0008 and 0017).

- Ingestion: a batch of parsed reports (domain/fsar_report.py) is one transaction. A
  report already stored with the same sha256 is unchanged (a no-op); the same id with
  another sha256 is a conflict: the batch stores nothing and every conflict is named.
  Each new proposal gets an operator_actions row (`proposal.ingest`).
- Decisions: accept, reject, mark implemented, lift the block, tick or untick a
  checklist item — each one call of a SECURITY DEFINER function (revision 0020, db/governance_functions.py)
  that locks the row, checks that it is still in the state the operator saw (else
  `ProposalChanged` names who changed it), changes it and logs it with the reason; no
  fsar role may write fsar_proposals directly. Ingestion goes through one too.
- Blocking: a proposal with block_execution, not lifted, status new or accepted, is a
  row of the `execution_blocks` view (the same rule the executor's claim honours); the
  banner reads it from there. Rejecting or implementing a proposal also ends its block.
- Checklist: the risks, then the mitigations, numbered from 1 (`Proposal.items()`: the
  numbers the screen and `proposals show` print and `proposals tick N` takes); a tick
  names the state wanted (revision 0023), so asking for the state an item is already in
  changes nothing. The stored keys stay 0-based per list (`risks/0`, `mitigations/1`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from fsar_tui.db import operator_log
from fsar_tui.db.rows import one
from fsar_tui.domain.fsar_report import FsarReport
from fsar_tui.domain.sanitize import strip_controls
from fsar_tui.errors import CheckFailed, UsageError

# action → (statuses it applies to, the status it sets)
DECISIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "accept": (("new",), "accepted"),
    "reject": (("new", "accepted"), "rejected"),
    "implemented": (("new", "accepted"), "implemented"),
}
LIST_LIMIT = 500
LINKED_LIMIT = 200
INT_MAX = 2**31 - 1  # a checklist item's number is a PostgreSQL integer


class ProposalConflict(CheckFailed):
    """Reports whose id is stored with other content: nothing of the batch was stored."""


class ProposalChanged(CheckFailed):
    """The proposal moved on since the operator looked; nothing was changed."""


@dataclass
class IngestResult:
    inserted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProposalRow:
    id: str
    severity: int
    status: str
    block_execution: bool
    block_lifted_at: datetime | None
    task_type: str | None
    reported_at: datetime
    linked: int

    @property
    def blocking(self) -> bool:
        return self.block_execution and self.block_lifted_at is None and self.status in ("new", "accepted")


@dataclass(frozen=True)
class ChecklistItem:
    number: int  # from 1: the risks, then the mitigations
    key: str  # as stored in fsar_proposals.checklist: `risks/0`, `mitigations/1`
    kind: str  # "risks" or "mitigations"
    text: str
    ticked: bool


@dataclass(frozen=True)
class Proposal:
    row: ProposalRow
    body: str
    risks: list[str]
    mitigations: list[str]
    extra_headers: dict[str, Any]
    checklist: dict[str, Any]
    sha256: str
    ingested_at: datetime
    tasks: list[TupleRow]  # (id, task_type, ai_model, status, created_at), newest first, at most LINKED_LIMIT

    def items(self) -> list[ChecklistItem]:
        """The checklist as numbered everywhere (fsar_proposal_tick counts the same way)."""
        rows = [
            (kind, i, text)
            for kind, values in (("risks", self.risks), ("mitigations", self.mitigations))
            for i, text in enumerate(values)
        ]
        return [
            ChecklistItem(n, f"{kind}/{i}", kind, str(text), f"{kind}/{i}" in self.checklist)
            for n, (kind, i, text) in enumerate(rows, start=1)
        ]


def ingest(conn: Connection, reports: list[FsarReport], *, actor: str) -> IngestResult:
    """Store a batch, all or nothing (see the module docstring)."""
    result = IngestResult()
    conflicts: list[str] = []
    seen: dict[str, str] = {}
    with conn.transaction():
        for report in reports:
            if report.id in seen:  # the same report twice in one batch
                if seen[report.id] != report.sha256:
                    conflicts.append(
                        f"{report.id}: two different reports in this batch ({strip_controls(report.source)})"
                    )
                continue
            seen[report.id] = report.sha256
            stored = one(
                conn.execute(
                    "SELECT fsar_proposal_ingest(%s, %s::timestamptz, %s::integer, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        report.id,
                        report.reported_at,
                        report.severity,
                        report.block_execution,
                        report.task_type,
                        report.body,
                        Jsonb(list(report.risks)),
                        Jsonb(list(report.mitigations)),
                        Jsonb(dict(report.extra_headers)),
                        report.sha256,
                        report.source,
                        actor,
                    ),
                ).fetchone()
            )[0]
            if stored == "inserted":
                result.inserted.append(report.id)
                continue
            if stored == report.sha256:
                result.unchanged.append(report.id)
            else:
                conflicts.append(
                    f"{report.id}: stored with sha256 {stored[:12]}…, {strip_controls(report.source)} has "
                    f"{report.sha256[:12]}… (not overwritten)"
                )
        if conflicts:
            # Raising inside the transaction block rolls the whole batch back.
            raise ProposalConflict(f"{len(conflicts)} conflicting report(s); nothing stored", details=conflicts)
    return result


LIST_SQL = f"""
    SELECT p.id, p.severity, p.status, p.block_execution, p.block_lifted_at, p.task_type, p.reported_at,
           (SELECT count(*) FROM execution_tasks t WHERE t.proposal_id = p.id)
    FROM fsar_proposals p
    ORDER BY p.severity DESC, p.reported_at DESC, p.id
    LIMIT {LIST_LIMIT}"""


def list_proposals_sync(conn: Connection) -> list[ProposalRow]:
    return [ProposalRow(*r) for r in conn.execute(LIST_SQL).fetchall()]


async def list_proposals(conn: AsyncConnection) -> list[ProposalRow]:
    return [ProposalRow(*r) for r in await (await conn.execute(LIST_SQL)).fetchall()]


DETAIL_SQL = """
    SELECT p.id, p.severity, p.status, p.block_execution, p.block_lifted_at, p.task_type, p.reported_at,
           (SELECT count(*) FROM execution_tasks t WHERE t.proposal_id = p.id),
           p.body, p.risks, p.mitigations, p.extra_headers, p.checklist, p.source_sha256, p.ingested_at
    FROM fsar_proposals p WHERE p.id = %s"""
LINKED_SQL = f"""
    SELECT id, task_type, ai_model, status, created_at FROM execution_tasks
    WHERE proposal_id = %s ORDER BY id DESC LIMIT {LINKED_LIMIT}"""


def _proposal(row: TupleRow, tasks: list[TupleRow]) -> Proposal:
    body, risks, mitigations, extra_headers, checklist, sha256, ingested_at = row[8:]
    return Proposal(
        ProposalRow(*row[:8]), body, risks, mitigations, extra_headers, checklist, sha256, ingested_at, tasks=tasks
    )


def get_proposal_sync(conn: Connection, proposal_id: str) -> Proposal:
    row = conn.execute(DETAIL_SQL, (proposal_id,)).fetchone()
    if row is None:
        raise UsageError(f"no proposal {proposal_id!r}")
    return _proposal(row, conn.execute(LINKED_SQL, (proposal_id,)).fetchall())


async def get_proposal(conn: AsyncConnection, proposal_id: str) -> Proposal | None:
    row = await (await conn.execute(DETAIL_SQL, (proposal_id,))).fetchone()
    if row is None:
        return None
    return _proposal(row, await (await conn.execute(LINKED_SQL, (proposal_id,))).fetchall())


BLOCKING_SQL = """
    SELECT b.ref, b.task_type, p.severity FROM execution_blocks b JOIN fsar_proposals p ON p.id = b.ref
    WHERE b.source = 'proposal' ORDER BY p.severity DESC, p.reported_at DESC"""


def blocking_sync(conn: Connection) -> list[tuple[str, str | None, int]]:
    """(id, task type, severity) of every proposal blocking execution now."""
    return conn.execute(BLOCKING_SQL).fetchall()


async def blocking(conn: AsyncConnection) -> list[tuple[str, str | None, int]]:
    return await (await conn.execute(BLOCKING_SQL)).fetchall()


def _outcome(conn: Connection, proposal_id: str, sql: str, params: tuple[object, ...]) -> str:
    """Run one of the decision functions in a transaction; 'missing' is a usage error."""
    with conn.transaction():
        outcome: str = one(conn.execute(sql, params).fetchone())[0]
    if outcome == "missing":
        raise UsageError(f"no proposal {proposal_id!r}")
    return outcome


def _who_changed(conn: Connection, proposal_id: str) -> str:
    who = operator_log.last_change(conn, f"proposal:{proposal_id}")
    return f" ({who[1]} by {who[0]} at {who[2].astimezone(UTC):%H:%M:%S} UTC)" if who else ""


def _need_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise UsageError("a reason is required")


def decide(
    conn: Connection, proposal_id: str, action: str, *, actor: str, reason: str, expected_status: str | None = None
) -> str:
    """accept / reject / implemented; returns the new status. `actor`: the OS user, as
    claimed (the database records the role)."""
    if action not in DECISIONS:
        raise UsageError(f"unknown decision {action!r}: use {', '.join(DECISIONS)}")
    _need_reason(reason)
    allowed, new = DECISIONS[action]
    outcome, _, status = _outcome(
        conn,
        proposal_id,
        "SELECT fsar_proposal_decide(%s, %s, %s, %s, %s)",
        (proposal_id, action, expected_status, reason, actor),
    ).partition(":")
    if outcome == "changed":
        raise ProposalChanged(
            f"proposal {proposal_id} is now {status}, not {expected_status}"
            f"{_who_changed(conn, proposal_id)}; nothing changed"
        )
    if outcome == "not-applicable":
        raise CheckFailed(f"proposal {proposal_id} is {status}: {action} applies to {' or '.join(allowed)}")
    return new


def lift_block(conn: Connection, proposal_id: str, *, actor: str, reason: str) -> None:
    _need_reason(reason)
    outcome, _, status = _outcome(
        conn, proposal_id, "SELECT fsar_proposal_lift_block(%s, %s, %s)", (proposal_id, reason, actor)
    ).partition(":")
    if outcome == "no-block":
        raise CheckFailed(f"proposal {proposal_id} does not block execution")
    if outcome == "lifted-already":
        raise ProposalChanged(
            f"the block of proposal {proposal_id} was already lifted{_who_changed(conn, proposal_id)}"
        )
    if outcome == "ended":
        raise CheckFailed(f"proposal {proposal_id} is {status}: its block already ended, nothing to lift")


def tick(conn: Connection, proposal_id: str, item: int, *, ticked: bool, actor: str, reason: str = "") -> bool:
    """Tick (`ticked`) or untick checklist item `item`, numbered from 1 (`Proposal.items()`).
    Returns whether it changed: False when it already was in that state (nothing written).
    A number out of range is a usage error, nothing written; the log row names the number."""
    outcome, _, total = _outcome(
        conn,
        proposal_id,
        "SELECT fsar_proposal_tick(%s, %s::integer, %s, %s, %s)",
        (proposal_id, item if 0 < item <= INT_MAX else 0, ticked, reason, actor),  # 0: asks how many there are
    ).partition(":")
    if outcome == "no-item":
        have = f"its items are numbered 1 to {total}" if total != "0" else "it has no risks or mitigations"
        raise UsageError(f"proposal {proposal_id} has no checklist item {item}: {have}")
    return outcome in ("ticked", "unticked")
