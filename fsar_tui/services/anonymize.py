"""Anonymization: scrub personal data from old task payloads, results and errors
(finished tasks, by when they finished: a queued or running task's payload is still an
agent's input), ledger metadata and stored Stripe events, with the redaction policy —
detectors and fields — in keyset batches, each its own transaction. Only rows that
change are written, and only if they still hold what was read (else they are counted as
skipped and left for the next run), so non-personal data stays byte-identical.
`anonymize.start` is logged before the first write and `anonymize` with the counts at the
end. The CLI face is commands/governance.py.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fsar_tui.domain.redact import policy

DEFAULT_BATCH = 2_000


@dataclass
class ScrubCounts:
    scanned: int = 0
    changed: int = 0  # written (or, in a dry run, that would be)
    skipped: int = 0  # changed by someone else between the read and the write: left for the next run
    findings: Counter[str] = field(default_factory=Counter)


def scrub_row(table: str, row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The row (id, *columns) scrubbed by the policy, or None when nothing in it is personal."""
    p = policy()
    if table == "execution_tasks":
        task_id, payload, result, error = row
        new: tuple[Any, ...] = (task_id, p.value(payload), p.value(result), None if error is None else p.text(error))
    else:  # ledger metadata, Stripe event payloads: one JSON column
        row_id, document = row
        new = (row_id, p.value(document))
    return None if new == tuple(row) else new


def _kinds(old: tuple, new: tuple) -> Counter:
    from fsar_tui.domain.redact import _TOKEN

    before = Counter(_TOKEN.findall(json.dumps(old[1:], default=str)))
    after = Counter(_TOKEN.findall(json.dumps(new[1:], default=str)))
    return after - before


DEFAULT_REASON = "retention: personal data past its keeping period, scrubbed by the redaction policy"


def anonymize(
    conn, *, older_than_s: int, dry_run: bool, batch_size: int, actor: str, reason: str = DEFAULT_REASON
) -> dict[str, ScrubCounts]:
    from fsar_tui import clock
    from fsar_tui.db import governance

    cutoff = clock.now() - timedelta(seconds=older_than_s)
    if not dry_run:
        governance.log_anonymize(conn, actor=actor, cutoff=cutoff, reason=reason, action="anonymize.start")
    out: dict[str, ScrubCounts] = {}
    for table in governance.SCRUBBED:
        counts = out[table] = ScrubCounts()
        for rows in governance.batches(conn, table, cutoff, batch_size):
            counts.scanned += len(rows)
            changes = [(row, new) for row in rows if (new := scrub_row(table, row)) is not None]
            written = len(changes) if dry_run or not changes else governance.write_scrubbed(conn, table, changes)
            counts.changed += written
            counts.skipped += len(changes) - written
            for row, new in changes:
                counts.findings += _kinds(row, new)
    if not dry_run:
        governance.log_anonymize(
            conn,
            actor=actor,
            cutoff=cutoff,
            reason=reason,
            action="anonymize",
            counts={
                t: {"scanned": c.scanned, "changed": c.changed, "skipped": c.skipped, "findings": dict(c.findings)}
                for t, c in out.items()
            },
        )
    return out
