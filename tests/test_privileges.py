"""Least privilege enforced by PostgreSQL (issue 15, point 5), against a real server.

The matrix: every table and view × fsar_viewer, fsar_operator, fsar_admin and a login
with no fsar grant × SELECT/INSERT/UPDATE/DELETE/TRUNCATE (column grants included), and
every fsar function × those roles, read from has_table_privilege / has_column_privilege /
has_function_privilege, must be exactly domain/privileges.py's declaration — the same
declaration the README's table is rendered from. One extra grant makes it fail. Then the
dangerous writes tried for real as an operator: a 'pass' verdict inserted by hand, a
failed task set to succeeded, an arbitrary rollout revision, a counter delta — refused.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from fsar_tui.db.connect import connect
from fsar_tui.db.privileges import actual_rights
from fsar_tui.domain import privileges as declared
from support.rollouts import active, revisions
from support.sql import q, x
from test_gates import add, evaluate, finished_tasks

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def nobody(db_dsn):
    """A login with no fsar grant (PUBLIC's rights only): (role name, dsn)."""
    name = f"t_nobody_{uuid.uuid4().hex[:8]}"
    x(db_dsn, f"CREATE ROLE {name} LOGIN")
    yield name, make_conninfo(db_dsn, user=name)
    x(db_dsn, f"DROP ROLE {name}")


def differences(dsn, *roles):
    with connect(dsn) as conn:
        return declared.compare(*actual_rights(conn, (*declared.ROLES, *roles)))


def refused(dsn, sql, params=None) -> bool:
    try:
        x(dsn, sql, params)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_the_database_grants_exactly_the_declaration(db_dsn, nobody):
    with connect(db_dsn) as conn:
        tables, functions = actual_rights(conn, (*declared.ROLES, nobody[0], declared.PUBLIC))
    # Every cell is there: 30 tables and views × 5 roles, every fsar function × 5 roles.
    assert {t for t, _ in tables} == set(declared.TABLES)
    assert len(tables) == len(declared.TABLES) * 5 and len(functions) == len(declared.FUNCTIONS) * 5
    assert declared.compare(tables, functions) == []
    # What that means, spelled out for the roles that matter most.
    assert tables[("audit_runs", "fsar_operator")] == {"SELECT"}
    assert tables[("execution_tasks", "fsar_operator")] == {"SELECT"}
    assert tables[("execution_tasks", "fsar_admin")] == {"SELECT", "UPDATE (error, payload, result)"}
    assert tables[("task_count_deltas", nobody[0])] == frozenset()
    assert not functions[("fsar_compact_task_counts()", "fsar_viewer")]
    assert not functions[("fsar_rebuild_sketches()", nobody[0])]
    assert functions[("fsar_gate_override(text,text,timestamp with time zone,text)", "fsar_admin")]
    assert not functions[("fsar_gate_override(text,text,timestamp with time zone,text)", "fsar_operator")]


@pytest.mark.parametrize(
    "grant, revoke, expected",
    [
        (
            "GRANT INSERT ON audit_runs TO fsar_operator",
            "REVOKE INSERT ON audit_runs FROM fsar_operator",
            ["fsar_admin on audit_runs: may INSERT", "fsar_operator on audit_runs: may INSERT"],
        ),
        (
            "GRANT UPDATE (status) ON execution_tasks TO fsar_operator",
            "REVOKE UPDATE (status) ON execution_tasks FROM fsar_operator",
            [
                "fsar_admin on execution_tasks: may UPDATE (error, payload, result, status)",
                "fsar_operator on execution_tasks: may UPDATE (status)",
            ],
        ),
        (
            "GRANT TRUNCATE ON operator_actions TO fsar_admin",
            "REVOKE TRUNCATE ON operator_actions FROM fsar_admin",
            ["fsar_admin on operator_actions: may TRUNCATE"],
        ),
        (
            "GRANT EXECUTE ON FUNCTION fsar_compact_task_counts() TO PUBLIC",
            "REVOKE EXECUTE ON FUNCTION fsar_compact_task_counts() FROM PUBLIC",
            ["public may EXECUTE fsar_compact_task_counts()", "fsar_viewer may EXECUTE fsar_compact_task_counts()"],
        ),
        (
            "GRANT EXECUTE ON FUNCTION fsar_gate_override(text, text, timestamptz, text) TO fsar_operator",
            "REVOKE EXECUTE ON FUNCTION fsar_gate_override(text, text, timestamptz, text) FROM fsar_operator",
            ["fsar_operator may EXECUTE fsar_gate_override("],
        ),
    ],
)
def test_one_added_grant_fails_the_matrix(db_dsn, nobody, grant, revoke, expected):
    assert differences(db_dsn, nobody[0]) == []
    x(db_dsn, grant)
    found = differences(db_dsn, nobody[0], declared.PUBLIC)
    assert found and all(any(line.startswith(e) for line in found) for e in expected), found
    x(db_dsn, revoke)
    assert differences(db_dsn, nobody[0], declared.PUBLIC) == []


def test_the_readme_table_is_the_declaration():
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- privileges:begin -->\n(.*?)<!-- privileges:end -->", text, re.S)
    assert found, "README.md lacks the privileges markers"
    assert found.group(1) == declared.render_markdown(), (
        "README's privilege table differs from domain/privileges.py: paste render_markdown()'s output"
    )


# -- the dangerous writes, tried for real ------------------------------------------------------


def hard_failing_gate(dsn):
    """A hard gate on failure_rate that fails now: it blocks implement_idea."""
    add(dsn, "hard-fail", "failure_rate", "< 0.2", hard=True, scope={"task_type": "implement_idea"})
    finished_tasks(dsn, "implement_idea", 30, status="failed")
    assert evaluate(dsn, "hard-fail").verdict == "fail"
    assert q(dsn, "SELECT ref FROM execution_blocks WHERE source = 'gate'") == [("hard-fail",)]


def test_an_operator_cannot_lift_a_hard_gate_by_inserting_a_pass(db_dsn, login):
    hard_failing_gate(db_dsn)
    operator = login("fsar_operator")
    logged = q(db_dsn, "SELECT count(*) FROM operator_actions")
    assert refused(
        operator,
        "INSERT INTO audit_runs (gate_id, verdict, details) SELECT id, 'pass', '{}' FROM audit_gates "
        "WHERE name = 'hard-fail'",
    )
    assert refused(operator, "DELETE FROM audit_runs")
    assert refused(operator, "UPDATE audit_gates SET enabled = false")
    assert q(db_dsn, "SELECT ref FROM execution_blocks WHERE source = 'gate'") == [("hard-fail",)]
    assert q(db_dsn, "SELECT count(*) FROM operator_actions") == logged
    # The audit pass's own function may record a pass (the pass computes verdicts in the
    # client: PostgreSQL cannot tell a true one from a false one) — but never silently.
    x(
        operator,
        "SELECT fsar_record_verdict(id, 0, NULL, 'pass', 30, '{}', 'mallory') FROM audit_gates "
        "WHERE name = 'hard-fail'",
    )
    role = operator.split("user=")[1].split()[0]
    assert q(
        db_dsn, "SELECT actor, claimed_os_user, action, target FROM operator_actions ORDER BY seq DESC LIMIT 1"
    ) == [(role, "mallory", "gate_unblocked", "gate:hard-fail")]
    # Overrides are for admins only.
    assert refused(operator, "SELECT fsar_gate_override('hard-fail', 'me', NULL, NULL)")
    assert refused(
        operator, "INSERT INTO audit_gate_overrides (gate_id, actor, reason) SELECT id, 'x', 'y' FROM audit_gates"
    )


def test_an_operator_cannot_set_a_failed_task_to_succeeded(db_dsn, login):
    finished_tasks(db_dsn, "implement_idea", 1, status="failed")
    ((task_id,),) = q(db_dsn, "SELECT id FROM execution_tasks")
    operator = login("fsar_operator")
    assert refused(operator, "UPDATE execution_tasks SET status = 'succeeded' WHERE id = %s", (task_id,))
    assert refused(operator, "UPDATE execution_tasks SET status = 'queued', finished_at = NULL")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown task action"):
        x(
            operator,
            "SELECT fsar_task_action('succeed', ARRAY[%s]::bigint[], ARRAY['failed'], 't', 'r', NULL)",
            (task_id,),
        )
    # requeue does not apply to a failed task; retry does, to queued only.
    assert (
        q(
            operator,
            "SELECT fsar_task_action('requeue', ARRAY[%s]::bigint[], ARRAY['failed'], 't', 'r', NULL)",
            (task_id,),
        )
        == []
    )
    assert q(db_dsn, "SELECT status FROM execution_tasks") == [("failed",)]
    with psycopg.connect(operator, autocommit=True) as conn:
        conn.execute("SET fsar.bulk_load = 'on'")  # would skip the task triggers, were it honoured
        done = conn.execute(
            "SELECT fsar_task_action('retry', ARRAY[%s]::bigint[], ARRAY['failed'], 'task', 'flaky', 'alice')",
            (task_id,),
        ).fetchall()
    assert done == [(task_id,)]
    assert q(db_dsn, "SELECT status FROM execution_tasks") == [("queued",)]
    assert q(db_dsn, "SELECT to_status FROM task_events WHERE task_id = %s ORDER BY id DESC LIMIT 1", (task_id,)) == [
        ("queued",)
    ]
    assert q(db_dsn, "SELECT action, claimed_os_user FROM operator_actions") == [("task.retry", "alice")]


def test_an_operator_cannot_write_an_arbitrary_rollout_revision(rollout_db, login):
    operator = login("fsar_operator")
    assert refused(
        operator,
        "INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256) "
        "SELECT id, 3, '{\"prompt_version\": \"evil\"}', repeat('a', 64) FROM rollouts",
    )
    assert refused(operator, "UPDATE rollouts SET active_revision = 1")
    # Only a copy of an existing revision, from the active one the operator saw.
    assert q(operator, "SELECT outcome FROM fsar_rollout_rollback('prompt/implement_idea', 9, 2, 'r', NULL)") == [
        ("no-revision",)
    ]
    assert q(operator, "SELECT outcome FROM fsar_rollout_rollback('prompt/implement_idea', 1, 1, 'r', NULL)") == [
        ("conflict",)
    ]
    assert [r[0] for r in revisions(rollout_db)] == [1, 2] and active(rollout_db) == 2
    assert q(
        operator,
        "SELECT outcome, new_revision, move FROM fsar_rollout_rollback('prompt/implement_idea', 1, 2, 'p90', 'al')",
    ) == [("done", 3, "rollback")]
    revs = revisions(rollout_db)
    assert revs[2][1:] == (revs[0][1], revs[0][2], 1) and active(rollout_db) == 3


def test_counters_are_written_by_their_triggers_only(db_dsn, login, nobody):
    from fsar_tui.db.tasks import COUNTS_DRIFT_SQL

    finished_tasks(db_dsn, "implement_idea", 3, status="failed")
    operator, admin = login("fsar_operator"), login("fsar_admin")
    for dsn in (operator, admin):
        assert refused(dsn, "INSERT INTO task_count_deltas VALUES ('succeeded', 'implement_idea', 'gpt-4o', 1000)")
        assert refused(dsn, "INSERT INTO task_events (task_id, to_status, attempt) VALUES (1, 'succeeded', 1)")
        assert refused(dsn, "INSERT INTO task_duration_samples SELECT * FROM task_duration_samples LIMIT 1")
        assert refused(dsn, "INSERT INTO operator_actions (action, target) VALUES ('rollback', 'forged')")
    for dsn in (login("fsar_viewer"), nobody[1]):
        for housekeeping in ("fsar_compact_task_counts()", "fsar_rebuild_sketches()", "fsar_fold_duration_samples()"):
            assert refused(dsn, f"SELECT {housekeeping}")
    # The operator's retry still writes events and counters — as the triggers' definer.
    ids = [r[0] for r in q(db_dsn, "SELECT id FROM execution_tasks")]
    with psycopg.connect(operator, autocommit=True) as conn:
        conn.execute(
            "SELECT fsar_task_action('retry', %s::bigint[], %s::text[], 'bulk', 'r', NULL)", (ids, ["failed"] * 3)
        )
    assert q(db_dsn, COUNTS_DRIFT_SQL) == []
    assert q(db_dsn, "SELECT count(*) FROM task_events WHERE to_status = 'queued'") == [(3,)]


def test_task_events_statuses_are_checked(db_dsn):
    with pytest.raises(psycopg.errors.CheckViolation):
        x(db_dsn, "INSERT INTO task_events (task_id, to_status, attempt) VALUES (1, E'\\x1b]52;c;SGk=\\x07', 1)")
    assert q(
        db_dsn,
        "SELECT convalidated FROM pg_constraint WHERE conname = 'task_events_statuses' "
        "AND conrelid = 'task_events'::regclass",
    ) == [(True,)]
