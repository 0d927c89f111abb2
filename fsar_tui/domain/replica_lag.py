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

A negative age (the replica's clock behind the primary's) says nothing: it is ignored,
and the clock-independent bound alone is used (never turned into a lag of 0).

Identity: a read DSN is read only when it is a replica OF the primary's database — the
same system identifier (`pg_control_system()`, shared by a primary and every physical
replica of it, different for any other cluster) and the same database name
(`same_database`).
"""

from __future__ import annotations

# XLogBytePosToRecPtr() places a position that falls on a page boundary after the page's
# header: 24 bytes on an ordinary page, 40 on a segment's first page (MAXALIGNed
# XLogPageHeaderData / XLogLongPageHeaderData, the same on every platform PostgreSQL runs).
# Beyond it reads go to the primary: twice PostgreSQL's max_standby_streaming_delay.
# replica_stale_s must be below it (config.py), or its mark could never show.
MAX_LAG_S = 60.0

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
    # A negative age is a replica clock behind the primary's: no bound at all (max(0, …)
    # would make it "lag 0" and hide the other bound).
    bounds = [b for b in (replay_age_s, since_caught_up_s) if b is not None and b >= 0]
    return min(bounds) if bounds else None


def same_database(primary: tuple[str, str] | None, replica: tuple[str, str] | None) -> str | None:
    """Why the read DSN is not a replica of the primary's database ((system identifier,
    database name) of each; a None identifier: it could not be read), in the header's
    words; None when it is. Unknown is never taken for the same."""
    if primary is None or replica is None:
        return "checking the read DSN is a replica of this database"
    if not primary[0] or not replica[0]:
        return "read DSN cannot be checked: pg_control_system() not allowed"
    if primary != replica:
        return "read DSN is not a replica of this database"
    return None


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
    why_down: str = "",
    not_same: str | None = None,
    primary_answered: bool = True,
) -> str | None:
    """Why reads go to the primary now, in the header's words; None: they go to the replica.
    `in_recovery` None: the replica has not answered yet; `pending`: an own write the
    replica has not replayed yet (read-your-writes) — which keeps reads on the primary
    only while the primary answers: with it away the replica is the one place left to
    read (`reads_label` then says the write may not show); `not_same`: why the read DSN is
    not a replica of this database (`same_database`); `why_down`: the cause, masked."""
    if down:
        return f"replica unreachable: {why_down}" if why_down else "replica unreachable"
    if in_recovery is None:
        return "connecting to the replica"
    if not in_recovery:
        return "read DSN is not a replica: not in recovery"
    if not_same is not None:
        return not_same
    if pending and primary_answered:
        return "own write pending on replica"
    if lag_s is None:
        return "replica lag unknown"
    if lag_s > max_lag_s:
        return f"replica lag {lag_text(lag_s)} > {max_lag_s:g} s"
    return None


def reads_label(reason: str | None, lag_s: float | None, *, paused: bool = False, pending: bool = False) -> str:
    """'reads: replica, lag 3 s' / 'reads: primary (replica unreachable)'; `pending`: an
    own write the replica has not replayed, read there all the same (the primary away)."""
    if reason is not None:
        return f"reads: primary ({reason})"
    return (
        f"reads: replica, lag {lag_text(lag_s)}"
        + (", replay paused" if paused else "")
        + (", own write not yet on replica" if pending else "")
    )


def short_label(label: str) -> str:
    """The header's words at a narrow width: 'replica 13 s', 'primary (replica unreachable)'
    without the cause, the pending-write note kept (it says the data may lack the write)."""
    if label.startswith("reads: replica, lag "):
        rest = label.removeprefix("reads: replica, lag ")
        lag, _, _ = rest.partition(",")
        return f"replica {lag}" + (", own write not on it" if "own write" in rest else "")
    if label.startswith("reads: primary ("):
        why = label.removeprefix("reads: primary (").removesuffix(")")
        return f"primary ({why.split(':', 1)[0]})"
    return label


def stale_note(reason: str | None, lag_s: float | None, stale_s: float) -> str:
    """'data 12 s old (replica lag)' while reads come from a replica further behind than
    `stale_s`; '' otherwise."""
    if reason is not None or lag_s is None or lag_s <= stale_s:
        return ""
    return f"data {int(lag_s)} s old (replica lag)"
