"""The pure parts of retention's archives (domain/retention_manifest.py): the digest a drop
logs (covering the column order), matching an archive to its own drop, pairing restores
with drops, the range cover, and COPY fields in any chunking. The database side is
tests/test_retention_archive.py's."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain import retention_manifest as m

COLUMNS = [("id", "bigint"), ("task_id", "bigint"), ("input_tokens", "bigint"), ("output_tokens", "bigint")]


def a_manifest(**changes: object) -> m.Manifest:
    base = m.Manifest(
        table="task_events",
        partition="task_events_20250101",
        lower=datetime(2025, 1, 1, tzinfo=UTC),
        upper=datetime(2025, 1, 2, tzinfo=UTC),
        file="task_events_20250101.copy.gz",
        rows=10,
        bytes_compressed=100,
        bytes_uncompressed=400,
        sha256_compressed="a" * 64,
        sha256_uncompressed="b" * 64,
        columns=list(COLUMNS),
        schema_revision="0031_retention_reach",
        created_at="2025-02-01T00:00:00+00:00",
        fsar_tui_version="0.1.0",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def dropped_entry(man: m.Manifest, id: int = 1, sha256: str | None = None, **changes: object) -> m.LogEntry:
    entry = m.LogEntry(
        id,
        "dropped",
        man.lower.isoformat() if isinstance(man.lower, datetime) else None,
        man.upper.isoformat() if isinstance(man.upper, datetime) else None,
        man.rows,
        sha256 if sha256 is not None else m.archive_digest(man),
    )
    return replace(entry, **changes)  # type: ignore[arg-type]


@given(st.permutations(COLUMNS))
def test_the_logged_digest_covers_the_column_order(order):
    man = a_manifest()
    moved = replace(man, columns=list(order))
    assert (m.archive_digest(moved) == m.archive_digest(man)) == (list(order) == COLUMNS)
    assert (m.column_order_problem(list(order), COLUMNS) is None) == (list(order) == COLUMNS)


@given(st.lists(st.sampled_from(COLUMNS), unique=True))
def test_columns_dropped_since_keep_the_order(kept):
    in_order = [c for c in COLUMNS if c in kept]
    assert m.column_order_problem(in_order, [*COLUMNS, ("late", "text")]) is None


def test_an_archive_matches_its_own_drop_only():
    man = a_manifest()
    match = m.match_log(man, [dropped_entry(man)])
    assert isinstance(match, m.LogMatch) and not match.legacy and match.sha256 == m.archive_digest(man)
    legacy = m.match_log(man, [dropped_entry(man, sha256=man.sha256_uncompressed)])
    assert isinstance(legacy, m.LogMatch) and legacy.legacy
    assert "no 'dropped' entry" in str(m.match_log(man, []))
    for other, said in [
        (replace(man, rows=11), "rows 11 differ from the 10 logged"),
        (replace(man, sha256_uncompressed="c" * 64), "checksum"),
        (replace(man, upper=datetime(2025, 1, 3, tzinfo=UTC)), "bounds"),
        (replace(man, columns=[COLUMNS[0], COLUMNS[1], COLUMNS[3], COLUMNS[2]]), "checksum"),
    ]:
        found = m.match_log(other, [dropped_entry(man)])
        assert isinstance(found, str) and said in found and "retention_log" in found
    assert "--no-archive" in str(m.match_log(man, [replace(dropped_entry(man), sha256=None)]))


def test_a_partition_dropped_twice_pairs_each_restore_with_its_own_drop():
    first, second = a_manifest(), a_manifest(rows=1, sha256_uncompressed="d" * 64)
    log = [dropped_entry(first, 1), dropped_entry(second, 2)]
    assert isinstance(m.match_log(first, log), m.LogMatch) and isinstance(m.match_log(second, log), m.LogMatch)
    log.append(replace(dropped_entry(second, 3), action="restored"))
    assert isinstance(m.match_log(first, log), m.LogMatch)
    assert "restored already" in str(m.match_log(second, log))
    log.append(replace(dropped_entry(first, 4), action="restored"))
    assert m.open_drops(log) == []
    # Dropped again (the same rows: the same digest) after its restore: restorable again.
    log.append(dropped_entry(first, 5))
    assert isinstance(m.match_log(first, log), m.LogMatch)


@given(st.lists(st.tuples(st.sampled_from(["dropped", "restored"]), st.sampled_from("xyz"))))
def test_open_drops_are_the_drops_not_restored_since(actions):
    log = [m.LogEntry(n, action, None, None, 0, sha) for n, (action, sha) in enumerate(actions)]
    opened = m.open_drops(log)
    for sha in "xyz":
        balance = 0
        for action, s in actions:
            if s == sha:
                balance = balance + 1 if action == "dropped" else max(0, balance - 1)
        assert len([e for e in opened if e.sha256 == sha]) == balance


CUTS = st.lists(st.integers(0, 30), unique=True, max_size=8).map(sorted)


KEEP = st.lists(st.booleans(), min_size=9, max_size=9)  # which of the (at most 9) spans are partitions


@given(cuts=CUTS, keep=KEEP, lower=st.integers(0, 30), size=st.integers(1, 8))
def test_range_cover_agrees_with_every_point(cuts, keep, lower, size):
    bounds: list[int | None] = [None, *cuts, None]
    parts = [(a, b) for (a, b), k in zip(zip(bounds, bounds[1:], strict=False), keep, strict=False) if k]
    upper = lower + size

    def covered(x: int) -> bool:
        return any((a is None or a <= x) and (b is None or x < b) for a, b in parts)

    points = [covered(x) for x in range(lower, upper)]
    want = "whole" if all(points) else "none" if not any(points) else "part"
    assert m.range_cover(parts, lower, upper) == want


@given(
    rows=st.lists(st.tuples(st.integers(1, 10**12), st.text("0123456789-:+ ", max_size=30)), max_size=30),
    cuts=st.lists(st.integers(0, 2000), max_size=6),
)
def test_copy_fields_in_any_chunking(rows, cuts):
    text = b"".join(f"{i}\tx\\ty\t{at}\n".encode() for i, at in rows)
    marks = sorted({0, len(text), *[c for c in cuts if c < len(text)]})
    chunks = [text[a:b] for a, b in zip(marks, marks[1:], strict=False)]
    assert list(m.copy_fields(chunks, [0, 2])) == [(str(i), at) for i, at in rows]
