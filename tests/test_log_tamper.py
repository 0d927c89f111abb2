"""The operator log under a superuser's tampering (issue 15, point 4), against a real
PostgreSQL: the last row deleted, the verify function replaced by one returning NULL, the
append-only trigger left disabled, text moved across a field boundary, a forged actor —
each makes `fsar-tui log verify` and `fsar-tui security-audit` (run as an operator) exit 1
naming it; untampered, both pass. And revision 0019 refuses to re-chain a broken log."""

from __future__ import annotations

import json

import pytest

from fsar_tui.db.migrations import downgrade, migrate
from fsar_tui.errors import CheckFailed
from support.sql import q, x
from test_action_log import as_superuser_without_trigger, record_actions

CHAIN = "operator log hash chain verifies"
PROTECTED = "operator log's triggers and functions are the shipped ones"


@pytest.fixture
def logged(db_dsn, login):
    """(superuser dsn, operator dsn) of a database whose log holds six actions."""
    record_actions(db_dsn)
    return db_dsn, login("fsar_operator")


def verify(run_cli, dsn, tmp_path):
    return run_cli("log", "verify", "--dsn", dsn, "--anchor", str(tmp_path / "anchor.json"))


def audit(run_cli, dsn):
    out = run_cli("security-audit", "--format", "json", "--dsn", dsn)
    return out.returncode, {c["check"]: c for c in json.loads(out.stdout)}


def assert_caught(run_cli, logged, tmp_path, check, words):
    su, operator = logged
    out = verify(run_cli, su, tmp_path)
    assert out.returncode == 1 and words in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    code, checks = audit(run_cli, operator)
    assert code == 1 and not checks[check]["ok"] and words in checks[check]["detail"], checks[check]
    return out


def test_an_untampered_log_passes_both(logged, run_cli, tmp_path):
    su, operator = logged
    out = verify(run_cli, su, tmp_path)
    assert out.returncode == 0 and "6 rows, last seq 6" in out.stdout, out.stderr
    code, checks = audit(run_cli, operator)
    assert code == 0, [c for c in checks.values() if not c["ok"]]
    assert checks[CHAIN]["ok"] and "6 rows, last seq 6, matches the head" in checks[CHAIN]["detail"]
    assert checks[PROTECTED]["ok"] and checks["no fsar function is executable by PUBLIC"]["ok"]
    assert checks["grants are exactly the declared ones"]["ok"]


def test_the_last_row_deleted(logged, run_cli, tmp_path):
    su, _ = logged
    as_superuser_without_trigger(su, "DELETE FROM operator_actions WHERE seq = 6")
    assert_caught(
        run_cli, logged, tmp_path, CHAIN, "the head records seq 6 but the log ends at seq 5 (last row(s) deleted)"
    )


def test_the_verify_function_replaced_by_one_returning_null(logged, run_cli, tmp_path):
    su, _ = logged
    as_superuser_without_trigger(su, "UPDATE operator_actions SET reason = 'nothing happened' WHERE seq = 2")
    x(
        su,
        "CREATE OR REPLACE FUNCTION fsar_operator_actions_verify() RETURNS bigint "
        "LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$ SELECT NULL::bigint $$",
    )
    assert q(su, "SELECT fsar_operator_actions_verify()") == [(None,)]  # the database now says all is well
    out = assert_caught(
        run_cli, logged, tmp_path, PROTECTED, "function fsar_operator_actions_verify() is not the shipped one"
    )
    assert "seq 2: content does not match its hash (edited)" in out.stderr  # the client's walk was not fooled
    assert not audit(run_cli, logged[1])[1][CHAIN]["ok"]


def test_the_append_only_trigger_left_disabled(logged, run_cli, tmp_path):
    su, _ = logged
    x(su, "ALTER TABLE operator_actions DISABLE TRIGGER operator_actions_append_only")
    assert_caught(
        run_cli, logged, tmp_path, PROTECTED, "trigger operator_actions_append_only on operator_actions is disabled"
    )


