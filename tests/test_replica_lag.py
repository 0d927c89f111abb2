"""The read replica's arithmetic and words, without a server (fsar_tui/domain/replica_lag.py),
the `replica_stale_s` setting, and when a read DSN is no replica at all (session.same_target)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.config import DEFAULT_REPLICA_STALE_S, load_settings
from fsar_tui.domain.replica_lag import (
    MAX_LAG_S,
    lag_seconds,
    lag_text,
    primary_reason,
    reads_label,
    record_end,
    same_database,
    short_label,
    stale_note,
)
from fsar_tui.errors import UsageError
from fsar_tui.session import Session, same_target

BLOCK = 8192
SEGMENT = 16 * 1024 * 1024


def test_an_insert_position_past_a_page_header_is_the_end_of_the_record_before_it():
    # A record that ended exactly on a page boundary: the insert position is past the next
    # page's header, where the replica only gets with the next record.
    assert record_end(5 * BLOCK + 24, block_size=BLOCK, segment_size=SEGMENT) == 5 * BLOCK
    assert record_end(3 * SEGMENT + 40, block_size=BLOCK, segment_size=SEGMENT) == 3 * SEGMENT
    # Anywhere else the insert position is the record's end.
    for lsn in (5 * BLOCK + 32, 5 * BLOCK + 200, 3 * SEGMENT + BLOCK + 100, 3 * SEGMENT + 48, 7 * BLOCK):
        assert record_end(lsn, block_size=BLOCK, segment_size=SEGMENT) == lsn


def test_lag_is_zero_when_everything_the_primary_had_is_replayed_however_old_the_last_transaction():
    # An idle primary: the last replayed transaction is an hour old, and nothing is missing.
    assert lag_seconds(primary_lsn=100, replay_lsn=100, replay_age_s=3600.0, since_caught_up_s=0.5) == 0.0
    assert lag_seconds(primary_lsn=100, replay_lsn=120, replay_age_s=3600.0, since_caught_up_s=None) == 0.0


def test_lag_behind_is_the_tighter_of_the_two_bounds():
    # The first write after an idle hour, not replayed yet: the replica was caught up 0.8 s
    # ago, so its data is at most 0.8 s old — not an hour.
    assert lag_seconds(primary_lsn=200, replay_lsn=100, replay_age_s=3600.0, since_caught_up_s=0.8) == 0.8
    # Replay stuck while transactions keep coming: the last replayed one says it.
    assert lag_seconds(primary_lsn=200, replay_lsn=100, replay_age_s=12.0, since_caught_up_s=40.0) == 12.0
    # The primary did not answer: the time bounds still hold.
    assert lag_seconds(primary_lsn=None, replay_lsn=100, replay_age_s=7.0, since_caught_up_s=None) == 7.0
    # A replica clock behind the primary's (a negative age) bounds nothing: never "lag 0".
    assert lag_seconds(primary_lsn=200, replay_lsn=100, replay_age_s=-0.3, since_caught_up_s=None) is None
    assert lag_seconds(primary_lsn=200, replay_lsn=100, replay_age_s=-120.0, since_caught_up_s=40.0) == 40.0
    # Nothing bounds it: unknown, never a made-up 0.
    assert lag_seconds(primary_lsn=200, replay_lsn=100, replay_age_s=None, since_caught_up_s=None) is None


def test_where_reads_go_and_why():
    ok = {"down": False, "in_recovery": True, "lag_s": 2.0, "max_lag_s": 60.0, "pending": False}
    assert primary_reason(**ok) is None
    assert primary_reason(**{**ok, "pending": True}) == "own write pending on replica"
    assert primary_reason(**{**ok, "lag_s": 75.0}) == "replica lag 75 s > 60 s"
    assert primary_reason(**{**ok, "lag_s": None}) == "replica lag unknown"
    assert primary_reason(**{**ok, "in_recovery": None}) == "connecting to the replica"
    assert primary_reason(**{**ok, "in_recovery": False}) == "read DSN is not a replica: not in recovery"
    # Unreachable says so whatever else is true.
    assert primary_reason(**{**ok, "down": True, "pending": True, "lag_s": None}) == "replica unreachable"


def test_the_header_words():
    assert (
        lag_text(0.0) == "<1 s" and lag_text(0.99) == "<1 s" and lag_text(3.7) == "3 s" and lag_text(None) == "unknown"
    )
    assert reads_label(None, 0.2) == "reads: replica, lag <1 s"
    assert reads_label(None, 14.2, paused=True) == "reads: replica, lag 14 s, replay paused"
    assert reads_label("replica unreachable", None) == "reads: primary (replica unreachable)"
    assert stale_note(None, 12.5, 10.0) == "data 12 s old (replica lag)"
    assert stale_note(None, 10.0, 10.0) == ""  # not older than the threshold
    assert stale_note(None, None, 10.0) == ""
    assert stale_note("own write pending on replica", 30.0, 10.0) == ""  # reads are the primary's: fresh


def test_replica_stale_s_from_file_environment_and_its_bounds(tmp_path):
    assert load_settings(env={}).replica_stale_s == DEFAULT_REPLICA_STALE_S
    config = tmp_path / "config.toml"
    config.write_text("replica_stale_s = 30\n")
    assert load_settings(env={}, config_path=config).replica_stale_s == 30.0
    assert load_settings(env={"FSAR_REPLICA_STALE_S": "2.5"}, config_path=config).replica_stale_s == 2.5
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(UsageError, match="replica_stale_s: expected a positive number of seconds"):
            load_settings(env={"FSAR_REPLICA_STALE_S": bad})


def test_a_read_dsn_naming_the_primary_itself_is_no_replica():
    primary = "postgresql://app@db.example:5432/fsar"
    assert same_target(primary, "host=db.example port=5432 dbname=fsar user=app")
    assert not same_target(primary, "postgresql://app@replica.example:5432/fsar")
    assert not same_target(primary, "postgresql://app@db.example:5433/fsar")
    # No second pool, nothing routed, the header says nothing of reads.
    from fsar_tui.config import Settings

    for read_dsn in (None, primary, "host=db.example port=5432 dbname=fsar user=app"):
        session = Session(primary, Settings(dsn=primary, read_dsn=read_dsn, pooler="none"))
        assert session.replica is None and session.reads_shown() == ("", "")
    session = Session(primary, Settings(dsn=primary, read_dsn="postgresql://app@replica.example/fsar", pooler="none"))
    assert session.replica is not None
    assert session.reads_shown() == ("reads: primary (connecting to the replica)", "")


ages = st.none() | st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(replay_age=ages, since=ages)
def test_a_negative_age_is_ignored_and_the_other_bound_kept(replay_age, since):
    lag = lag_seconds(primary_lsn=200, replay_lsn=100, replay_age_s=replay_age, since_caught_up_s=since)
    usable = [b for b in (replay_age, since) if b is not None and b >= 0]
    assert lag == (min(usable) if usable else None)
    assert lag is None or lag >= 0


def test_a_read_dsn_is_read_only_as_a_replica_of_this_database():
    ours = ("7312345678901234567", "fsar")
    assert same_database(ours, ours) is None
    assert same_database(ours, (ours[0], "postgres")) == "read DSN is not a replica of this database"
    assert same_database(ours, ("7399999999999999999", "fsar")) == "read DSN is not a replica of this database"
    assert (
        same_database(ours, None) == same_database(None, ours) == "checking the read DSN is a replica of this database"
    )
    assert same_database(ours, ("", "fsar")).startswith("read DSN cannot be checked")  # pg_control_system() refused
    ok = {"down": False, "in_recovery": True, "lag_s": 2.0, "max_lag_s": 60.0, "pending": False}
    assert primary_reason(**ok, not_same="read DSN is not a replica of this database") == (
        "read DSN is not a replica of this database"
    )


def test_with_the_primary_away_a_pending_write_reads_the_replica_and_says_so():
    ok = {"down": False, "in_recovery": True, "lag_s": 2.0, "max_lag_s": 60.0, "pending": True}
    assert primary_reason(**ok) == "own write pending on replica"
    assert primary_reason(**ok, primary_answered=False) is None
    assert reads_label(None, 2.0, pending=True) == "reads: replica, lag 2 s, own write not yet on replica"


def test_the_cause_of_an_unreachable_replica_and_the_short_words():
    ok = {"down": True, "in_recovery": None, "lag_s": None, "max_lag_s": 60.0, "pending": False}
    why = 'password authentication failed for user "app"'
    assert primary_reason(**ok, why_down=why) == f"replica unreachable: {why}"
    assert short_label(f"reads: primary (replica unreachable: {why})") == "primary (replica unreachable)"
    assert short_label("reads: replica, lag 13 s, replay paused") == "replica 13 s"
    assert short_label("reads: replica, lag 3 s, own write not yet on replica") == "replica 3 s, own write not on it"


def test_replica_stale_s_at_or_past_the_hard_limit_and_a_malformed_read_dsn_are_refused():
    for value in (str(MAX_LAG_S), "600"):
        with pytest.raises(UsageError, match="replica_stale_s must be below 60 s"):
            load_settings(env={"FSAR_REPLICA_STALE_S": value})
    assert load_settings(env={"FSAR_REPLICA_STALE_S": "59"}).replica_stale_s == 59.0
    with pytest.raises(UsageError, match="invalid read DSN"):
        load_settings(env={"FSAR_READ_DSN": "not a dsn"})


def test_the_check_slows_to_its_steady_pace_only_when_nothing_needs_watching():
    from fsar_tui.read_routing import CHECK_EVERY_S, STEADY_CHECK_EVERY_S, next_check_in

    assert STEADY_CHECK_EVERY_S > CHECK_EVERY_S
    assert next_check_in(reads_on_primary=False, write_pending=False, lag_s=0.0) == STEADY_CHECK_EVERY_S
    # Anything to watch keeps the one-second pace: a pending write (the read-your-writes
    # window closes at a check), reads on the primary (down, behind, not yet known), a lag.
    assert next_check_in(reads_on_primary=False, write_pending=True, lag_s=0.0) == CHECK_EVERY_S
    assert next_check_in(reads_on_primary=True, write_pending=False, lag_s=0.0) == CHECK_EVERY_S
    assert next_check_in(reads_on_primary=False, write_pending=False, lag_s=1.5) == CHECK_EVERY_S
    assert next_check_in(reads_on_primary=False, write_pending=False, lag_s=None) == CHECK_EVERY_S
