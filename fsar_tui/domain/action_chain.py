"""Verifying the operator action log's hash chain, outside the database.

Each operator_actions row carries `hash = sha256(prev_hash || '|' || canonical(row))`
and the previous row's hash (revision 0009). The database has its own check
(`fsar_operator_actions_verify()`), but whoever can edit the log — a superuser with the
append-only trigger disabled — can also replace that function. So `fsar-tui log verify`
recomputes every hash here, from the row's canonical text, and also compares the chain
with an *anchor*: the (seq, hash) of the last row a previous verify saw, kept outside
the database. Together they catch:
- an edited row: its hash no longer matches its content;
- a deleted row in the middle: a gap in seq, or a prev_hash that is not the hash before;
- deleted rows at the end, or a chain rewritten from some point on with fresh hashes:
  the anchor's row is missing or has another hash.
Pure: rows in, verdict out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

GENESIS = "0" * 64


def link_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainRow:
    seq: int
    prev_hash: str
    hash: str
    canonical: str


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


def verify(rows: Iterable[ChainRow], anchor: tuple[int, str] | None = None) -> Verdict:
    """Walk rows in seq order; the first break wins."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    last_seq, last_hash = 0, GENESIS
    anchor_seen = anchor is None or anchor[0] == 0
    for row in rows:
        count += 1
        if row.seq != expected_seq:
            return Verdict(
                False,
                count,
                last_seq,
                last_hash,
                f"seq {expected_seq}–{row.seq - 1} missing (row deleted?) before seq {row.seq}"
                if row.seq > expected_seq
                else f"seq {row.seq} out of order after {last_seq}",
            )
        if row.prev_hash != expected_prev:
            return Verdict(
                False, count, last_seq, last_hash, f"seq {row.seq}: prev_hash does not match the hash of seq {last_seq}"
            )
        if link_hash(row.prev_hash, row.canonical) != row.hash:
            return Verdict(
                False, count, last_seq, last_hash, f"seq {row.seq}: content does not match its hash (edited)"
            )
        if anchor is not None and row.seq == anchor[0]:
            if row.hash != anchor[1]:
                return Verdict(
                    False,
                    count,
                    last_seq,
                    last_hash,
                    f"seq {row.seq}: hash differs from the anchor (chain rewritten up to here)",
                )
            anchor_seen = True
        expected_prev, expected_seq = row.hash, row.seq + 1
        last_seq, last_hash = row.seq, row.hash
    if anchor is not None and not anchor_seen:
        return Verdict(
            False,
            count,
            last_seq,
            last_hash,
            f"the anchor's seq {anchor[0]} is gone: the log ends at seq {last_seq} (rows deleted at the end)",
        )
    return Verdict(True, count, last_seq, last_hash)
