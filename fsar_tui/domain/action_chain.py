"""Verifying the operator action log's hash chain, outside the database.

Each operator_actions row carries the previous row's hash and its own (revision 0019):

    hash = sha256(field("fsar-operator-actions/2") + field(prev_hash) + field(seq)
                  + field(at as microseconds since 1970-01-01 UTC) + field(actor)
                  + field(claimed_os_user) + field(db_role) + field(action) + field(target)
                  + field(reason) + field(before as jsonb text) + field(after as jsonb text)
                  + field(legacy_hash))

where field(NULL) is the byte "-" and field(text) is its UTF-8 length in decimal, ":",
then its UTF-8 bytes. The code is prefix-free, so the input has exactly one reading:
moving text across a field boundary (target "x|bad deploy", reason "see INC-42" instead
of target "x", reason "bad deploy|see INC-42") changes the hash. The encoding of
revision 0009 joined fields with "|" and had two readings for such rows.

The database has its own check (`fsar_operator_actions_verify()`), but whoever can edit
the log — a superuser with the append-only trigger disabled — can also replace that
function. So `fsar-tui log verify` and `fsar-tui security-audit` recompute every hash
here, from the row's fields, and compare the chain with
- the *head* the chain trigger keeps in the database (operator_log_head: the last seq
  and hash, writable only by the trigger): rows deleted at the end;
- an *anchor* kept outside the database (`log verify`'s anchor file: the last seq and
  hash a previous clean verify saw): a chain rewritten with fresh hashes up to there.
Rows re-chained by revision 0019 keep the hash they had under the old encoding in
`legacy_hash` (itself covered by the new hash), so an anchor written before the
migration still matches.
Pure: rows in, verdict out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

GENESIS = "0" * 64
ENCODING = "fsar-operator-actions/2"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def field(value: str | None) -> bytes:
    """One field of the hash input: "-" for NULL, else `<octets>:<utf-8 bytes>`."""
    if value is None:
        return b"-"
    data = value.encode()
    return str(len(data)).encode() + b":" + data


def epoch_us(at: datetime) -> int:
    """Microseconds since the Unix epoch: how the database renders `at` for the hash."""
    return (at - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class LogRow:
    """One operator_actions row as hashed: `before`/`after` are the jsonb's text as the
    server renders it (`before::text`), or None for SQL NULL."""

    seq: int
    prev_hash: str
    hash: str
    at: datetime
    actor: str
    claimed_os_user: str | None
    db_role: str
    action: str
    target: str
    reason: str | None
    before: str | None
    after: str | None
    legacy_hash: str | None = None


def encode(prev_hash: str, row: LogRow) -> bytes:
    """The bytes a row's hash is taken over (see the module docstring)."""
    return b"".join(
        field(v)
        for v in (
            ENCODING,
            prev_hash,
            str(row.seq),
            str(epoch_us(row.at)),
            row.actor,
            row.claimed_os_user,
            row.db_role,
            row.action,
            row.target,
            row.reason,
            row.before,
            row.after,
            row.legacy_hash,
        )
    )


def link_hash(prev_hash: str, row: LogRow) -> str:
    return hashlib.sha256(encode(prev_hash, row)).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int
    last_seq: int
    last_hash: str
    problem: str | None = None  # one line: the first thing wrong, with its seq

    @property
    def anchor(self) -> tuple[int, str]:
        return self.last_seq, self.last_hash


def verify(
    rows: Iterable[LogRow], anchor: tuple[int, str] | None = None, head: tuple[int, str] | None = None
) -> Verdict:
    """Walk rows in seq order; the first break wins. `anchor`: (seq, hash) kept outside
    the database; `head`: (seq, hash) the database's head row holds, or None to skip."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    last_seq, last_hash = 0, GENESIS
    anchor_seen = anchor is None or anchor[0] == 0

    def broken(problem: str) -> Verdict:
        return Verdict(False, count, last_seq, last_hash, problem)

    for row in rows:
        count += 1
        if row.seq != expected_seq:
            return broken(
                f"seq {expected_seq}–{row.seq - 1} missing (row deleted?) before seq {row.seq}"
                if row.seq > expected_seq
                else f"seq {row.seq} out of order after {last_seq}"
            )
        if row.prev_hash != expected_prev:
            return broken(f"seq {row.seq}: prev_hash does not match the hash of seq {last_seq}")
        if link_hash(row.prev_hash, row) != row.hash:
            return broken(f"seq {row.seq}: content does not match its hash (edited)")
        if anchor is not None and row.seq == anchor[0]:
            if anchor[1] not in (row.hash, row.legacy_hash):
                return broken(f"seq {row.seq}: hash differs from the anchor (chain rewritten up to here)")
            anchor_seen = True
        expected_prev, expected_seq = row.hash, row.seq + 1
        last_seq, last_hash = row.seq, row.hash
    if anchor is not None and not anchor_seen:
        return broken(f"the anchor's seq {anchor[0]} is gone: the log ends at seq {last_seq} (rows deleted at the end)")
    if head is not None:
        if head[0] > last_seq:
            return broken(f"the head records seq {head[0]} but the log ends at seq {last_seq} (last row(s) deleted)")
        if head[0] < last_seq:
            return broken(f"seq {head[0] + 1}–{last_seq} are past the head (appended without the chain trigger)")
        if head[1] != last_hash:
            return broken(f"seq {last_seq}: hash differs from the head's (last row rewritten)")
    return Verdict(True, count, last_seq, last_hash)
