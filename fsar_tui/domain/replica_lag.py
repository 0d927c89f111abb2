"""Reads on a streaming replica, in numbers and words: where a WAL position really ends,
how far behind the replica is, whether reads may go to it, and what the header says.

Pure: the session's read routing (fsar_tui/read_routing.py) feeds it what it read from
the primary and the replica (fsar_tui/db/replica.py). LSNs are plain integers (bytes
into the WAL).

Lag, in seconds, is an upper bound on how old the replica's data is:

- 0 when the replica has replayed everything the primary had flushed when it was asked
  (asked first, so the replica's answer is the later one);
- else the smaller of two bounds: the age of the last transaction the replica replayed
  (`pg_last_xact_replay_timestamp()`: everything committed before it is there), and the
  time since the replica was last seen caught up (everything the primary had then is
  there). The first alone is wrong after an idle spell: a primary idle for an hour makes
  the last replayed transaction an hour old, and the first write after it would read as
  an hour of lag for the instant before it is replayed; the second bound caps that at
  the time between two checks.
"""

from __future__ import annotations

# XLogBytePosToRecPtr() places a position that falls on a page boundary after the page's
# header: 24 bytes on an ordinary page, 40 on a segment's first page (MAXALIGNed
# XLogPageHeaderData / XLogLongPageHeaderData, the same on every platform PostgreSQL runs).
SHORT_PAGE_HEADER = 24
LONG_PAGE_HEADER = 40


def record_end(insert_lsn: int, *, block_size: int, segment_size: int) -> int:
    """`pg_current_wal_insert_lsn()` read right after a COMMIT, as the end of the last WAL
    record inserted — the position a replica reports (`pg_last_wal_replay_lsn()`) once it
    has replayed that record. They differ only when the record ended exactly on a page
    boundary: the insert position is then past the next page's header, which the replica
    reaches only with the next record (on an idle primary, up to 15 s later), so a
    read-your-writes window would stay open that long for nothing."""
    if insert_lsn % segment_size == LONG_PAGE_HEADER:
        return insert_lsn - LONG_PAGE_HEADER
    if insert_lsn % block_size == SHORT_PAGE_HEADER:
        return insert_lsn - SHORT_PAGE_HEADER
    return insert_lsn


def lag_seconds(
    *,
    primary_lsn: int | None,
    replay_lsn: int | None,
    replay_age_s: float | None,
    since_caught_up_s: float | None,
) -> float | None:
    """How old the replica's data may be (see the module docstring); None when nothing
    bounds it (no position from the primary and no transaction replayed yet)."""
    if primary_lsn is not None and replay_lsn is not None and replay_lsn >= primary_lsn:
        return 0.0
    bounds = [b for b in (replay_age_s, since_caught_up_s) if b is not None]
    return max(0.0, min(bounds)) if bounds else None


def lag_text(lag_s: float | None) -> str:
    if lag_s is None:
        return "unknown"
    return "<1 s" if lag_s < 1 else f"{int(lag_s)} s"


def primary_reason(
    *,
    down: bool,
    in_recovery: bool | None,
    lag_s: float | None,
    max_lag_s: float,
    pending: bool,
) -> str | None:
    """Why reads go to the primary now, in the header's words; None: they go to the replica.
    `in_recovery` None: the replica has not answered yet; `pending`: an own write the
    replica has not replayed yet (read-your-writes)."""
    if down:
        return "replica unreachable"
    if in_recovery is None:
        return "connecting to the replica"
    if not in_recovery:
        return "read DSN is not a replica: not in recovery"
    if pending:
        return "own write pending on replica"
    if lag_s is None:
        return "replica lag unknown"
    if lag_s > max_lag_s:
        return f"replica lag {lag_text(lag_s)} > {max_lag_s:g} s"
    return None


def reads_label(reason: str | None, lag_s: float | None, *, paused: bool = False) -> str:
    """'reads: replica, lag 3 s' / 'reads: primary (replica unreachable)'."""
    if reason is not None:
        return f"reads: primary ({reason})"
    return f"reads: replica, lag {lag_text(lag_s)}" + (", replay paused" if paused else "")


def stale_note(reason: str | None, lag_s: float | None, stale_s: float) -> str:
    """'data 12 s old (replica lag)' while reads come from a replica further behind than
    `stale_s`; '' otherwise."""
    if reason is not None or lag_s is None or lag_s <= stale_s:
        return ""
    return f"data {int(lag_s)} s old (replica lag)"
