"""`fsar-tui log verify` / `log list` against a real database: edits, deletions (also at the
end) and rewritten chains made by a superuser with the append-only trigger disabled are
found; the pure chain check catches any single change to a random chain, and the hash
input has one reading. The tamper cases of issue 15 are tests/test_log_tamper.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.domain.action_chain import GENESIS, LogRow, encode, field, link_hash, verify
from support.sql import q, x


def record_actions(dsn, n=6):
    for i in range(1, n + 1):
        x(
            dsn,
            "INSERT INTO operator_actions (actor, action, target, reason, before, after) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (
                f"ops{i % 2}",
                "retry" if i % 3 else "cancel",
                f"task:{100 + i}",
                f"reason «{i}»",
                json.dumps({"status": "failed", "n": i}),
                json.dumps({"status": "queued"}),
            ),
        )


def as_superuser_without_trigger(dsn, sql, params=None, trigger="operator_actions_append_only"):
    table = "operator_log_head" if trigger == "operator_log_head_guard" else "operator_actions"
    x(dsn, f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    try:
        x(dsn, sql, params)
    finally:
        x(dsn, f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")


REHASH_SQL = """
    UPDATE operator_actions a SET
        prev_hash = coalesce((SELECT hash FROM operator_actions WHERE seq = a.seq - 1), repeat('0', 64)),
        hash = fsar_operator_actions_hash(
            coalesce((SELECT hash FROM operator_actions WHERE seq = a.seq - 1), repeat('0', 64)), a.seq, a.at,
            a.actor, a.claimed_os_user, a.db_role, a.action, a.target, a.reason, a.before, a.after, a.legacy_hash)
    WHERE seq = %s"""


def rewrite_from(dsn, first, last):
    """What a superuser who knows the encoding does: recompute every hash from `first` on,
    and the head, so that the database alone sees a consistent chain."""
    for seq in range(first, last + 1):
        as_superuser_without_trigger(dsn, REHASH_SQL, (seq,))
    as_superuser_without_trigger(
        dsn,
        "UPDATE operator_log_head SET seq = a.seq, hash = a.hash FROM "
        "(SELECT seq, hash FROM operator_actions ORDER BY seq DESC LIMIT 1) a",
        trigger="operator_log_head_guard",
    )


def verify_cli(run_cli, dsn, anchor):
    return run_cli("log", "verify", "--dsn", dsn, "--anchor", str(anchor))


def test_an_intact_log_verifies_and_agrees_with_the_database(db_dsn, run_cli, tmp_path):
    record_actions(db_dsn)
    out = verify_cli(run_cli, db_dsn, tmp_path / "a.json")
    assert out.returncode == 0, out.stderr
    assert "6 rows, last seq 6" in out.stdout
    assert q(db_dsn, "SELECT fsar_operator_actions_verify()") == [(None,)]
    again = verify_cli(run_cli, db_dsn, tmp_path / "a.json")
    assert again.returncode == 0 and "anchor at seq 6 still matches" in again.stdout


def test_an_update_with_the_trigger_disabled_is_found(db_dsn, run_cli, tmp_path):
    record_actions(db_dsn)
    as_superuser_without_trigger(db_dsn, "UPDATE operator_actions SET reason = 'nothing to see' WHERE seq = 3")
    out = verify_cli(run_cli, db_dsn, tmp_path / "a.json")
    assert out.returncode == 1
    assert out.stderr.strip() == "fsar-tui: operator log broken: seq 3: content does not match its hash (edited)"


def test_a_deleted_row_is_found(db_dsn, run_cli, tmp_path):
    record_actions(db_dsn)
    as_superuser_without_trigger(db_dsn, "DELETE FROM operator_actions WHERE seq = 4")
    out = verify_cli(run_cli, db_dsn, tmp_path / "a.json")
    assert out.returncode == 1 and "seq 4–4 missing" in out.stderr


def test_rows_deleted_at_the_end_and_a_rewritten_chain_are_found_by_the_anchor(db_dsn, run_cli, tmp_path):
    record_actions(db_dsn)
    anchor = tmp_path / "a.json"
    assert verify_cli(run_cli, db_dsn, anchor).returncode == 0  # anchor at seq 6
    as_superuser_without_trigger(db_dsn, "DELETE FROM operator_actions WHERE seq >= 5")
    assert q(db_dsn, "SELECT fsar_operator_actions_verify()") == [(5,)]  # the head still says 6
    out = verify_cli(run_cli, db_dsn, anchor)
    assert out.returncode == 1 and "anchor's seq 6 is gone" in out.stderr
    # A superuser who edits seq 2 and recomputes every later hash and the head leaves a
    # consistent chain; only the anchor (kept outside the database) still knows the old hashes.
    record_actions(db_dsn, 2)  # seq 7 and 8 (the head went on from 6)
    as_superuser_without_trigger(db_dsn, "UPDATE operator_actions SET seq = seq - 2 WHERE seq > 6")
    as_superuser_without_trigger(db_dsn, "UPDATE operator_actions SET reason = 'rewritten' WHERE seq = 2")
    rewrite_from(db_dsn, 2, 6)
    assert q(db_dsn, "SELECT fsar_operator_actions_verify()") == [(None,)]
    assert run_cli("log", "verify", "--dsn", db_dsn, "--anchor", str(tmp_path / "fresh.json")).returncode == 0
    out = verify_cli(run_cli, db_dsn, anchor)
    assert out.returncode == 1 and "seq 6: hash differs from the anchor" in out.stderr


def test_an_anchor_taken_before_revision_0019_still_matches(db_dsn, run_cli, tmp_path):
    """Rows re-chained by 0019 keep their old hash in legacy_hash, which anchors may name."""
    record_actions(db_dsn, 3)
    as_superuser_without_trigger(db_dsn, "UPDATE operator_actions SET legacy_hash = repeat('e', 64) WHERE seq = 3")
    rewrite_from(db_dsn, 3, 3)  # as the migration left it: legacy_hash covered by the new hash
    anchor = tmp_path / "a.json"
    verify_cli(run_cli, db_dsn, anchor)
    key = next(iter(json.loads(anchor.read_text())))
    anchor.write_text(json.dumps({key: [3, "e" * 64]}))
    out = verify_cli(run_cli, db_dsn, anchor)
    assert out.returncode == 0 and "anchor at seq 3 still matches" in out.stdout, out.stderr
    anchor.write_text(json.dumps({key: [3, "f" * 64]}))
    assert "seq 3: hash differs from the anchor" in verify_cli(run_cli, db_dsn, anchor).stderr


def test_log_list_filters(db_dsn, run_cli):
    record_actions(db_dsn)
    out = run_cli("log", "list", "--dsn", db_dsn, "--action", "cancel", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["seq"] for r in rows] == [6, 3] and all(r["action"] == "cancel" for r in rows)
    assert {(r["actor"], r["claimed_os_user"]) for r in rows} == {("postgres", "ops0"), ("postgres", "ops1")}
    table = run_cli("log", "list", "--dsn", db_dsn, "--actor", "ops1", "--target", "task:10", "--since", "1h")
    assert table.returncode == 0 and table.stdout.count("claims ops1") == 3
    bad = run_cli("log", "list", "--dsn", db_dsn, "--since", "yesterday")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def row(seq, reason, prev=GENESIS, **fields):
    base = LogRow(
        seq,
        prev,
        "",
        T0 + timedelta(seconds=seq),
        "fsar_app",
        "alice",
        "fsar_app",
        "retry",
        f"task:{seq}",
        reason,
        '{"status": "failed"}',
        None,
    )
    base = replace(base, **fields)
    return replace(base, hash=link_hash(prev, base))


def chain(reasons):
    rows, prev = [], GENESIS
    for seq, reason in enumerate(reasons, start=1):
        r = row(seq, reason, prev)
        rows.append(r)
        prev = r.hash
    return rows


def test_the_hash_input_has_one_reading():
    """The boundary shift of issue 15 and NULL against the text "-" or "" change the input."""
    a = row(1, "bad deploy|see INC-42", target="rollout:x")
    b = replace(a, target="rollout:x|bad deploy", reason="see INC-42")
    assert encode(GENESIS, a) != encode(GENESIS, b)
    assert field(None) != field("") and field(None) != field("-") and field("1:") != field("")
    assert encode(GENESIS, replace(a, reason=None)) != encode(GENESIS, replace(a, reason=""))
    assert encode(GENESIS, replace(a, after="null")) != encode(GENESIS, replace(a, after=None))
    assert field("é") == b"2:\xc3\xa9"  # lengths count UTF-8 bytes, as octet_length does


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=2, max_size=30), st.data())
def test_any_single_change_to_a_chain_is_found(reasons, data):
    rows = chain(reasons)
    intact = verify(rows, head=(rows[-1].seq, rows[-1].hash))
    assert intact.ok and intact.rows == len(rows)
    anchor = intact.anchor
    assert verify(rows, anchor).ok
    i = data.draw(st.integers(0, len(rows) - 1))
    change = data.draw(st.sampled_from(["edit", "shift", "delete", "truncate", "rewrite"]))
    if change == "edit":
        new = data.draw(st.text(max_size=20).filter(lambda t: t != rows[i].reason))
        broken = rows[:i] + [replace(rows[i], reason=new)] + rows[i + 1 :]
    elif change == "shift":  # text moved from the reason to the end of the target
        cut = data.draw(st.integers(0, len(rows[i].reason or "")))
        moved = replace(rows[i], target=rows[i].target + rows[i].reason[:cut], reason=rows[i].reason[cut:])
        broken = rows[:i] + [moved] + rows[i + 1 :] if cut else rows[:i]
    elif change == "delete":
        broken = rows[:i] + rows[i + 1 :]
    elif change == "truncate":
        broken = rows[:i]
    else:  # recompute everything from i on with other content: self-consistent, not the anchored chain
        new = data.draw(st.text(max_size=20).filter(lambda t: t != rows[i].reason))
        broken = chain([r.reason for r in rows[:i]] + [new] + [r.reason for r in rows[i + 1 :]])
    assert not verify(broken, anchor).ok
    if change in ("edit", "shift", "delete"):  # the head alone is enough without an anchor
        assert not verify(broken, head=(rows[-1].seq, rows[-1].hash)).ok
