"""`fsar-tui log verify` / `log list` against a real database: edits, deletions (also at the
end) and rewritten chains made by a superuser with the append-only trigger disabled are
found; the pure chain check catches any single change to a random chain."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fsar_tui.domain.action_chain import GENESIS, ChainRow, link_hash, verify
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


def as_superuser_without_trigger(dsn, sql, params=None):
    x(dsn, "ALTER TABLE operator_actions DISABLE TRIGGER operator_actions_append_only")
    try:
        x(dsn, sql, params)
    finally:
        x(dsn, "ALTER TABLE operator_actions ENABLE TRIGGER operator_actions_append_only")


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
    assert q(db_dsn, "SELECT fsar_operator_actions_verify()") == [(None,)]  # the chain alone looks fine
    out = verify_cli(run_cli, db_dsn, anchor)
    assert out.returncode == 1 and "anchor's seq 6 is gone" in out.stderr
    # A superuser who edits seq 2 and recomputes every later hash leaves a consistent chain;
    # only the anchor (kept outside the database) still knows the old hashes.
    record_actions(db_dsn, 2)  # seq 5 and 6 again, with new content
    as_superuser_without_trigger(db_dsn, "UPDATE operator_actions SET reason = 'rewritten' WHERE seq = 2")
    for seq in range(2, 7):
        as_superuser_without_trigger(
            db_dsn,
            """
            UPDATE operator_actions a SET
                prev_hash = coalesce((SELECT hash FROM operator_actions WHERE seq = a.seq - 1), repeat('0', 64)),
                hash = encode(sha256(convert_to(
                    coalesce((SELECT hash FROM operator_actions WHERE seq = a.seq - 1), repeat('0', 64)) || '|' ||
                    concat_ws('|', seq, extract(epoch FROM at), actor, db_role, action, target, coalesce(reason, ''),
                              coalesce(before::text, 'null'), coalesce(after::text, 'null')), 'UTF8')), 'hex')
            WHERE seq = %s""",
            (seq,),
        )
    assert q(db_dsn, "SELECT fsar_operator_actions_verify()") == [(None,)]
    out = verify_cli(run_cli, db_dsn, anchor)
    assert out.returncode == 1 and "seq 6: hash differs from the anchor" in out.stderr


def test_log_list_filters(db_dsn, run_cli):
    record_actions(db_dsn)
    out = run_cli("log", "list", "--dsn", db_dsn, "--action", "cancel", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["seq"] for r in rows] == [6, 3] and all(r["action"] == "cancel" for r in rows)
    table = run_cli("log", "list", "--dsn", db_dsn, "--actor", "ops1", "--target", "task:10", "--since", "1h")
    assert table.returncode == 0 and table.stdout.count("ops1") == 3
    bad = run_cli("log", "list", "--dsn", db_dsn, "--since", "yesterday")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def chain(contents):
    rows, prev = [], GENESIS
    for seq, text in enumerate(contents, start=1):
        h = link_hash(prev, text)
        rows.append(ChainRow(seq, prev, h, text))
        prev = h
    return rows


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=2, max_size=30), st.data())
def test_any_single_change_to_a_chain_is_found(contents, data):
    rows = chain(contents)
    intact = verify(rows)
    assert intact.ok and intact.rows == len(rows)
    anchor = intact.anchor
    assert verify(rows, anchor).ok
    i = data.draw(st.integers(0, len(rows) - 1))
    change = data.draw(st.sampled_from(["edit", "delete", "truncate", "rewrite"]))
    if change == "edit":
        new = data.draw(st.text(max_size=20).filter(lambda t: t != rows[i].canonical))
        broken = rows[:i] + [ChainRow(rows[i].seq, rows[i].prev_hash, rows[i].hash, new)] + rows[i + 1 :]
    elif change == "delete":
        broken = rows[:i] + rows[i + 1 :]
    elif change == "truncate":
        broken = rows[:i]
    else:  # recompute everything from i on with other content: self-consistent, not the anchored chain
        new = data.draw(st.text(max_size=20).filter(lambda t: t != rows[i].canonical))
        broken = chain([r.canonical for r in rows[:i]] + [new] + [r.canonical for r in rows[i + 1 :]])
    assert not verify(broken, anchor).ok
