"""Partitions at the edges (revision 0032, db/partition_functions.py "Limits"): ids near
2^63, a stray id far above the rest, events past year 9999 or before year 1, a legacy
table with such outliers adopted (revision 0029), and an operator asking for too much."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsar_tui.db import partition_functions as pf
from fsar_tui.db import partitions
from fsar_tui.db.migrations import downgrade, migrate
from fsar_tui.domain import retention as policy_math
from support.sql import q, x

CHUNK, MAXB = pf.CHUNK, pf.MAX_BIGINT
HUGE = 9223372036854775000  # the attack's id
TOP = (MAXB // CHUNK) * CHUNK  # the top chunk: [TOP, MAXB)
TASK = "INSERT INTO execution_tasks (id, task_type) VALUES (%s, 'implement_idea')"
EVENT = "INSERT INTO task_events (task_id, to_status, attempt, at) VALUES (1, 'queued', 0, %s::timestamptz)"
SOURCES = "SELECT p.proname::text, p.prosrc FROM pg_proc p WHERE p.proname = ANY (%s) ORDER BY 1"
FINGERPRINT = {  # every row of each table as text: equal means the same rows (year 10000 included)
    t: f"SELECT count(*), md5(string_agg(r::text, '|' ORDER BY r.id)) FROM {t} r"
    for t in ("execution_tasks", "task_events", "ledger_entries")
}


def fingerprint(dsn: str) -> dict[str, tuple]:
    return {table: q(dsn, sql)[0] for table, sql in FINGERPRINT.items()}


def where(dsn: str, table: str, key: str, values: list) -> dict:
    return dict(
        q(dsn, f"SELECT {key}::text, tableoid::regclass::text FROM {table} WHERE {key}::text = ANY (%s)", (values,))
    )


def sources(dsn: str) -> list[tuple[str, str]]:
    return q(dsn, SOURCES, ([fn.name for fn in pf.FUNCTIONS],))


def shipped(functions: tuple[pf.Fn, ...]) -> list[tuple[str, str]]:
    return sorted((fn.name, fn.body) for fn in functions)


def test_0032_replaces_the_functions_and_its_downgrade_puts_0029s_back(db_dsn):
    assert sources(db_dsn) == shipped(pf.FUNCTIONS)
    assert {fn.name for fn in pf.REPLACED_IN_0032} < {fn.name for fn in pf.FUNCTIONS}
    downgrade(db_dsn, "0031_retention_reach")
    assert sources(db_dsn) == shipped(pf.FUNCTIONS_0029) != shipped(pf.FUNCTIONS)
    # The grants survive both ways (CREATE OR REPLACE keeps them).
    granted = "SELECT has_function_privilege('fsar_operator', %s, 'EXECUTE')"
    assert q(db_dsn, granted, (pf.ENSURE.signature,)) == [(True,)]
    migrate(db_dsn)
    assert sources(db_dsn) == shipped(pf.FUNCTIONS)
    assert q(db_dsn, granted, (pf.ENSURE.signature,)) == [(True,)]
    pub = "SELECT count(*) FROM pg_proc WHERE proname = ANY (%s) AND has_function_privilege('public', oid, 'execute')"
    assert q(db_dsn, pub, ([fn.name for fn in pf.FUNCTIONS],)) == [(0,)]


def test_an_id_near_2_63_neither_overflows_nor_drags_the_window(db_dsn):
    x(db_dsn, TASK, (HUGE,))
    x(db_dsn, TASK, (MAXB,))
    now = datetime.now(UTC)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        made = partitions.ensure_partitions(conn, now=now)  # was: bigint out of range
        assert not [m for m in made if m.startswith("execution_tasks_")]  # the window stays at the sequence
        assert where(db_dsn, "execution_tasks", "id", [str(HUGE), str(MAXB)]) == {
            str(HUGE): "execution_tasks_default",
            str(MAXB): "execution_tasks_default",
        }
        # The sequence itself up there: the top chunk ends at 2^63-1, the row moves in.
        conn.execute("SELECT setval('execution_tasks_id_seq', %s)", (HUGE - 10,))
        made = partitions.ensure_partitions(conn, now=now)
        assert f"execution_tasks_{TOP}_{MAXB}" in made
        new = conn.execute("INSERT INTO execution_tasks (task_type) VALUES ('implement_idea') RETURNING id").fetchone()
        assert partitions.ensure_partitions(conn, now=now) == []
        made = partitions.ensure_range(
            conn, first_id=TOP - CHUNK, last_id=MAXB - 1, first_day=now.date(), last_day=now.date()
        )
        assert made == [f"execution_tasks_{TOP - CHUNK}_{TOP}"]
        tasks = partitions.list_partitions(conn, "execution_tasks")
    assert where(db_dsn, "execution_tasks", "id", [str(HUGE), str(new[0]), str(MAXB)]) == {
        str(HUGE): f"execution_tasks_{TOP}_{MAXB}",
        str(new[0]): f"execution_tasks_{TOP}_{MAXB}",
        str(MAXB): "execution_tasks_default",  # the one id no range [lo, hi) of bigints can hold
    }
    assert [(p.lower, p.upper) for p in tasks[-3:-1]] == [(TOP - CHUNK, TOP), (TOP, MAXB)]


def test_the_window_follows_the_bulk_of_ids_not_a_stray_one(db_dsn):
    # Ids written without the sequence (at 1), each within a chunk of the one before: the bulk.
    bulk, stray = [800_000, 1_700_000, 2_600_000, 3_500_000, 4_200_000, 5_100_000, 5_900_000], 500 * CHUNK
    for i in [*bulk, stray]:
        x(db_dsn, TASK, (i,))
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        made = partitions.ensure_partitions(conn, now=datetime.now(UTC))
    # The bulk's chunks, and TASK_IDS_AHEAD past its highest (5.9 M + 2 M): not 500 M's.
    assert sorted(m for m in made if m.startswith("execution_tasks_")) == [
        f"execution_tasks_{n * CHUNK}_{(n + 1) * CHUNK}" for n in range(3, 8)
    ]
    # Beyond the horizon (the bulk's chunk end + MAX_TASK_IDS_AHEAD): left in DEFAULT.
    assert where(db_dsn, "execution_tasks", "id", [str(stray)]) == {str(stray): "execution_tasks_default"}


def bulk_high(seq: int, ids: list[int]) -> int:
    """The model of partition_functions.bulk_high_sql."""
    high, steps = max(seq, 0), 0
    while steps < pf.BULK_STEPS:
        nearer = [i for i in ids if high < i <= min(high + pf.BULK_GAP, MAXB)]
        if not nearer:
            break
        high, steps = max(nearer), steps + 1
    return high


ANY_ID = st.one_of(st.integers(-(2**63), MAXB), st.integers(0, 300 * CHUNK), st.integers(MAXB - 3 * CHUNK, MAXB))
DAY = 86_400
# Seconds from the epoch: anywhere PostgreSQL can hold (4713 BC .. 294276 AD), or near now.
ANY_AT = st.one_of(
    st.integers(-210_000_000_000, 9_200_000_000_000),
    st.integers(-4_000 * DAY, 400 * DAY).map(lambda offset: int(datetime.now(UTC).timestamp()) + offset),
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seq=st.one_of(st.integers(1, 5 * CHUNK), st.integers(MAXB - 3 * CHUNK, MAXB - 1)),
    ids=st.lists(ANY_ID, max_size=6, unique=True),
    ats=st.lists(ANY_AT, max_size=6),
)
def test_ensure_keeps_every_row_and_partitions_only_within_the_horizons(db_dsn, seq, ids, ats):
    now = datetime.now(UTC)
    today = int(now.timestamp()) // DAY * DAY
    with psycopg.connect(db_dsn) as conn:  # one transaction, rolled back: every example starts alike
        conn.execute("SELECT setval('execution_tasks_id_seq', %s)", (seq,))  # (not transactional: set each time)
        for i in ids:
            conn.execute(TASK, (i,))
        for n, at in enumerate(ats):
            conn.execute(
                "INSERT INTO task_events (task_id, to_status, attempt, worker_id, at) "
                "VALUES (1, 'queued', 0, %s, to_timestamp(%s))",
                (f"edge-{n}", at),
            )
        made = partitions.ensure_partitions(conn, now=now)
        tasks = dict(
            conn.execute("SELECT id, tableoid::regclass::text FROM execution_tasks WHERE id = ANY (%s)", (ids,))
        )
        events = conn.execute(
            "SELECT substr(worker_id, 6)::int, tableoid::regclass::text FROM task_events WHERE worker_id LIKE 'edge-%'"
        ).fetchall()
        listed = partitions.list_partitions(conn, "task_events") + partitions.list_partitions(conn, "execution_tasks")
        conn.rollback()
    assert len(made) <= pf.MAX_NEW_PARTITIONS and len(tasks) == len(ids) and len(events) == len(ats)
    assert not [p.name for p in listed if p.opaque]  # nothing made that Python cannot read
    high = bulk_high(seq, ids)
    horizon = min((high // CHUNK + 1) * CHUNK + pf.MAX_TASK_IDS_AHEAD, MAXB)
    for i, part in tasks.items():  # below 3 M: the template's p0 and chunks; else within the horizon
        assert (part == "execution_tasks_default") == (i >= max(3 * CHUNK, horizon)), (i, part, high)
    for n, part in events:
        inside = today - pf.EVENT_DAYS_BEHIND * DAY <= ats[n] < today + (pf.MAX_EVENT_DAYS_AHEAD + 1) * DAY
        assert (part == "task_events_default") == (not inside), (ats[n], part)


def test_events_past_year_9999_stay_in_default_and_bounds_python_cannot_hold_are_opaque(db_dsn):
    odd = ["10000-01-05 00:00:00+00", "5000-01-01 00:00:00+00", "0044-03-15 00:00:00+00 BC"]
    for at in odd:
        x(db_dsn, EVENT, (at,))
    now = datetime.now(UTC)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        made = partitions.ensure_partitions(conn, now=now)  # was: a day partition in year 10000
        assert not [m for m in made if not m.startswith("task_events_20")]
        assert partitions.rows_in_default(conn, "task_events") == 3
        # Partitions an older function or a hand made: listed, never an error.
        conn.execute(
            "CREATE TABLE far PARTITION OF task_events FOR VALUES FROM ('10000-02-01+00') TO ('10000-02-02+00')"
        )
        conn.execute(
            "CREATE TABLE bc PARTITION OF task_events "
            "FOR VALUES FROM ('0100-01-01 00:00:00+00 BC') TO ('0099-01-01 00:00:00+00 BC')"
        )
        conn.execute(
            "CREATE TABLE edge PARTITION OF task_events FOR VALUES FROM ('9999-12-31+00') TO ('10000-01-01+00')"
        )
        listed = partitions.list_partitions(conn, "task_events")
        facts = [policy_math.PartitionFacts("task_events", p.name, p.lower, p.upper, p.is_default) for p in listed]
    by_name = {p.name: p for p in listed}
    assert [p.name for p in listed][0] == "bc" and [p.name for p in listed][-3:] == [
        "edge",
        "far",
        "task_events_default",
    ]
    assert (by_name["bc"].lower, by_name["bc"].upper, by_name["bc"].opaque) == (None, None, True)
    assert (by_name["far"].lower, by_name["far"].upper, by_name["far"].opaque) == (None, None, True)
    assert (by_name["edge"].lower, by_name["edge"].upper) == (datetime(9999, 12, 31, tzinfo=UTC), None)
    assert not [p.name for p in listed if p.opaque and p.name not in ("bc", "far", "edge")]
    # Retention keeps every opaque one (an open-ended range is never past the policy).
    decisions = policy_math.plan(facts, policy_math.Policy(task_events_s=DAY), now + timedelta(days=400))
    assert {d.facts.name for d in decisions if not d.drop} >= {"bc", "far", "edge"}
    assert any(d.drop for d in decisions)  # …while ordinary days past it go


def test_event_partitions_outside_years_1_to_9999_are_refused(db_dsn):
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for fn in ("fsar_create_event_partition", "fsar_cover_event_days"):
            for lower, upper in (
                ("10000-01-05+00", "10000-01-06+00"),
                ("0044-03-15 00:00:00+00 BC", "0044-03-16 00:00:00+00 BC"),
            ):
                with pytest.raises(psycopg.errors.InvalidParameterValue, match="reaches outside"):
                    conn.execute(f"SELECT {fn}(%s::timestamptz, %s::timestamptz)", (lower, upper))
        # The owner's `now` at the very end of time: the window is clipped, not an error.
        made = partitions.ensure_partitions(conn, now=datetime(9999, 12, 30, 12, tzinfo=UTC), event_days_ahead=5)
        assert "task_events_99991230" in made and not [p for p in made if p.startswith("task_events_1")]
        assert not [p.name for p in partitions.list_partitions(conn, "task_events") if p.opaque]


def legacy_with_outliers(dsn: str) -> None:
    """The legacy table at 0028 with ordinary rows, and outliers: ids far above the bulk
    (one referenced by a ledger entry), events in year 5000 and 10000, one in 3 days."""
    x(dsn, "INSERT INTO execution_tasks (id, task_type) SELECT g * 7, 'implement_idea' FROM generate_series(1, 3000) g")
    x(dsn, "SELECT setval('execution_tasks_id_seq', 21000)")
    migrate(dsn, "0028_cost_integrity")
    x(dsn, "UPDATE execution_tasks SET status = 'running', attempt = 1, started_at = now() WHERE id % 10 = 0")
    for i in (HUGE, MAXB, 900_000_000_000, 5 * CHUNK + 7):
        x(dsn, TASK, (i,))
    for at in ("5000-01-01+00", "10000-01-05+00", (datetime.now(UTC) + timedelta(days=3)).isoformat()):
        x(dsn, EVENT, (at,))
    x(
        dsn,
        "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, task_id) "
        "VALUES ('test', 'huge', 'revenue', 100, 'USD', now(), %s)",
        (HUGE,),
    )


def test_adoption_bounds_p0_by_the_bulk_and_keeps_every_outlier(legacy_dsn):
    legacy_with_outliers(legacy_dsn)
    before = fingerprint(legacy_dsn)
    assert before["execution_tasks"][0] == 3008 and before["task_events"][0] > 300

    migrate(legacy_dsn, "0029_partitions")  # was: bigint out of range; p0 up to year 5000 without the huge id

    assert fingerprint(legacy_dsn) == before
    tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    with psycopg.connect(legacy_dsn) as conn:
        assert partitions.list_partitions(conn, "execution_tasks")[0].upper == CHUNK  # the sequence's chunk
        assert partitions.list_partitions(conn, "task_events")[0].upper == tomorrow
    outliers = [str(HUGE), str(MAXB), "900000000000", str(5 * CHUNK + 7)]
    assert set(where(legacy_dsn, "execution_tasks", "id", outliers).values()) == {"execution_tasks_default"}
    # Past tomorrow: years 5000 and 10000 in DEFAULT; the one in 3 days moved to its day.
    future = "SELECT tableoid::regclass::text, count(*) FROM task_events WHERE at >= %s GROUP BY 1 ORDER BY 1"
    in_3_days = f"task_events_{datetime.now(UTC) + timedelta(days=3):%Y%m%d}"
    assert q(legacy_dsn, future, (tomorrow,)) == sorted([("task_events_default", 2), (in_3_days, 1)])
    assert q(legacy_dsn, "SELECT convalidated FROM pg_constraint WHERE conname = 'ledger_entries_task_id_fkey'") == [
        (True,)
    ]  # validated with the referenced outlier in DEFAULT

    migrate(legacy_dsn)
    with psycopg.connect(legacy_dsn, autocommit=True) as conn:
        made = partitions.ensure_partitions(conn, now=datetime.now(UTC))
        assert partitions.rows_in_default(conn, "task_events") == 2  # years 5000 and 10000: past the horizon
    assert f"execution_tasks_{5 * CHUNK}_{6 * CHUNK}" in made
    assert fingerprint(legacy_dsn) == before
    assert set(where(legacy_dsn, "execution_tasks", "id", outliers[:3]).values()) == {"execution_tasks_default"}


def test_adoption_of_events_all_past_tomorrow_keeps_them_without_a_p0(legacy_dsn):
    migrate(legacy_dsn, "0028_cost_integrity")
    x(legacy_dsn, "TRUNCATE task_events")
    x(legacy_dsn, EVENT, ("5000-01-01+00",))
    migrate(legacy_dsn, "0029_partitions")
    assert q(legacy_dsn, "SELECT tableoid::regclass::text, at::text FROM task_events") == [
        ("task_events_default", "5000-01-01 00:00:00+00")
    ]
    assert q(legacy_dsn, "SELECT count(*) FROM pg_class WHERE relname = 'task_events_p0'") == [(0,)]


def test_an_operator_is_held_to_tight_limits_and_a_call_to_max_new_partitions(db_dsn, login):
    operator = login("fsar_operator")
    now = datetime.now(UTC)
    with psycopg.connect(operator, autocommit=True) as conn:
        for ids, days in ((100 * CHUNK, 366), (pf.OPERATOR_MAX_TASK_IDS_AHEAD + 1, 14), (2 * CHUNK, 61)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only the tables' owner may ask"):
                partitions.ensure_partitions(conn, now=now, task_ids_ahead=ids, event_days_ahead=days)
        made = partitions.ensure_partitions(
            conn,
            now=now,
            task_ids_ahead=pf.OPERATOR_MAX_TASK_IDS_AHEAD,
            event_days_ahead=pf.OPERATOR_MAX_EVENT_DAYS_AHEAD,
        )
        assert partitions.ensure_partitions(conn, now=now) == []  # the audit pass's own values: within
    assert 0 < len(made) <= 11 + 61
    # The owner may ask for more, but one call fills at most MAX_NEW_PARTITIONS.
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        calls = []
        while not calls or calls[-1]:
            calls.append(partitions.ensure_partitions(conn, now=now, task_ids_ahead=100 * CHUNK, event_days_ahead=366))
    assert len(calls[0]) == pf.MAX_NEW_PARTITIONS and all(len(c) <= pf.MAX_NEW_PARTITIONS for c in calls)
    assert len(calls) >= 3 and calls[-1] == []


def test_the_operator_limits_leave_the_audit_pass_headroom():
    assert 4 * partitions.TASK_IDS_AHEAD <= pf.OPERATOR_MAX_TASK_IDS_AHEAD <= 10 * CHUNK
    assert 4 * partitions.EVENT_DAYS_AHEAD <= pf.OPERATOR_MAX_EVENT_DAYS_AHEAD <= 62
    assert pf.OPERATOR_MAX_TASK_IDS_AHEAD // CHUNK + 1 + pf.OPERATOR_MAX_EVENT_DAYS_AHEAD + 1 <= pf.MAX_NEW_PARTITIONS


def test_list_partitions_reads_bounds_near_year_10000_in_any_session_time_zone(db_dsn):
    x(db_dsn, "CREATE TABLE late PARTITION OF task_events FOR VALUES FROM ('9999-12-30+00') TO ('9999-12-31 12:00+00')")
    with psycopg.connect(db_dsn) as conn:
        conn.execute("SET TimeZone = 'Pacific/Kiritimati'")  # +14: 9999-12-31 12:00 UTC is year 10000 here
        late = [p for p in partitions.list_partitions(conn, "task_events") if p.name == "late"]
    assert late == [
        partitions.Partition(
            "task_events", "late", datetime(9999, 12, 30, tzinfo=UTC), datetime(9999, 12, 31, 12, tzinfo=UTC), False
        )
    ]
