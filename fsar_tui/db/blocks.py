"""What stops execution now, read from the execution_blocks view (the one the claim
reads): the hard gates whose latest verdict failed and that no live override covers.
The FSAR proposals' blocks are read by db/proposals.blocking (with their severity);
this module adds the gates', so the header's banner names every kind of block."""

from __future__ import annotations

from typing import NamedTuple

from psycopg import AsyncConnection

from fsar_tui.db.proposals import blocking
from fsar_tui.domain.sanitize import strip_controls

GATE_BLOCKS_SQL = """
    SELECT ref, task_type, ai_model FROM execution_blocks WHERE source = 'gate' ORDER BY ref
"""


class GateBlock(NamedTuple):
    gate: str
    task_type: str | None  # None: every task type
    ai_model: str | None


async def gate_blocks(conn: AsyncConnection) -> list[GateBlock]:
    cur = await conn.execute(GATE_BLOCKS_SQL)
    return [GateBlock(*row) for row in await cur.fetchall()]


ProposalBanner = tuple[str, str, int]  # (proposal id, task type, severity)
GateBanner = tuple[str, str]  # (gate, scope)


async def banner_blocks(conn: AsyncConnection) -> tuple[tuple[ProposalBanner, ...], tuple[GateBanner, ...]]:
    """The header banner's facts, inert: ((proposal id, task type, severity), …) and
    ((gate, scope), …) — scope "type × model", or "all"."""
    proposals = tuple(
        (strip_controls(ref), strip_controls(task_type or ""), severity)
        for ref, task_type, severity in await blocking(conn)
    )
    gates = tuple(
        (strip_controls(g.gate), strip_controls(" × ".join(p for p in (g.task_type, g.ai_model) if p) or "all"))
        for g in await gate_blocks(conn)
    )
    return proposals, gates
