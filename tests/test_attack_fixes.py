"""What an independent attacker broke after revisions 0019/0020 (issue 15 points 4 and 5),
each reproduced against a real PostgreSQL and refused or caught now:

A. an operator's false 'fail' verdict started a block of every claim with no log row;
   `fsar_prune_audit_runs(2147483647, '-1000 years')` deleted nearly every verdict;
B. `security-audit` passed while a login holding fsar_operator had direct write grants
   (it looked at the fsar roles and PUBLIC only);
C. the operator log's protections missed a rule `DO INSTEAD NOTHING`, an extra BEFORE
   INSERT trigger returning NULL, a new owner (a login that may then disable the
   append-only trigger itself), row-level security; and — the stated limit — a tail
   deleted with the head rewound is seen by the anchor only.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fsar_tui.db.connect import connect
from support.sql import q, x
from test_action_log import record_actions
from test_log_tamper import PROTECTED, assert_caught, audit, verify

GRANTS = "grants are exactly the declared ones"
FUNCTIONS = "state-changing functions are the shipped ones"
ROLLBACK_GATE = "(SELECT id FROM audit_gates WHERE name = 'builtin:rollback-artifacts')"


def role_of(dsn: str) -> str:
    return conninfo_to_dict(dsn)["user"]


def last_action(dsn):
    return q(
        dsn,
        "SELECT actor, claimed_os_user, action, target, before, after - 'run' - 'value' FROM operator_actions "
        "ORDER BY seq DESC LIMIT 1",
    )


def problems_in(dsn):
    from fsar_tui.db.privileges import owner_problems, undeclared_grants

    with connect(dsn) as conn:
        return undeclared_grants(conn) + owner_problems(conn)


# -- A. verdicts and retention ---------------------------------------------------------------------


def test_a_false_fail_that_starts_a_block_is_logged_under_the_role(db_dsn, login):
    operator = login("fsar_operator")
    role = role_of(operator)
    assert q(db_dsn, "SELECT count(*) FROM operator_actions") == [(0,)]
    x(operator, f"SELECT fsar_record_verdict({ROLLBACK_GATE}, 1, NULL, 'fail', 99, '{{}}', 'x')")
    # The attacker's block: no task_type, so every claim stops …
    assert q(db_dsn, "SELECT task_type, ref FROM execution_blocks") == [(None, "builtin:rollback-artifacts")]
    # … and now it is in the log, under the role that authenticated.
    assert last_action(db_dsn) == [
        (
            role,
            "x",
            "gate_blocked",
            "gate:builtin:rollback-artifacts",
            {"blocking": False},
            {"blocking": True, "verdict": "fail"},
        )
    ]
    # A verdict that changes nothing is not logged; the end of the block is.
    x(operator, f"SELECT fsar_record_verdict({ROLLBACK_GATE}, 1, NULL, 'fail', 99, '{{}}', 'x')")
    assert q(db_dsn, "SELECT count(*) FROM operator_actions") == [(1,)]
    x(operator, f"SELECT fsar_record_verdict({ROLLBACK_GATE}, 0, NULL, 'pass', 99, '{{}}', 'y')")
    assert q(db_dsn, "SELECT count(*) FROM execution_blocks") == [(0,)]
    assert [r[2] for r in last_action(db_dsn)] == ["gate_unblocked"]
    # A soft gate's failure blocks nothing and logs nothing.
    x(operator, "SELECT fsar_record_verdict(id, 1, NULL, 'fail', 9, '{}', 'x') FROM audit_gates WHERE NOT hard")
    assert q(db_dsn, "SELECT count(*) FROM operator_actions") == [(2,)]


def seed_verdicts(dsn, n=93):
    """n verdicts of the rollback gate, one a day from 12 hours ago back."""
    x(
        dsn,
        f"INSERT INTO audit_runs (gate_id, at, verdict) SELECT {ROLLBACK_GATE}, "
        "now() - make_interval(days => d, hours => 12), 'pass' FROM generate_series(0, %s) d",
        (n - 1,),
    )


@pytest.mark.parametrize(
    "max_rows, kept, words",
    [
        (2147483647, "-1000 years", "max_rows must be between 1 and 5000"),
        (5000, "-1000 years", "verdicts are kept at least 90 days"),
        (5000, "1 day", "verdicts are kept at least 90 days"),
        (5000, "89 days 23:59", "verdicts are kept at least 90 days"),
        (5000, None, "verdicts are kept at least 90 days"),
        (0, "90 days", "max_rows must be between 1 and 5000"),
        (-1, "90 days", "max_rows must be between 1 and 5000"),
        (5001, "90 days", "max_rows must be between 1 and 5000"),
    ],
)
def test_prune_refuses_arguments_outside_the_retention_policy(db_dsn, login, max_rows, kept, words):
    seed_verdicts(db_dsn)
    operator = login("fsar_operator")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=words):
        x(operator, "SELECT fsar_prune_audit_runs(%s, %s::interval)", (max_rows, kept))
    assert q(db_dsn, "SELECT count(*) FROM audit_runs") == [(93,)]


def test_prune_by_the_policy_still_works(db_dsn, login):
    from fsar_tui.db import gates

    seed_verdicts(db_dsn)
    operator = login("fsar_operator")
    # The attacker's call, refused (it deleted 82 of 93 before).
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        x(operator, "SELECT fsar_prune_audit_runs(2147483647, '-1000 years')")
    with connect(operator, autocommit=True) as conn:
        assert gates.prune_runs(conn) == 3  # 90.5, 91.5 and 92.5 days old
    assert q(db_dsn, "SELECT count(*) FROM audit_runs") == [(90,)]
    assert q(operator, "SELECT fsar_prune_audit_runs(1, '1 year')") == [(0,)]


def test_the_old_functions_put_back_are_not_the_shipped_ones(db_dsn, login, run_cli):
    from fsar_tui.db import action_functions
    from fsar_tui.db.migrations import revision_module, script_location

    v0021 = revision_module(str(script_location() / "versions" / "here.py"), "0021_attack_fixes.py")
    x(db_dsn, v0021.PRUNE_0018)
    x(db_dsn, action_functions.RECORD_VERDICT_0020.create_sql())
    code, checks = audit(run_cli, login("fsar_operator"))
    detail = checks[FUNCTIONS]["detail"]
    assert code == 1 and not checks[FUNCTIONS]["ok"]
    assert "fsar_prune_audit_runs(integer, interval) is not the shipped one" in detail, detail
    assert "fsar_record_verdict(" in detail, detail


# -- B. every grantee --------------------------------------------------------------------------------


def test_a_login_with_direct_write_grants_fails_the_audit(db_dsn, login, run_cli):
    mallory = login("fsar_operator")
    name = role_of(mallory)
    record_actions(db_dsn)
    x(db_dsn, "INSERT INTO execution_tasks (task_type, status) VALUES ('implement_idea', 'queued')")
    auditor = login("fsar_operator")
    assert audit(run_cli, auditor)[0] == 0
    x(db_dsn, f"GRANT INSERT, UPDATE ON audit_runs, execution_tasks, rollout_revisions, rollouts TO {name}")
    try:
        # What the grant gives: a task set to succeeded with no log row.
        x(mallory, "UPDATE execution_tasks SET status = 'succeeded', finished_at = now()")
        assert q(db_dsn, "SELECT status FROM execution_tasks") == [("succeeded",)]
        code, checks = audit(run_cli, auditor)
        grants = checks[GRANTS]
        assert code == 1 and not grants["ok"], grants
        for words in (
            f"{name} may INSERT on table audit_runs",
            f"{name} may UPDATE on table audit_runs",
            f"{name} may INSERT on table execution_tasks",
            "a member of fsar_operator holds no grant of its own",
        ):
            assert words in grants["detail"], grants["detail"]
        found = problems_in(db_dsn)
        for table in ("audit_runs", "execution_tasks", "rollout_revisions", "rollouts"):
            for verb in ("INSERT", "UPDATE"):
                assert any(line.startswith(f"{name} may {verb} on table {table}:") for line in found), found
        assert len(found) == 8, found
    finally:
        x(db_dsn, f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name}")
    assert problems_in(db_dsn) == []


def test_every_kind_of_grant_outside_the_declaration_is_named(db_dsn, login):
    operator, outsider = login("fsar_operator"), login()
    op_name, out_name = role_of(operator), role_of(outsider)
    assert problems_in(db_dsn) == []
    # The integration contract: a fleet role outside the fsar roles may read, and write
    # the tasks, the ledger and the Stripe events, with their id sequences. It passes.
    fleet = [
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {out_name}",
        f"GRANT SELECT, INSERT, UPDATE ON execution_tasks, ledger_entries, stripe_events TO {out_name}",
        f"GRANT USAGE ON SEQUENCE execution_tasks_id_seq, ledger_entries_id_seq TO {out_name}",
    ]
    for grant in fleet:
        x(db_dsn, grant)
    assert problems_in(db_dsn) == []
    grants = {
        # column ACLs (pg_attribute.attacl), to a login holding an fsar role
        f"GRANT UPDATE (status) ON execution_tasks TO {op_name}": f"{op_name} may UPDATE on column execution_tasks "
        "(status)",
        # outside the integration tables, or a verb the contract does not give
        f"GRANT UPDATE ON rollouts TO {out_name}": f"{out_name} may UPDATE on table rollouts",
        f"GRANT DELETE ON execution_tasks TO {out_name}": f"{out_name} may DELETE on table execution_tasks",
        f"GRANT USAGE ON SEQUENCE audit_runs_id_seq TO {out_name}": f"{out_name} may USAGE on sequence "
        "audit_runs_id_seq",
        f"GRANT EXECUTE ON FUNCTION fsar_compact_task_counts() TO {out_name}": f"{out_name} may EXECUTE on function "
        "fsar_compact_task_counts()",
        # what the matrix does not ask of the fsar roles: TRIGGER (create triggers on the
        # log), REFERENCES, sequences, grant options
        "GRANT TRIGGER ON operator_actions TO fsar_operator": "fsar_operator may TRIGGER on table operator_actions",
        "GRANT UPDATE ON SEQUENCE operator_actions_id_seq TO fsar_operator": "fsar_operator may UPDATE on sequence "
        "operator_actions_id_seq",
        "GRANT SELECT ON rollouts TO fsar_viewer WITH GRANT OPTION": "fsar_viewer may SELECT on table rollouts WITH "
        "GRANT OPTION",
        "GRANT CREATE ON SCHEMA public TO PUBLIC": "PUBLIC may CREATE on schema public",
    }
    try:
        for grant in grants:
            x(db_dsn, grant)
        x(db_dsn, f"ALTER TABLE model_prices OWNER TO {out_name}")
        found = problems_in(db_dsn)
        for words in grants.values():
            assert any(line.startswith(words) for line in found), (words, found)
        assert any(
            line.startswith(f"table model_prices is owned by {out_name}, not by the migrating role postgres")
            for line in found
        ), found
    finally:
        x(db_dsn, "ALTER TABLE model_prices OWNER TO postgres")
        x(db_dsn, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        x(db_dsn, "REVOKE TRIGGER ON operator_actions FROM fsar_operator")
        x(db_dsn, "REVOKE UPDATE ON SEQUENCE operator_actions_id_seq FROM fsar_operator")
        x(db_dsn, "REVOKE GRANT OPTION FOR SELECT ON rollouts FROM fsar_viewer")
        for name in (op_name, out_name):
            x(db_dsn, f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name}")
            x(db_dsn, f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {name}")
            x(db_dsn, f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {name}")
    assert problems_in(db_dsn) == []


def test_a_member_of_pg_write_all_data_is_named(own_cluster):
    """On a server of the test's own: the membership is cluster-wide, and the shared
    server's other tests audit their databases meanwhile."""
    from fsar_tui.db.migrations import migrate

    dsn = own_cluster.dsn()
    migrate(dsn)
    x(dsn, "CREATE ROLE writer LOGIN")
    x(dsn, "CREATE ROLE panel_user LOGIN IN ROLE fsar_operator")
    assert problems_in(dsn) == []
    x(dsn, "GRANT pg_write_all_data TO writer")
    x(dsn, "GRANT pg_write_all_data TO fsar_operator")
    x(dsn, "GRANT pg_read_all_data TO panel_user")  # not judged: reads are not what the roles protect
    found = problems_in(dsn)
    assert sorted(line.split()[0] for line in found if "pg_write_all_data" in line) == [
        "fsar_admin",  # it includes fsar_operator
        "fsar_operator",
        "panel_user",
        "writer",
    ], found
    assert "writer is a member of pg_write_all_data: it may write every table here" in found[-1]
    # … and it could: a task set to succeeded by a role with no grant on the table.
    x(dsn, "INSERT INTO execution_tasks (task_type, status) VALUES ('implement_idea', 'queued')")
    x(make_conninfo(dsn, user="writer"), "UPDATE execution_tasks SET status = 'succeeded', finished_at = now()")
    assert q(dsn, "SELECT status FROM execution_tasks") == [("succeeded",)]


