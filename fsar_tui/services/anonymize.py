"""Anonymization: scrub personal data from old task payloads, results and errors
(finished tasks, by when they finished: a queued or running task's payload is still an
agent's input), ledger metadata and stored Stripe events, with the redaction policy —
detectors and fields — in keyset batches, each its own transaction. Only rows that
change are written, and only if they still hold what was read (else they are counted as
skipped and left for the next run), so non-personal data stays byte-identical.
`anonymize.start` is logged before the first write and `anonymize` with the counts at the
end. The CLI face is commands/governance.py.

Bounded per row (issue 15: one row with a payload nested 3,000 deep ended
`anonymize --dry-run` with "internal error", so one row blocked the retention job):
documents are read through db/json_adapters.bounded_documents — one nested deeper than
64 levels, larger than AS_TEXT_OVER characters or that Python's parser refuses is
scrubbed as JSON text (domain/json_scrub: the same rules, any depth, linear time; what is
written is still valid JSON) and counted in `as_text`; a row whose scrub fails anyway is
left as it is, named in `unscrubbed`, and the run goes on. Both are in the CLI's output
and the operator log's counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fsar_tui.domain.json_text import JsonText
from fsar_tui.domain.redact import policy, token_counts

DEFAULT_BATCH = 2_000
AS_TEXT_OVER = 4 * 1024 * 1024  # characters: a larger document is scrubbed as text, never parsed


@dataclass
class ScrubCounts:
    scanned: int = 0
    changed: int = 0  # written (or, in a dry run, that would be)
    skipped: int = 0  # changed by someone else between the read and the write: left for the next run
    findings: Counter[str] = field(default_factory=Counter)
    as_text: int = 0  # documents too deep or too large to parse, scrubbed as JSON text
    unscrubbed: list[Any] = field(default_factory=list)  # row ids whose scrub failed: left as they are

    def notes(self) -> str:
        """What the CLI adds to its line for the table ('' when nothing unusual happened)."""
        out = ""
        if self.as_text:
            out += f"; {self.as_text:,} document(s) too deep or too large to parse scrubbed as text"
        if self.unscrubbed:
            shown = ", ".join(str(i) for i in self.unscrubbed[:20]) + (" …" if len(self.unscrubbed) > 20 else "")
            out += f"; {len(self.unscrubbed):,} row(s) NOT scrubbed (left as they are): {shown}"
        return out


def scrub_row(table: str, row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The row (id, *columns) scrubbed by the policy, or None when nothing in it is personal.
    A JSON column read as a JsonText (too deep or too large) is scrubbed as text."""
    p = policy()
    if table == "execution_tasks":
        task_id, payload, result, error = row
        new: tuple[Any, ...] = (task_id, p.value(payload), p.value(result), None if error is None else p.text(error))
    else:  # ledger metadata, Stripe event payloads: one JSON column
        row_id, document = row
        new = (row_id, p.value(document))
    return None if new == tuple(row) else new


def _kinds(old: tuple[Any, ...], new: tuple[Any, ...]) -> Counter[str]:
    """The kinds the scrub added (tokens already in the row are not findings); any depth."""
    return token_counts(list(new[1:])) - token_counts(list(old[1:]))


DEFAULT_REASON = "retention: personal data past its keeping period, scrubbed by the redaction policy"


def _scrub_batch(table: str, rows: list[Any], counts: ScrubCounts) -> list[tuple[Any, Any]]:
    changes = []
    for row in rows:
        counts.as_text += sum(isinstance(v, JsonText) for v in row[1:])
        try:
            new = scrub_row(table, row)
        except Exception:  # one row's failure must not block the job: it is reported, the run goes on
            counts.unscrubbed.append(row[0])
            continue
        if new is not None:
            changes.append((row, new))
    return changes


def anonymize(
    conn, *, older_than_s: int, dry_run: bool, batch_size: int, actor: str, reason: str = DEFAULT_REASON
) -> dict[str, ScrubCounts]:
    from fsar_tui import clock
    from fsar_tui.db import governance
    from fsar_tui.db.json_adapters import bounded_documents

    cutoff = clock.now() - timedelta(seconds=older_than_s)
    if not dry_run:
        governance.log_anonymize(conn, actor=actor, cutoff=cutoff, reason=reason, action="anonymize.start")
    out: dict[str, ScrubCounts] = {}
    with bounded_documents(conn, max_chars=AS_TEXT_OVER):
        for table in governance.SCRUBBED:
            counts = out[table] = ScrubCounts()
            for rows in governance.batches(conn, table, cutoff, batch_size):
                counts.scanned += len(rows)
                changes = _scrub_batch(table, rows, counts)
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
                t: {
                    "scanned": c.scanned,
                    "changed": c.changed,
                    "skipped": c.skipped,
                    "findings": dict(c.findings),
                    "as_text": c.as_text,
                    "unscrubbed": c.unscrubbed[:100],
                }
                for t, c in out.items()
            },
        )
    return out