def test_the_chain_trigger_pointed_at_another_function(logged, run_cli, tmp_path):
    su, _ = logged
    x(su, "CREATE FUNCTION lookalike() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
    x(su, "DROP TRIGGER operator_actions_chain ON operator_actions")
    x(
        su,
        "CREATE TRIGGER operator_actions_chain BEFORE INSERT ON operator_actions "
        "FOR EACH ROW EXECUTE FUNCTION lookalike()",
    )
    assert_caught(run_cli, logged, tmp_path, PROTECTED, "runs lookalike(), not fsar_operator_actions_chain()")


def test_text_moved_across_a_field_boundary(db_dsn, login, run_cli, tmp_path):
    x(
        db_dsn,
        "INSERT INTO operator_actions (action, target, reason) "
        "VALUES ('rollback', 'rollout:x', 'bad deploy|see INC-42')",
    )
    record_actions(db_dsn, 2)
    # The old encoding (revision 0009) joined the fields with '|': both rows read the same.
    old = "concat_ws('|', target, coalesce(reason, ''))"
    before = q(db_dsn, f"SELECT {old} FROM operator_actions WHERE seq = 1")
    as_superuser_without_trigger(
        db_dsn, "UPDATE operator_actions SET target = target || '|bad deploy', reason = 'see INC-42' WHERE seq = 1"
    )
    assert q(db_dsn, f"SELECT {old} FROM operator_actions WHERE seq = 1") == before
    assert_caught(
        run_cli, (db_dsn, login("fsar_operator")), tmp_path, CHAIN, "seq 1: content does not match its hash (edited)"
    )


def test_a_forged_actor(rollout_db, login, run_cli, isolated_env, tmp_path):
    """$LOGNAME is only a claim: the actor is the role that authenticated. A superuser who
    writes another actor into the row afterwards breaks its hash."""
    operator = login("fsar_operator")
    role = operator.split("user=")[1].split()[0]
    env = {**isolated_env, "LOGNAME": "alice", "USER": "alice"}
    out = run_cli("rollback", "prompt/implement_idea", "--dsn", operator, "--reason", "p90 regressed", "--yes", env=env)
    assert out.returncode == 0, out.stderr
    assert q(rollout_db, "SELECT actor, db_role, claimed_os_user, action FROM operator_actions") == [
        (role, role, "alice", "rollback")
    ]
    # An operator writing the log by hand cannot name someone else either (0020 takes the
    # INSERT away; the trigger would overwrite the actor anyway).
    logged = (rollout_db, operator)
    assert verify(run_cli, rollout_db, tmp_path).returncode == 0
    as_superuser_without_trigger(rollout_db, "UPDATE operator_actions SET actor = 'alice' WHERE seq = 1")
    assert_caught(run_cli, logged, tmp_path, CHAIN, "seq 1: content does not match its hash (edited)")


def test_0019_refuses_to_rechain_a_broken_log_unless_told_which_break(db_dsn, monkeypatch):
    downgrade(db_dsn, "0018_audit_runs_retention")  # (the head's data goes back to the old encoding)
    record_actions(db_dsn, 3)
    x(db_dsn, "ALTER TABLE operator_actions DISABLE TRIGGER operator_actions_append_only")
    x(db_dsn, "UPDATE operator_actions SET reason = 'forged' WHERE seq = 2")
    x(db_dsn, "ALTER TABLE operator_actions ENABLE TRIGGER operator_actions_append_only")
    with pytest.raises(CheckFailed, match="broken at seq 2: revision 0019 re-chains the log only from a verified"):
        migrate(db_dsn)
    assert q(db_dsn, "SELECT version_num FROM alembic_version") == [("0018_audit_runs_retention",)]
    monkeypatch.setenv("FSAR_ACCEPT_BROKEN_LOG", "1")  # not the break: still refused
    with pytest.raises(CheckFailed):
        migrate(db_dsn)
    monkeypatch.setenv("FSAR_ACCEPT_BROKEN_LOG", "2")
    migrate(db_dsn)
    assert q(db_dsn, "SELECT old_chain_broken_at, rechained_upto FROM operator_log_encodings") == [(2, 3)]
    assert q(db_dsn, "SELECT fsar_operator_actions_verify()") == [(None,)]


def test_a_log_that_predates_0019_is_one_line_not_a_traceback(db_dsn, run_cli, tmp_path):
    downgrade(db_dsn, "0018_audit_runs_retention")
    out = verify(run_cli, db_dsn, tmp_path)
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert "predates revision 0019" in out.stderr and "fsar-tui migrate" in out.stderr