# -- C. the operator log's tables ------------------------------------------------------------------


@pytest.fixture
def logged(db_dsn, login):
    record_actions(db_dsn)
    return db_dsn, login("fsar_operator")


def an_action(operator):
    """An operator's action that is always logged: acknowledging a drift alert."""
    x(operator, "SELECT fsar_drift_alert_raise('failure_rate', '{}', 0.1, 0.5, '{}')")
    x(operator, "SELECT fsar_drift_alert_ack(max(id), 'seen', 'mallory') FROM drift_alerts")


def test_a_rule_that_drops_the_log_rows(logged, run_cli, tmp_path):
    su, operator = logged
    x(su, "CREATE RULE r AS ON INSERT TO operator_actions DO INSTEAD NOTHING")
    an_action(operator)
    assert q(su, "SELECT state FROM drift_alerts") == [("acked",)]
    assert q(su, "SELECT count(*) FROM operator_actions") == [(6,)]  # unlogged, and the chain is consistent
    assert_caught(run_cli, logged, tmp_path, PROTECTED, "rule r on operator_actions")


@pytest.mark.parametrize("enabled", [True, False])
def test_an_extra_trigger_on_the_log(logged, run_cli, tmp_path, enabled):
    su, operator = logged
    x(su, "CREATE FUNCTION public.swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
    x(su, "CREATE TRIGGER a_first BEFORE INSERT ON operator_actions FOR EACH ROW EXECUTE FUNCTION swallow()")
    if enabled:
        an_action(operator)
        assert q(su, "SELECT count(*) FROM operator_actions") == [(6,)]  # swallowed before the chain trigger ran
    else:
        x(su, "ALTER TABLE operator_actions DISABLE TRIGGER a_first")  # one ALTER away from swallowing
    state = "enabled" if enabled else "disabled"
    assert_caught(
        run_cli,
        logged,
        tmp_path,
        PROTECTED,
        f"trigger a_first on operator_actions is not a shipped one (runs swallow(), {state})",
    )


def test_an_extra_trigger_on_the_head(logged, run_cli, tmp_path):
    su, _ = logged
    x(su, "CREATE FUNCTION public.swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
    x(su, "CREATE TRIGGER a_first BEFORE UPDATE ON operator_log_head FOR EACH ROW EXECUTE FUNCTION swallow()")
    assert_caught(run_cli, logged, tmp_path, PROTECTED, "trigger a_first on operator_log_head is not a shipped one")


def test_the_append_only_trigger_recreated_with_a_when_that_never_holds(logged, run_cli, tmp_path):
    su, _ = logged
    x(su, "DROP TRIGGER operator_actions_append_only ON operator_actions")
    x(
        su,
        "CREATE TRIGGER operator_actions_append_only BEFORE UPDATE OR DELETE ON operator_actions "
        "FOR EACH ROW WHEN (false) EXECUTE FUNCTION fsar_reject_change()",
    )
    assert_caught(
        run_cli, logged, tmp_path, PROTECTED, "trigger operator_actions_append_only on operator_actions does not fire"
    )


def test_the_log_owned_by_a_login_of_the_panel(logged, run_cli, tmp_path, login):
    su, _ = logged
    owner = login("fsar_operator")
    name = role_of(owner)
    x(su, f"ALTER TABLE operator_actions OWNER TO {name}")
    try:
        # What the owner may do: switch the append-only trigger off itself (and back on).
        x(owner, "ALTER TABLE operator_actions DISABLE TRIGGER operator_actions_append_only")
        x(owner, "ALTER TABLE operator_actions ENABLE TRIGGER operator_actions_append_only")
        assert_caught(
            run_cli,
            logged,
            tmp_path,
            PROTECTED,
            f"table operator_actions is owned by {name}, not by the migrating role postgres",
        )
    finally:
        x(su, "ALTER TABLE operator_actions OWNER TO postgres")


def test_every_table_owned_by_a_login_of_the_panel(logged, run_cli, tmp_path, login):
    """The owner moved with alembic_version: the log's owner is still the migrating role,
    but that role is now a login holding fsar_operator."""
    su, _ = logged
    owner = login("fsar_operator")
    name = role_of(owner)
    tables = ("alembic_version", "operator_actions", "operator_log_head", "operator_log_encodings")
    try:
        for table in tables:
            x(su, f"ALTER TABLE {table} OWNER TO {name}")
        assert_caught(
            run_cli,
            logged,
            tmp_path,
            PROTECTED,
            f"the migrating role {name} (owner of alembic_version) is a member of fsar_operator",
        )
    finally:
        for table in tables:
            x(su, f"ALTER TABLE {table} OWNER TO postgres")


def test_row_level_security_hiding_rows_from_the_verifier(logged, run_cli, tmp_path):
    su, _ = logged
    x(su, "ALTER TABLE operator_actions ENABLE ROW LEVEL SECURITY")
    x(su, "CREATE POLICY hide ON operator_actions FOR SELECT USING (seq <> 3)")
    assert_caught(run_cli, logged, tmp_path, PROTECTED, "row-level security is enabled on operator_actions")
    _, checks = audit(run_cli, logged[1])
    assert "operator_actions has row-level security policies (hide)" in checks[PROTECTED]["detail"]


def test_a_tail_deleted_and_the_head_rewound_is_seen_by_the_anchor_only(logged, run_cli, tmp_path):
    """The stated limit: a superuser can leave a consistent chain; the anchor kept outside
    the database is what still knows the end."""
    su, operator = logged
    assert verify(run_cli, su, tmp_path).returncode == 0  # the anchor: seq 6
    with psycopg.connect(su) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")  # the triggers skipped, none disabled
        conn.execute("DELETE FROM operator_actions WHERE seq = 6")
        conn.execute(
            "UPDATE operator_log_head SET (seq, hash) = (SELECT seq, hash FROM operator_actions WHERE seq = 5)"
        )
    code, checks = audit(run_cli, operator)
    assert code == 0, [c for c in checks.values() if not c["ok"]]
    assert "5 rows, last seq 5, matches the head" in checks["operator log hash chain verifies"]["detail"]
    out = verify(run_cli, su, tmp_path)
    assert out.returncode == 1 and "anchor's seq 6 is gone" in out.stderr, out.stderr
