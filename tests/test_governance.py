"""Least-privilege roles with real logins, logged reveals, anonymization and the security
audit, against a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.db.actions import apply_action
from fsar_tui.domain.redact import Policy, findings, value_findings
from fsar_tui.dsn import tls_verdict
from fsar_tui.services.anonymize import scrub_row
from fsar_tui.services.audit_pass import scheduled_check
from support.sql import q, x
from support.stripe_events import FIXTURE as STRIPE_EVENTS
from test_action_log import as_superuser_without_trigger
from test_gates import finished_tasks
from test_proposals import report, write


def refused(dsn: str, sql: str, params=None) -> bool:
    try:
        x(dsn, sql, params)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_the_roles_exist_as_nologin(db_dsn):
    rows = q(db_dsn, "SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname LIKE 'fsar\\_%' ORDER BY 1")
    assert rows == [("fsar_admin", False, False), ("fsar_operator", False, False), ("fsar_viewer", False, False)]


def test_viewer_reads_everything_and_writes_nothing(db_dsn, login, run_cli, tmp_path):
    run_cli("ingest-fsar", str(write(tmp_path, "p.txt", report("fsar_v"))), "--dsn", db_dsn)
    finished_tasks(db_dsn, "implement_idea", 2, status="failed")
    viewer = login("fsar_viewer")
    assert q(viewer, "SELECT id FROM fsar_proposals") == [("fsar_v",)]
    assert len(q(viewer, "SELECT * FROM execution_tasks")) == 2
    assert q(viewer, "SELECT count(*) FROM execution_blocks")[0][0] == 0
    for sql in (
        "UPDATE fsar_proposals SET status = 'accepted'",
        "INSERT INTO operator_actions (actor, action, target) VALUES ('v', 'x', 'y')",
        "UPDATE execution_tasks SET status = 'queued', finished_at = NULL",
        "INSERT INTO execution_tasks (task_type) VALUES ('implement_idea')",
        "DELETE FROM execution_tasks",
        "UPDATE audit_gates SET enabled = false",
    ):
        assert refused(viewer, sql), sql
    out = run_cli("proposals", "accept", "fsar_v", "--reason", "try", "--dsn", viewer)
    assert out.returncode == 1 and "permission denied" in out.stderr and "Traceback" not in out.stderr
    assert q(db_dsn, "SELECT status FROM fsar_proposals") == [("new",)]


async def test_operator_acts_but_cannot_reveal_anonymize_or_override(db_dsn, login, run_cli, tmp_path):
    operator = login("fsar_operator")
    # Ingest and decide.
    out = run_cli("ingest-fsar", str(write(tmp_path, "p.txt", report("fsar_o", block="true"))), "--dsn", operator)
    assert out.returncode == 0, out.stderr
    assert run_cli("proposals", "accept", "fsar_o", "--reason", "agreed", "--dsn", operator).returncode == 0
    assert run_cli("proposals", "lift", "fsar_o", "--reason", "fixed", "--dsn", operator).returncode == 0
    # Retry a failed task (the trigger-fed tables are written as this role).
    finished_tasks(db_dsn, "implement_idea", 1, status="failed")
    (task_id,) = q(db_dsn, "SELECT id FROM execution_tasks")[0]
    async with await psycopg.AsyncConnection.connect(operator, autocommit=True) as conn:
        result = await apply_action(conn, "retry", [(task_id, "failed")], "flaky", scope=f"task:{task_id}")
    assert result.done == [task_id]
    assert q(db_dsn, "SELECT to_status FROM task_events WHERE task_id = %s ORDER BY id DESC LIMIT 1", (task_id,)) == [
        ("queued",)
    ]
    # The scheduled audit pass (verdicts, drift alerts, rehearsals) runs as an operator.
    check = scheduled_check(operator, read_only=False)
    assert check.gates_evaluated and check.gates_evaluated > 0
    assert q(db_dsn, "SELECT count(*) FROM audit_runs")[0][0] > 0
    # Not an admin's powers.
    assert refused(operator, "UPDATE execution_tasks SET payload = '{}'")
    assert refused(operator, "UPDATE ledger_entries SET metadata = '{}'")
    assert refused(operator, "UPDATE operator_actions SET reason = 'x'")
    assert refused(operator, "DELETE FROM operator_actions")
    reveal = run_cli("proposals", "show", "fsar_o", "--reveal", "--dsn", operator)
    assert reveal.returncode == 2 and "--reveal refused" in reveal.stderr and reveal.stdout == ""
    anonymize = run_cli("anonymize", "--older-than", "90d", "--reason", "retention test", "--yes", "--dsn", operator)
    assert anonymize.returncode == 2 and "anonymize refused" in anonymize.stderr
    assert run_cli("anonymize", "--older-than", "90d", "--dry-run", "--dsn", operator).returncode == 0
    add = run_cli(
        "audit",
        "gate",
        "add",
        "g",
        "--metric",
        "failure_rate",
        "--pass-if",
        "< 0.5",
        "--window",
        "1h",
        "--hard",
        "--reason",
        "r",
        "--dsn",
        operator,
    )
    assert add.returncode == 1 and "permission denied" in add.stderr
    assert not q(db_dsn, "SELECT 1 FROM operator_actions WHERE action = 'reveal'")


async def test_an_operator_bulk_action_survives_the_triggers_housekeeping(db_dsn, login):
    """Each changed row's triggers fold counters and samples with probability 1/256, as the
    role that fired them: 3,000 cancels and 3,000 retries run dozens of folds as the operator."""
    from fsar_tui.db.tasks import COUNTS_DRIFT_SQL

    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model) SELECT 'implement_idea', 'gpt-4o' "
        "FROM generate_series(1, 3000)",
    )
    ids = [r[0] for r in q(db_dsn, "SELECT id FROM execution_tasks ORDER BY id")]
    operator = login("fsar_operator")
    async with await psycopg.AsyncConnection.connect(operator, autocommit=True) as conn:
        cancelled = await apply_action(conn, "cancel", [(i, "queued") for i in ids], "drain", scope="bulk")
        requeued = await apply_action(conn, "requeue", [(i, "cancelled") for i in ids], "refill", scope="bulk")
    assert len(cancelled.done) == len(requeued.done) == 3000
    assert q(db_dsn, COUNTS_DRIFT_SQL) == []  # counters still exact after the folds
    assert q(db_dsn, "SELECT count(*) FROM task_events")[0][0] == 9000


def test_admin_reveals_with_a_log_entry(db_dsn, login, run_cli, tmp_path):
    body = "\nWrite to jane.doe@example.com or +44 20 7946 0958."
    run_cli("ingest-fsar", str(write(tmp_path, "p.txt", report("fsar_a", body_extra=body))), "--dsn", db_dsn)
    admin = login("fsar_admin")
    redacted = run_cli("proposals", "show", "fsar_a", "--dsn", admin)
    assert "jane.doe@example.com" not in redacted.stdout and "[REDACTED:email]" in redacted.stdout
    assert not q(db_dsn, "SELECT 1 FROM operator_actions WHERE action = 'reveal'")
    read_only = run_cli("proposals", "show", "fsar_a", "--reveal", "--read-only", "--dsn", admin)
    assert read_only.returncode == 2 and "--read-only forbids" in read_only.stderr and read_only.stdout == ""
    raw = run_cli(
        "proposals", "show", "fsar_a", "--reveal", "--dsn=postgresql:///x?password=hunter2-not-logged", "--dsn", admin
    )
    assert raw.returncode == 0, raw.stderr
    assert "jane.doe@example.com" in raw.stdout and "+44 20 7946 0958" in raw.stdout
    ((actor_role, target, reason),) = q(
        db_dsn, "SELECT db_role, target, reason FROM operator_actions WHERE action = 'reveal'"
    )
    assert (
        actor_role == admin.split("user=")[1].split()[0]
        and target == "cli:proposals show fsar_a"
        and "--reveal" in reason
    )
    assert "hunter2" not in reason and reason == "fsar-tui proposals show fsar_a --dsn --reveal"  # names, no values


# -- anonymize ----------------------------------------------------------------------------------

PERSONAL = [
    ({"prompt": "email jane@example.com about it", "repo": "acme/api"}, {"summary": "done", "lines": 42}, None),
    ({"customer": {"name": "Jane Doe", "tier": "gold"}, "n": 3}, None, "card 4242 4242 4242 4242 declined"),
    ({"steps": ["call +1 415 555 0100", "write tests"]}, {"token": "sk-live_abcdefghijklmnop1234"}, None),
]
CLEAN = [
    ({"prompt": "refactor the parser", "files": ["a.py", "b.py"], "n": 12345}, {"ok": True, "ms": 1500}, None),
    ({"idea": "cache checkouts", "nested": {"depth": 2, "tags": ["x", "y"]}}, None, "TimeoutError: 120s"),
]


def insert_tasks(dsn, rows, days_ago, status="succeeded"):
    for payload, result, error in rows:
        x(
            dsn,
            "INSERT INTO execution_tasks (task_type, status, payload, result, error, created_at, queued_at, "
            "finished_at) VALUES ('implement_idea', %s, %s, %s, %s, now() - make_interval(days => %s), "
            "now() - make_interval(days => %s), CASE WHEN %s <> 'queued' THEN now() - make_interval(days => %s) END)",
            (
                status,
                json.dumps(payload),
                None if result is None else json.dumps(result),
                error,
                days_ago,
                days_ago,
                status,
                days_ago,
            ),
        )


def insert_ledger(dsn, metadata, days_ago, n):
    x(
        dsn,
        "INSERT INTO ledger_entries (source, external_id, kind, amount_minor, currency, occurred_at, metadata) "
        "VALUES ('test', %s, 'revenue', 100, 'USD', now() - make_interval(days => %s), %s)",
        (f"e{n}", days_ago, json.dumps(metadata)),
    )


def snapshot(dsn):
    return {
        r[0]: r[1:] for r in q(dsn, "SELECT id, payload::text, result::text, error, xmin::text FROM execution_tasks")
    }


def test_anonymize_leaves_no_detector_hit_and_clean_data_byte_identical(db_dsn, login, run_cli):
    insert_tasks(db_dsn, PERSONAL + CLEAN, 120)
    insert_tasks(db_dsn, PERSONAL, 10)  # young: kept as they are
    insert_tasks(db_dsn, PERSONAL[:1], 150, status="queued")  # old but still an agent's input: kept
    insert_ledger(db_dsn, {"receipt_email": "jane@example.com", "charge": "ch_1", "card_country": "US"}, 200, 1)
    insert_ledger(db_dsn, {"charge": "ch_2", "card_country": "DE"}, 200, 2)
    before = snapshot(db_dsn)
    ledger_before = dict(q(db_dsn, "SELECT external_id, metadata::text FROM ledger_entries"))
    admin = login("fsar_admin")

    dry = run_cli("anonymize", "--older-than", "90d", "--dry-run", "--batch-size", "2", "--dsn", admin)
    assert dry.returncode == 0, dry.stderr
    assert (
        "execution_tasks: scanned 5, would scrub 3" in dry.stdout
        and "ledger_entries: scanned 2, would scrub 1" in dry.stdout
    )
    assert snapshot(db_dsn) == before  # nothing written

    out = run_cli(
        "anonymize", "--older-than", "90d", "--batch-size", "2", "--reason", "retention test", "--yes", "--dsn", admin
    )
    assert out.returncode == 0, out.stderr
    assert "execution_tasks: scanned 5, scrubbed 3" in out.stdout
    after = snapshot(db_dsn)
    old = {r[0] for r in q(db_dsn, "SELECT id FROM execution_tasks WHERE finished_at < now() - interval '90 days'")}
    for task_id, (payload, result, error, _xmin) in after.items():
        fields = [json.loads(v) for v in (payload, result) if v is not None]
        hits = [k for v in fields for k in value_findings(v)] + (findings(error) if error else [])
        if task_id in old:
            assert hits == [], (task_id, hits)
        if before[task_id][:3] == after[task_id][:3] or task_id not in old:
            assert after[task_id] == before[task_id]  # untouched rows are not even rewritten (same xmin)
    clean_ids = sorted(old)[3:]
    assert all(after[i] == before[i] for i in clean_ids)  # non-personal data byte-identical
    # Inside a scrubbed row, what was not personal is unchanged.
    scrubbed = json.loads(after[sorted(old)[0]][0])
    assert scrubbed == {"prompt": "email [REDACTED:email] about it", "repo": "acme/api"}
    second = json.loads(after[sorted(old)[1]][0])
    assert second == {"customer": {"name": "[REDACTED:field]", "tier": "gold"}, "n": 3}
    young = sorted(set(after) - old)
    assert all(after[i] == before[i] for i in young)
    ledger = dict(q(db_dsn, "SELECT external_id, metadata FROM ledger_entries"))
    assert ledger["e1"] == {"receipt_email": "[REDACTED:field]", "charge": "ch_1", "card_country": "US"}
    assert dict(q(db_dsn, "SELECT external_id, metadata::text FROM ledger_entries"))["e2"] == ledger_before["e2"]
    assert [a for (a,) in q(db_dsn, "SELECT action FROM operator_actions ORDER BY seq")] == [
        "anonymize.start",
        "anonymize",
    ]
    ((counts,),) = q(db_dsn, "SELECT after FROM operator_actions WHERE action = 'anonymize'")
    assert counts["execution_tasks"]["changed"] == 3 and counts["ledger_entries"]["changed"] == 1
    # Stored Stripe events (from Stripe's own fixtures, January 2026: older than 90 days)
    # lose their billing details; what made them ledger rows stays.
    stripe = run_cli("ingest-stripe", str(STRIPE_EVENTS), "--dsn", db_dsn)
    assert stripe.returncode == 0, stripe.stderr
    personal = [r for r in q(db_dsn, "SELECT id, payload FROM stripe_events") if value_findings(r[1])]
    assert personal  # the fixtures do carry emails, names and addresses
    ledger_rows = q(db_dsn, "SELECT external_id, kind, amount_minor, currency FROM ledger_entries ORDER BY 1")
    out = run_cli("anonymize", "--older-than", "90d", "--reason", "retention test", "--yes", "--dsn", admin)
    assert f"stripe_events: scanned 44, scrubbed {len(personal)}" in out.stdout, out.stdout
    assert [r for r in q(db_dsn, "SELECT id, payload FROM stripe_events") if value_findings(r[1])] == []
    assert q(db_dsn, "SELECT external_id, kind, amount_minor, currency FROM ledger_entries ORDER BY 1") == ledger_rows
    after = snapshot(db_dsn)
    # A second run finds nothing left.
    again = run_cli("anonymize", "--older-than", "90d", "--reason", "retention test", "--yes", "--dsn", admin)
    assert "scrubbed 0" in again.stdout and snapshot(db_dsn) == after
    assert run_cli("anonymize", "--older-than", "soon", "--dsn", admin).returncode == 2


def test_a_row_changed_between_read_and_write_is_left_alone(db_dsn):
    from fsar_tui.db import governance
    from fsar_tui.db.connect import connect

    insert_tasks(db_dsn, PERSONAL[:1], 120)
    with connect(db_dsn, autocommit=True) as conn:
        (row,) = next(governance.batches(conn, "execution_tasks", datetime.now(UTC), 10))
        new = scrub_row("execution_tasks", row)
        x(db_dsn, "UPDATE execution_tasks SET result = '{\"late\": true}'")  # an executor got there first
        assert governance.write_scrubbed(conn, "execution_tasks", [(row, new)]) == 0
        assert governance.write_scrubbed(conn, "execution_tasks", [(row, new)]) == 0  # still stale
    assert q(db_dsn, "SELECT payload, result FROM execution_tasks") == [(PERSONAL[0][0], {"late": True})]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=30)
    | st.sampled_from(["jane@example.com", "4242 4242 4242 4242", "+1 415 555 0100", "sk-live_abcdefghijklmnop1234"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "note",
                    "email",
                    "n",
                    "prompt",
                    "tags",
                    "jane@example.com",
                    "bob@example.org",
                    "+1 415 555 0100",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(json_values, json_values)
def test_scrubbing_is_idempotent_and_leaves_no_findings(payload, result):
    row = (1, payload, result, None)
    scrubbed = scrub_row("execution_tasks", row) or row
    assert scrub_row("execution_tasks", scrubbed) is None  # a second pass finds nothing to change
    assert value_findings(scrubbed[1]) == [] and value_findings(scrubbed[2]) == []


def test_personal_data_in_keys_is_scrubbed_too():
    value = {"recipients": {"jane@example.com": "sent", "bob@example.org": "bounced"}, "n": 2}
    assert Policy().value(value) == {"recipients": {"[REDACTED:email]": "sent", "[REDACTED:email]'": "bounced"}, "n": 2}
    assert value_findings(value) == ["email"]


@given(json_values)
def test_a_value_without_findings_is_returned_unchanged(value):
    if not value_findings(value):
        assert Policy().value(value) == value


# -- security audit -------------------------------------------------------------------------------


def test_security_audit(db_dsn, login, run_cli):
    su = run_cli("security-audit", "--dsn", db_dsn)
    assert su.returncode == 1 and "FAIL  app role is not a superuser: role postgres has SUPERUSER" in su.stdout
    operator = login("fsar_operator")
    ok = run_cli("security-audit", "--dsn", operator)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("PASS") == 9 and "9 of 9 checks passed" in ok.stderr
    replica = run_cli("security-audit", "--dsn", operator, "--read-dsn", operator)
    assert replica.returncode == 0 and "PASS  TLS for the read DSN: local connection" in replica.stdout
    # The read-only role given a write: caught.
    x(db_dsn, "GRANT INSERT ON fsar_proposals TO fsar_viewer")
    leak = run_cli("security-audit", "--format", "json", "--dsn", operator)
    assert leak.returncode == 1
    checks = {c["check"]: c for c in json.loads(leak.stdout)}
    assert not checks["read-only role cannot write"]["ok"]
    assert "fsar_viewer can write fsar_proposals" in checks["read-only role cannot write"]["detail"]
    x(db_dsn, "REVOKE INSERT ON fsar_proposals FROM fsar_viewer")
    x(db_dsn, "GRANT UPDATE (status) ON execution_tasks TO fsar_viewer")  # a column grant is a write too
    column = run_cli("security-audit", "--dsn", operator)
    assert column.returncode == 1 and "fsar_viewer can write execution_tasks" in column.stdout
    x(db_dsn, "REVOKE UPDATE (status) ON execution_tasks FROM fsar_viewer")
    # A tampered log: caught.
    x(db_dsn, "INSERT INTO operator_actions (actor, action, target) VALUES ('a', 'b', 'c')")
    as_superuser_without_trigger(db_dsn, "UPDATE operator_actions SET reason = 'edited'")
    broken = run_cli("security-audit", "--dsn", operator)
    assert (
        broken.returncode == 1
        and "FAIL  operator log hash chain verifies: seq 1: content does not match its hash (edited)" in broken.stdout
    )
    # The append-only trigger disabled: UPDATE gets through (rolled back), and the audit says so.
    x(db_dsn, "ALTER TABLE operator_actions DISABLE TRIGGER operator_actions_append_only")
    try:
        open_log = run_cli("security-audit", "--dsn", db_dsn)
    finally:
        x(db_dsn, "ALTER TABLE operator_actions ENABLE TRIGGER operator_actions_append_only")
    assert "FAIL  operator_actions rejects UPDATE and DELETE: UPDATE: 1 row(s) updated" in open_log.stdout
    assert q(db_dsn, "SELECT reason FROM operator_actions") == [("edited",)]  # the attempt was rolled back


@pytest.mark.parametrize(
    "dsn, ok",
    [
        ("host=127.0.0.1 dbname=x", True),
        ("host=/var/run/postgresql dbname=x", True),
        ("postgresql://u:secret@db.example.com/x", False),
        ("postgresql://u:secret@db.example.com/x?sslmode=prefer", False),
        ("postgresql://u:secret@db.example.com/x?sslmode=disable", False),
        ("postgresql://u:secret@db.example.com/x?sslmode=require", True),
        ("host=db.example.com sslmode=verify-full", True),
    ],
)
def test_tls_verdict(dsn, ok):
    verdict, detail = tls_verdict(dsn)
    assert verdict is ok and "secret" not in detail


def test_tls_verdict_judges_where_the_session_went():
    # No host in the DSN (PGHOST elsewhere), or hostaddr: the connection decides.
    assert tls_verdict("dbname=x", connected_host="db.example.com")[0] is False
    assert tls_verdict("hostaddr=10.1.2.3 dbname=x")[0] is False
    assert tls_verdict("host=db.example.com sslmode=require", connected_host="10.1.2.3", tls_in_use=False) == (
        False,
        "remote connection is not encrypted: use sslmode=verify-full",
    )
    assert tls_verdict("host=db.example.com sslmode=verify-full", connected_host="10.1.2.3", tls_in_use=True)[0]
    assert tls_verdict("dbname=x", connected_host="/var/run/postgresql")[0]


def test_anonymize_needs_a_reason_and_a_confirmation_like_every_write(db_dsn, login, run_cli):
    admin = login("fsar_admin")
    no_reason = run_cli("anonymize", "--older-than", "90d", "--yes", "--dsn", admin)
    assert no_reason.returncode == 2 and "--reason is required" in no_reason.stderr
    unconfirmed = run_cli("anonymize", "--older-than", "90d", "--reason", "retention", "--dsn", admin)
    assert unconfirmed.returncode == 2 and "confirm with --yes" in unconfirmed.stderr  # no terminal here
    assert q(db_dsn, "SELECT count(*) FROM operator_actions WHERE action LIKE 'anonymize%%'") == [(0,)]
    assert run_cli("anonymize", "--older-than", "90d", "--dry-run", "--dsn", admin).returncode == 0  # free
