"""Retention's pure parts (domain/retention.py, domain/retention_manifest.py): the policy,
its floors, the plan's decisions and the manifest's verification."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.domain import retention as r
from fsar_tui.domain import retention_manifest as m

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


# -- policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("14d", 14 * 86400), ("90d", 90 * 86400), ("36h", 36 * 3600)])
def test_ages_as_operators_write_them(text, seconds):
    assert r.parse_age(text, "--tasks") == seconds


@pytest.mark.parametrize("text", ["", "14", "d", "-3d", "0d", "14 days", "1y", "99999999999999d"])
def test_bad_ages_are_refused_naming_the_option(text):
    with pytest.raises(r.RetentionError, match="^--tasks: "):
        r.parse_age(text, "--tasks")


def test_policy_from_leaves_an_unset_table_alone():
    p = r.policy_from("7d", None)
    assert (p.task_events_s, p.tasks_s, p.empty) == (7 * 86400, None, False)
    assert p.cutoff(r.TASKS, NOW) is None
    assert p.cutoff(r.EVENTS, NOW) == NOW - 7 * DAY
    assert r.policy_from(None, None).empty
    assert p.describe() == {"task_events": "7d", "tasks": None}


def test_floors_come_from_the_failing_now_view_and_the_gates_on_raw_rows():
    gates = [
        r.GateReach("builtin:retry-rate-drift", "retry_rate", 3600, 86400),
        r.GateReach("builtin:p90-drift", "p90_run_time", 3600, 7 * 86400),  # rollups: no floor
        r.GateReach("trust30", "succeeded_without_result_rate", 30 * 86400, None),
    ]
    f = r.floors(gates)
    assert f[r.TASKS].seconds == 30 * 86400 and "trust30" in f[r.TASKS].reason
    assert f[r.EVENTS].seconds == 30 * 86400 and "events" in f[r.EVENTS].reason
    builtin = r.floors(gates[:2])
    assert builtin[r.TASKS] == r.Floor(25 * 3600, "gate builtin:retry-rate-drift (retry_rate) reads 25h of tasks")
    assert builtin[r.EVENTS].seconds == 86400


def test_a_policy_under_a_floor_is_refused_in_one_line():
    f = r.floors([r.GateReach("g", "anomaly_count", 20 * 86400, None)])
    why = r.refusal(r.policy_from("7d", "14d"), f)
    assert why == (
        "tasks 14d is shorter than 20d: gate g (anomaly_count) reads 20d of tasks "
        "(keep at least 20d, or change that gate)"
    )
    assert "\n" not in why
    assert r.refusal(r.policy_from("7d", "20d"), f) is None
    assert "failing-now" in (r.refusal(r.policy_from("12h", None), f) or "")


# -- the plan ---------------------------------------------------------------------------------


def tasks(**kw) -> r.PartitionFacts:
    base = {
        "table": r.TASKS,
        "name": "execution_tasks_p1",
        "lower": 1,
        "upper": 1_000_001,
        "is_default": False,
        "rows": 10,
        "newest": NOW - 30 * DAY,
        "first_created": NOW - 40 * DAY,
    }
    return r.PartitionFacts(**{**base, **kw})


def events(upper: datetime, **kw) -> r.PartitionFacts:
    return r.PartitionFacts(r.EVENTS, "task_events_x", upper - DAY, upper, False, **kw)


POLICY = r.policy_from("7d", "14d")


def test_a_finished_counted_old_range_is_dropped():
    d = r.decide(tasks(), POLICY, NOW)
    assert d.drop and "10 finished task(s)" in d.reason


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        (tasks(is_default=True), "DEFAULT"),
        (tasks(unfinished=2), "2 task(s) queued, running"),
        (tasks(newest=NOW - 13 * DAY), "within 14d"),
        (tasks(newest=None), "unknown"),
        (tasks(uncounted=3), "not counted by the rollups"),
        (tasks(unfolded=True), "not folded"),
        (tasks(receives_new=True), "next task id"),
        (tasks(rows=0), "empty"),
        (tasks(first_created=NOW - DAY), "first task was created"),
    ],
)
def test_every_reason_to_keep_a_range_is_said(facts, why):
    d = r.decide(facts, POLICY, NOW)
    assert not d.drop and why in d.reason


def test_no_policy_for_a_table_keeps_it():
    assert not r.decide(tasks(), r.policy_from("7d", None), NOW).drop
    assert "no tasks retention" in r.decide(tasks(), r.policy_from("7d", None), NOW).reason


def test_event_days_go_when_their_upper_bound_is_past_the_cutoff():
    cutoff = NOW - 7 * DAY
    assert r.decide(events(cutoff), POLICY, NOW).drop
    assert not r.decide(events(cutoff + timedelta(seconds=1)), POLICY, NOW).drop
    assert not r.decide(r.PartitionFacts(r.EVENTS, "d", None, None, True), POLICY, NOW).drop
    assert not r.decide(r.PartitionFacts(r.EVENTS, "open", NOW, None, False), POLICY, NOW).drop


@given(
    age_h=st.integers(24, 2000),
    newest_h=st.integers(0, 3000),
    unfinished=st.integers(0, 3),
    uncounted=st.integers(0, 3),
    unfolded=st.booleans(),
)
def test_a_range_is_dropped_only_when_every_condition_holds(age_h, newest_h, unfinished, uncounted, unfolded):
    policy = r.Policy(tasks_s=age_h * 3600)
    f = tasks(
        newest=NOW - timedelta(hours=newest_h),
        first_created=NOW - timedelta(hours=newest_h + 1),
        unfinished=unfinished,
        uncounted=uncounted,
        unfolded=unfolded,
    )
    d = r.decide(f, policy, NOW)
    safe = newest_h > age_h and not unfinished and not uncounted and not unfolded
    assert d.drop == safe
    assert d.reason and "\n" not in d.reason


# -- manifests ----------------------------------------------------------------------------------


def archive(lines: list[bytes], members: int = 1) -> bytes:
    raw = b"".join(lines)
    if members == 1:
        return gzip.compress(raw)
    cut = len(raw) // 2
    return gzip.compress(raw[:cut]) + gzip.compress(raw[cut:])


def manifest_for(data: bytes, raw: bytes, rows: int, table: str = r.TASKS) -> m.Manifest:
    lower: r.Bound = 1 if table == r.TASKS else NOW - DAY
    upper: r.Bound = 1001 if table == r.TASKS else NOW
    return m.Manifest(
        table=table,
        partition="p",
        lower=lower,
        upper=upper,
        file="p.copy.gz",
        rows=rows,
        bytes_compressed=len(data),
        bytes_uncompressed=len(raw),
        sha256_compressed=hashlib.sha256(data).hexdigest(),
        sha256_uncompressed=hashlib.sha256(raw).hexdigest(),
        columns=[("id", "bigint"), ("at", "timestamp with time zone")],
        schema_revision="0030_retention",
        created_at=NOW.isoformat(),
        fsar_tui_version="0.1.0",
        policy={"tasks": "14d", "task_events": None},
    )


ROWS = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"\\n") + b"\n"), max_size=60)


@settings(max_examples=60)
@given(rows=ROWS, members=st.sampled_from([1, 2]), table=st.sampled_from(r.TABLES), cut=st.integers(1, 50))
def test_a_manifest_round_trips_and_verifies_in_any_chunking(rows, members, table, cut):
    data = archive(rows, members)
    raw = b"".join(rows)
    man = manifest_for(data, raw, len(rows), table)
    back = m.parse_manifest(man.to_json())
    assert back == man
    chunks = [data[i : i + cut] for i in range(0, len(data), cut)]
    assert m.verify(back, chunks) == []


@settings(max_examples=60)
@given(rows=ROWS.filter(bool), where=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_any_flipped_byte_fails_verification(rows, where, flip):
    data = archive(rows)
    man = manifest_for(data, b"".join(rows), len(rows))
    bad = bytearray(data)
    bad[where % len(bad)] ^= flip
    assert m.verify(man, [bytes(bad)]) != []


def test_a_cut_short_or_empty_file_is_named_as_such():
    rows = [b"%d\tx\n" % i for i in range(1000)]
    data = archive(rows)
    man = manifest_for(data, b"".join(rows), len(rows))
    assert "the gzip stream is cut short" in m.verify(man, [data[: len(data) // 2]])
    assert "the file is empty" in m.verify(man, [])
    assert any(p.startswith("not gzip data") for p in m.verify(man, [b"plain text\n"]))


def test_wrong_counts_are_each_named():
    rows = [b"1\ta\n", b"2\tb\n"]
    data = archive(rows)
    man = manifest_for(data, b"".join(rows), 3)
    assert m.verify(man, [data]) == ["row count 2 differs from the manifest's 3"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"format": "other"}, "not a retention manifest"),
        ({"version": 2}, "version 2"),
        ({"table": "ledger_entries"}, "not one of"),
        ({"file": "../etc/passwd"}, "plain file name"),
        ({"rows": -1}, "negative"),
        ({"rows": True}, "'rows'"),
        ({"sha256_compressed": "zz"}, "sha256"),
        ({"columns": []}, "empty"),
        ({"lower": "yesterday"}, "'lower'"),
        ({"copy_format": "binary"}, "copy_format"),
    ],
)
def test_malformed_manifests_are_refused(change, why):
    import json

    data = archive([b"1\n"])
    doc = json.loads(manifest_for(data, b"1\n", 1).to_json())
    doc.update(change)
    if change.get("lower") == "yesterday":
        doc["table"] = "task_events"
    with pytest.raises(m.ManifestError, match=why):
        m.parse_manifest(json.dumps(doc))
    with pytest.raises(m.ManifestError, match="not JSON"):
        m.parse_manifest("{")


def test_columns_that_are_gone_or_changed_are_named():
    archived = [("id", "bigint"), ("note", "text")]
    assert m.column_problem(archived, [("id", "bigint"), ("note", "text"), ("extra", "int")]) is None
    assert "no column(s) note" in (m.column_problem(archived, [("id", "bigint")]) or "")
    assert "note text → jsonb" in (m.column_problem(archived, [("id", "bigint"), ("note", "jsonb")]) or "")


def test_the_trust_gate_floor_on_events_counts_its_baseline():
    # Its 'succeeded' events are read in the baseline window as in the current one.
    trust = r.GateReach("trust", "succeeded_without_result_rate", 3 * r.DAY_S, 7 * r.DAY_S)
    got = r.floors([trust])
    assert got["task_events"].seconds == 10 * r.DAY_S and "gate trust" in got["task_events"].reason
    assert r.refusal(r.policy_from("7d", "30d"), got) == (
        "task_events 7d is shorter than 10d: gate trust (succeeded_without_result_rate) reads 10d of events "
        "(keep at least 10d, or change that gate)"
    )
    assert r.refusal(r.policy_from("10d", "10d"), got) is None


@given(
    window=st.integers(min_value=60, max_value=90 * r.DAY_S),
    baseline=st.one_of(st.none(), st.integers(min_value=60, max_value=90 * r.DAY_S)),
    archived_ago=st.integers(min_value=0, max_value=400 * r.DAY_S),
    metric=st.sampled_from(sorted(r.RAW_TASK_METRICS | {"failure_rate", "roi", "open_blocking_proposals"})),
)
def test_a_gate_is_refused_exactly_when_its_reach_meets_archived_rows(window, baseline, archived_ago, metric):
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    gate = r.GateReach("g", metric, window, baseline)
    newest = now - timedelta(seconds=archived_ago)
    problem = r.archived_problem(gate, {"execution_tasks": newest, "task_events": newest}, now)
    reaches = archived_ago <= window + (baseline or 0)
    assert (problem is not None) == (metric in r.RAW_TASK_METRICS and reaches)
    if problem:
        assert problem.startswith("history archived: gate g reads tasks back to ")
    # Nothing archived, or only the table the gate does not read: never refused.
    assert r.archived_problem(gate, {}, now) is None


def test_only_the_trust_gate_minds_archived_events():
    now = datetime(2026, 11, 30, tzinfo=UTC)
    old_events = {"task_events": now - timedelta(days=2)}
    assert r.archived_problem(r.GateReach("r", "retry_rate", 7 * r.DAY_S, None), old_events, now) is None
    trust = r.archived_problem(r.GateReach("t", "succeeded_without_result_rate", 7 * r.DAY_S, None), old_events, now)
    assert trust is not None and "reads task_events back to 2026-11-23" in trust


def test_a_restored_partition_is_kept_for_the_policy_from_its_restore():
    # Restored to be looked at: the next run must not archive it again at once.
    recent = NOW - 2 * DAY
    kept = r.decide(tasks(restored_at=recent), POLICY, NOW)
    assert not kept.drop and kept.reason.startswith("restored ") and "kept 14d from its restore" in kept.reason
    day = r.decide(events(NOW - 30 * DAY, restored_at=recent), POLICY, NOW)
    assert not day.drop and "kept 7d from its restore" in day.reason
    # Restored longer ago than the policy: treated as any other old partition.
    assert r.decide(tasks(restored_at=NOW - 20 * DAY), POLICY, NOW).drop
    assert r.decide(events(NOW - 30 * DAY, restored_at=NOW - 8 * DAY), POLICY, NOW).drop


def test_a_restore_counts_for_the_partitions_its_range_overlaps_whatever_their_names():
    at = NOW - DAY
    restored = [r.Restore(r.TASKS, None, 1_000_000, at), r.Restore(r.EVENTS, NOW - 40 * DAY, NOW - 39 * DAY, at)]
    # p0 restored into a partition made for its range: another name, the same range.
    assert r.last_restore(tasks(name="execution_tasks_min_1000000", lower=None, upper=1_000_000), restored) == at
    assert r.last_restore(tasks(lower=999_999, upper=2_000_000), restored) == at  # overlaps by one id
    assert r.last_restore(tasks(lower=1_000_000, upper=2_000_000), restored) is None  # [lower, upper): adjacent
    assert r.last_restore(events(NOW - 39 * DAY), restored) == at
    assert r.last_restore(events(NOW - 38 * DAY), restored) is None
