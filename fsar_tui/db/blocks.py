"""What stops execution now, read from the execution_blocks view (the one the claim
reads): the hard gates whose latest verdict failed and that no live override covers.
The FSAR proposals' blocks are read by db/proposals.blocking (with their severity);
this module adds the gates', so the header's banner names every kind of block — and
the canaries aborted in the last 24 hours on a target nothing was deployed to since
(no later canary, no change of the active revision after the abort): what stopped a
revision's rollout stays in view until someone acts on the target or a day passed."""

from __future__ import annotations

from typing import NamedTuple

from psycopg import AsyncConnection

from fsar_tui.db.proposals import blocking
from fsar_tui.domain.sanitize import one_line, safe_str, strip_controls

GATE_BLOCKS_SQL = """
    SELECT b.ref, b.task_type, b.ai_model, rr.revision
    FROM execution_blocks b LEFT JOIN rollout_revisions rr ON rr.id = b.revision_id
    WHERE b.source = 'gate' ORDER BY b.ref
"""


class GateBlock(NamedTuple):
    gate: str
    task_type: str | None  # None: every task type
    ai_model: str | None
    canary_revision: int | None = None  # a gate scoped to a canary: it blocks that revision only

    def scope(self) -> str:
        """What the block stops, as the banner says it."""
        what = " × ".join(p for p in (self.task_type, self.ai_model) if p) or "all"
        if self.canary_revision is not None:  # the type's other tasks run on stable
            return f"the canary (revision {self.canary_revision}) of {what}"
        return what


async def gate_blocks(conn: AsyncConnection) -> list[GateBlock]:
    cur = await conn.execute(GATE_BLOCKS_SQL)
    return [GateBlock(*row) for row in await cur.fetchall()]


# The abort ends the canary and, for an abort inside a rollback, moves the active
# revision in the same transaction (the same now()): `updated_at <= ended_at` keeps it.
ABORTED_CANARIES_SQL = """
    SELECT r.target, c.end_reason
    FROM rollout_canaries c JOIN rollouts r ON r.id = c.rollout_id
    WHERE c.state = 'aborted' AND c.ended_at > now() - interval '24 hours' AND r.updated_at <= c.ended_at
      AND NOT EXISTS (SELECT 1 FROM rollout_canaries l WHERE l.rollout_id = c.rollout_id AND l.id > c.id)
    ORDER BY c.ended_at DESC, c.id DESC
    LIMIT 100
"""


async def aborted_canaries(conn: AsyncConnection) -> list[tuple[str, str | None]]:
    """(target, why it was aborted) of the canaries aborted in the last 24 hours on a
    target with no canary or deploy since, the newest first."""
    cur = await conn.execute(ABORTED_CANARIES_SQL)
    return [(target, reason) for target, reason in await cur.fetchall()]


ProposalBanner = tuple[str, str, int]  # (proposal id, task type, severity)
GateBanner = tuple[str, str]  # (gate, scope)
CanaryBanner = tuple[str, str]  # (target, why it was aborted)


async def banner_blocks(
    conn: AsyncConnection,
) -> tuple[tuple[ProposalBanner, ...], tuple[GateBanner, ...], tuple[CanaryBanner, ...]]:
    """The header banner's facts, inert: ((proposal id, task type, severity), …),
    ((gate, scope), …) — scope "type × model", or "all" — and ((target, abort reason), …)
    (on one line: a newline shows as a mark; the reason redacted)."""
    proposals = tuple(
        (strip_controls(ref), strip_controls(task_type or ""), severity)
        for ref, task_type, severity in await blocking(conn)
    )
    gates = tuple((strip_controls(g.gate), strip_controls(g.scope())) for g in await gate_blocks(conn))
    # The reason is an operator's (or the judge's) text: redacted as the operator log shows it.
    aborted = tuple((one_line(target), one_line(safe_str(reason))) for target, reason in await aborted_canaries(conn))
    return proposals, gates, aborted
