"""Audit gates: judging (pure), measuring against a real database, blocking the simulator,
overrides, the built-in adversarial audits, and the CLI's exit codes."""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.db import gates
from fsar_tui.db.connect import connect
from fsar_tui.domain import profiles
from fsar_tui.domain.gates import METRICS, MIN_SAMPLES, Gate, Measurement, judge, parse_condition
from fsar_tui.services import gates as gate_pass
from support.sql import q, x

ROOT = Path(__file__).resolve().parent.parent


def gate(metric="failure_rate", comparator="<", threshold=0.2, baseline_s=None, **kw) -> Gate:
    return Gate(
        1, "g", metric, kw.pop("scope", {}), 3600, comparator, threshold, kw.pop("hard", True), baseline_s, **kw
    )


# -- judging ---------------------------------------------------------------------------------


def test_judge_pass_fail_and_inconclusive():
    assert judge(gate(), Measurement(0.1, 100)).verdict == "pass"
    assert judge(gate(), Measurement(0.3, 100)).verdict == "fail"
    few = judge(gate(), Measurement(0.9, MIN_SAMPLES - 1))
    assert few.verdict == "inconclusive" and "sample(s) in the window" in few.details["why"]
    assert judge(gate(), Measurement(None, 0)).verdict == "inconclusive"
    # Counts are not sampled statistics: one anomaly is one anomaly.
    assert judge(gate("anomaly_count", "<=", 0), Measurement(1, 1)).verdict == "fail"


def test_judge_relative_to_baseline():
    g = gate("p90_run_time", "<=", 1.5, baseline_s=7 * 86400)
    v = judge(g, Measurement(300.0, 100), Measurement(100.0, 1000))
    assert (v.verdict, v.value, v.measured, v.baseline) == ("fail", 3.0, 300.0, 100.0)
    assert judge(g, Measurement(120.0, 100), Measurement(100.0, 1000)).verdict == "pass"
    assert judge(g, Measurement(120.0, 100), Measurement(100.0, 5)).verdict == "inconclusive"
    assert judge(g, Measurement(120.0, 100), None).verdict == "inconclusive"
    zero = gate("failure_rate", "<=", 2.0, baseline_s=86400)
    assert judge(zero, Measurement(0.0, 100), Measurement(0.0, 100)).verdict == "pass"  # 0 over 0: unchanged
    assert judge(zero, Measurement(0.1, 100), Measurement(0.0, 100)).verdict == "inconclusive"


@given(
    st.sampled_from(["<", "<=", ">", ">="]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", " ", "  "]),
)
def test_parse_condition_round_trips(comparator, threshold, space):
    assert parse_condition(f"{comparator}{space}{threshold!r}") == (comparator, threshold)


@pytest.mark.parametrize("text", ["", "=< 1", "== 1", "< abc", "< nan", "< inf", "1 <"])
def test_parse_condition_rejects(text):
    with pytest.raises(ValueError):
        parse_condition(text)


def test_metric_list_matches_the_migration():
    path = ROOT / "alembic" / "versions" / "0026_unpriced_gate.py"  # the newest revision that set the CHECK
    spec = importlib.util.spec_from_file_location("rev0026", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(METRICS) == set(module.METRICS)


def test_merged_profile_is_the_union():
    a = profiles.Profile(("a", "m"), succeeded=3, failed=1, run={10: 2, 20: 2}, run_total_ms=40, cost={"USD": 8.0})
    b = profiles.Profile(("b", "m"), succeeded=1, failed=3, run={20: 1, 30: 3}, run_total_ms=60, cost={"USD": 2.0})
    m = profiles.merge([a, b])
    assert (m.succeeded, m.failed, m.run, m.cost) == (4, 4, {10: 2, 20: 3, 30: 3}, {"USD": 10.0})
    assert m.failure_rate == 0.5 and m.cost_per_success == (2.5, "USD")


# -- measuring against PostgreSQL --------------------------------------------------------------


def finished_tasks(
    dsn,
    task_type,
    n,
    *,
    status="succeeded",
    minutes_ago=10,
    run_s=1.0,
    result="'{\"ok\": true}'",
    tokens=100,
    model="gpt-4o",
):
    """n finished tasks inserted as a worker would leave them (triggers write events and rollups)."""
    x(
        dsn,
        f"""INSERT INTO execution_tasks (task_type, ai_model, status, attempt, queued_at, started_at, finished_at,
                                          result, input_tokens, output_tokens, cost_minor, currency)
              SELECT %(type)s, %(model)s, %(status)s, 1, now() - make_interval(mins => %(ago)s) - interval '1 minute',
                     now() - make_interval(mins => %(ago)s) - make_interval(secs => %(run)s),
                     now() - make_interval(mins => %(ago)s), {result}, %(tokens)s, %(tokens)s, 5, 'USD'
              FROM generate_series(1, %(n)s)""",
        {
            "type": task_type,
            "model": model,
            "status": status,
            "ago": minutes_ago,
            "run": run_s,
            "n": n,
            "tokens": tokens,
        },
    )


def evaluate(dsn, name):
    with connect(dsn, autocommit=True) as conn:
        return gate_pass.run_gates(conn, name)[0][1]


def add(dsn, name, metric, condition, *, hard=False, scope=None, baseline_s=None):
    comparator, threshold = parse_condition(condition)
    with connect(dsn, autocommit=True) as conn:
        gates.add_gate(
            conn,
            Gate(0, name, metric, scope or {}, 3600, comparator, threshold, hard, baseline_s),
            actor="test",
            reason="test",
        )


def test_failure_rate_gate_measures_its_scope_only(db_dsn):
    finished_tasks(db_dsn, "self_improvement", 30, status="failed")
    finished_tasks(db_dsn, "self_improvement", 10)
    finished_tasks(db_dsn, "implement_idea", 40)
    add(db_dsn, "si", "failure_rate", "< 0.5", scope={"task_type": "self_improvement"})
    add(db_dsn, "ii", "failure_rate", "< 0.5", scope={"task_type": "implement_idea"})
    add(db_dsn, "all", "failure_rate", "< 0.5")
    si, ii, everything = evaluate(db_dsn, "si"), evaluate(db_dsn, "ii"), evaluate(db_dsn, "all")
    assert (si.verdict, si.value, si.sample_size) == ("fail", 0.75, 40)
    assert (ii.verdict, ii.value) == ("pass", 0.0)
    assert (everything.verdict, everything.value, everything.sample_size) == ("pass", 30 / 80, 80)
    # Each run is recorded with what it measured.
    assert q(
        db_dsn,
        "SELECT r.verdict, r.value::float8, r.details->>'condition' FROM audit_runs r "
        "JOIN audit_gates g ON g.id = r.gate_id WHERE g.name = 'si'",
    ) == [("fail", 0.75, "failure_rate < 0.5")]


def test_trust_inflation_finds_empty_results_and_zero_tokens(db_dsn):
    finished_tasks(db_dsn, "implement_idea", 30)
    finished_tasks(db_dsn, "implement_idea", 2, result="'{}'")
    finished_tasks(db_dsn, "implement_idea", 1, tokens=0)
    v = evaluate(db_dsn, "builtin:trust-inflation")
    assert v.verdict == "fail" and v.details["suspect"] == 3
    assert (v.details["empty_result"], v.details["zero_tokens"], v.details["no_event_trail"]) == (2, 1, 0)
    assert v.value == pytest.approx(3 / 33)


def test_trust_inflation_finds_a_success_without_event_trail(db_dsn):
    finished_tasks(db_dsn, "implement_idea", 25)
    # A writer that bypassed the triggers (replica role): the row says succeeded, no event says so.
    x(
        db_dsn,
        "SET session_replication_role = replica; "
        "INSERT INTO execution_tasks (task_type, ai_model, status, attempt, started_at, finished_at, result, "
        "input_tokens, output_tokens) VALUES ('implement_idea', 'gpt-4o', 'succeeded', 1, "
        "now() - interval '5 minutes', now() - interval '4 minutes', '{\"ok\": 1}', 5, 5)",
    )
    v = evaluate(db_dsn, "builtin:trust-inflation")
    assert v.verdict == "fail" and v.details["no_event_trail"] == 1


def test_sensitive_results_uses_the_redaction_detectors(db_dsn):
    finished_tasks(db_dsn, "implement_idea", 5, result='\'{"summary": "order 2024-01-01 12:00, 4 items"}\'')
    assert evaluate(db_dsn, "builtin:sensitive-results").verdict == "pass"
    finished_tasks(db_dsn, "implement_idea", 1, result='\'{"contact": "jane.doe@example.com"}\'')
    v = evaluate(db_dsn, "builtin:sensitive-results")
    assert (v.verdict, v.measured, v.details["kinds"]) == ("fail", 1, ["email"])
    # A policy field is personal data whatever its value looks like (the same policy as the screens).
    finished_tasks(db_dsn, "implement_idea", 1, result='\'{"Customer_Name": "Jane Doe"}\'')
    v = evaluate(db_dsn, "builtin:sensitive-results")
    assert (v.measured, v.details["kinds"]) == (2, ["email", "field"])


def test_sensitive_results_follow_the_configured_policy(db_dsn):
    from fsar_tui.domain.redact import Policy, policy, set_policy

    finished_tasks(db_dsn, "implement_idea", 2, result='\'{"badge": "EMP-123456"}\'')
    assert evaluate(db_dsn, "builtin:sensitive-results").verdict == "pass"
    default = policy()
    set_policy(Policy(patterns=(("employee_id", re.compile(r"EMP-\d{6}")),)))
    try:
        v = evaluate(db_dsn, "builtin:sensitive-results")
    finally:
        set_policy(default)
    assert (v.verdict, v.measured, v.details["kinds"]) == ("fail", 2, ["employee_id"])


def test_anomalies_are_robust_z_outliers_per_type_and_model(db_dsn):
    for i in range(40):  # a natural spread of run times: 1.0 … 2.95 s
        finished_tasks(db_dsn, "implement_idea", 1, run_s=1.0 + i * 0.05)
    assert evaluate(db_dsn, "builtin:anomalies").verdict == "pass"
    finished_tasks(db_dsn, "implement_idea", 1, run_s=50_000)
    v = evaluate(db_dsn, "builtin:anomalies")
    assert v.verdict == "fail" and v.measured == 1 and v.details["top"][0]["what"] == "run time"
    # One started at -infinity (the executing side wrote it; PostgreSQL takes it): it has no
    # run time to judge, and must not make the whole gate error ("cannot subtract
    # infinite timestamps") while it sits in the window.
    x(db_dsn, "UPDATE execution_tasks SET started_at = '-infinity' WHERE id = (SELECT min(id) FROM execution_tasks)")
    v = evaluate(db_dsn, "builtin:anomalies")
    assert v.verdict == "fail" and v.measured == 1, v.details


def test_broken_rollback_artifact_is_a_failing_hard_gate(db_dsn):
    x(db_dsn, "INSERT INTO rollouts (target, kind, task_type) VALUES ('prompt:x', 'prompt', 'implement_idea')")
    for rev, text in ((1, "one"), (2, "two")):
        x(
            db_dsn,
            """INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256)
                     SELECT id, %s, jsonb_build_object('prompt', %s::text),
                            encode(sha256(convert_to(jsonb_build_object('prompt', %s::text)::text, 'UTF8')), 'hex')
                     FROM rollouts WHERE target = 'prompt:x'""",
            (rev, text, text),
        )
    x(db_dsn, "UPDATE rollouts SET active_revision = 2 WHERE target = 'prompt:x'")
    assert evaluate(db_dsn, "builtin:rollback-artifacts").verdict == "pass"
    x(
        db_dsn,
        "ALTER TABLE rollout_revisions DISABLE TRIGGER USER; "
        'UPDATE rollout_revisions SET artifact = \'{"prompt": "evil"}\' WHERE revision = 1; '
        "ALTER TABLE rollout_revisions ENABLE TRIGGER USER",
    )
    v = evaluate(db_dsn, "builtin:rollback-artifacts")
    assert v.verdict == "fail" and "prompt:x" in v.details["broken"]
    blocks = q(db_dsn, "SELECT task_type, ref FROM execution_blocks")
    assert blocks == [(None, "builtin:rollback-artifacts")]  # hard and unscoped: nothing runs


# -- blocking the fleet ---------------------------------------------------------------------------


def sim(dsn, env, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fsar_tui",
            "simulate",
            "--no-enqueue",
            "--workers",
            "2",
            "--time-scale",
            "0",
            "--lease",
            "5",
            *args,
        ],
        env={**env, "FSAR_DSN": dsn},
        capture_output=True,
        text=True,
        timeout=120,
    )


def queued(dsn):
    return dict(
        q(dsn, "SELECT task_type, count(*) FROM execution_tasks WHERE status IN ('queued', 'running') GROUP BY 1")
    )


def test_failing_hard_gate_blocks_the_simulator_and_passing_unblocks(db_dsn, run_cli, isolated_env):
    finished_tasks(db_dsn, "self_improvement", 30, status="failed")
    finished_tasks(db_dsn, "self_improvement", 10)
    cli = ("--dsn", db_dsn)
    add_gate = run_cli(
        "audit",
        "gate",
        "add",
        "si-failures",
        "--metric",
        "failure_rate",
        "--pass-if",
        "< 0.5",
        "--window",
        "1h",
        "--type",
        "self_improvement",
        "--hard",
        "--reason",
        "canary",
        *cli,
    )
    assert add_gate.returncode == 0, add_gate.stderr
    run = run_cli("audit", "run", "--gate", "si-failures", *cli)
    assert run.returncode == 1 and "FAIL" in run.stdout and "si-failures" in run.stderr

    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model) SELECT t, 'gpt-4o' FROM "
        "(VALUES ('self_improvement'), ('implement_idea')) v(t), generate_series(1, 3)",
    )
    out = sim(db_dsn, isolated_env, "--duration", "4")
    assert out.returncode == 0, out.stderr
    assert queued(db_dsn) == {"self_improvement": 3}  # the other type ran; the gated one waited

    changed = run_cli("audit", "gate", "set", "si-failures", "--pass-if", "< 0.9", "--reason", "expected", *cli)
    assert changed.returncode == 0, changed.stderr
    assert run_cli("audit", "run", "--gate", "si-failures", *cli).returncode == 0
    out = sim(db_dsn, isolated_env, "--until-idle")
    assert out.returncode == 0, out.stderr
    assert queued(db_dsn) == {}
    actions = [
        r[0] for r in q(db_dsn, "SELECT action FROM operator_actions WHERE target = 'gate:si-failures' ORDER BY seq")
    ]
    # The failing verdict that started the block, the passing one that lifted it.
    assert actions == ["gate_add", "gate_blocked", "gate_change", "gate_unblocked"]


def test_override_lets_the_scope_run_until_the_gate_passes_again(db_dsn, run_cli):
    add(db_dsn, "hard", "open_blocking_proposals", "<= 0", hard=True, scope={"task_type": "implement_idea"})
    x(
        db_dsn,
        "INSERT INTO fsar_proposals (id, reported_at, severity, block_execution, task_type, body, "
        "source_sha256) VALUES ('p1', now(), 5, false, 'implement_idea', 'x', repeat('a', 64))",
    )
    x(db_dsn, "UPDATE fsar_proposals SET block_execution = true, block_lifted_at = now()")  # lifted: only the gate
    x(db_dsn, "UPDATE fsar_proposals SET block_lifted_at = NULL")
    assert evaluate(db_dsn, "hard").verdict == "fail"
    gate_blocks = "SELECT ref FROM execution_blocks WHERE source = 'gate'"
    assert q(db_dsn, gate_blocks) == [("hard",)]
    assert run_cli("audit", "override", "hard", "--dsn", db_dsn).returncode == 2  # a reason is required
    done = run_cli("audit", "override", "hard", "--reason", "proposal reviewed", "--dsn", db_dsn)
    assert done.returncode == 0, done.stderr
    assert q(db_dsn, gate_blocks) == []
    assert evaluate(db_dsn, "hard").verdict == "fail"  # still failing, still overridden
    assert q(db_dsn, gate_blocks) == []
    # Passing spends the override; the next failure blocks again.
    x(db_dsn, "UPDATE fsar_proposals SET status = 'rejected'")
    assert evaluate(db_dsn, "hard").verdict == "pass"
    x(db_dsn, "UPDATE fsar_proposals SET status = 'new'")
    assert evaluate(db_dsn, "hard").verdict == "fail"
    assert q(db_dsn, gate_blocks) == [("hard",)]
    again = run_cli("audit", "override", "nope", "--reason", "r", "--dsn", db_dsn)
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert q(db_dsn, "SELECT action, target FROM operator_actions WHERE action = 'gate_override'") == [
        ("gate_override", "gate:hard")
    ]


def test_model_scoped_hard_gate_blocks_only_that_model(db_dsn):
    add(db_dsn, "model", "open_blocking_proposals", "< 0", hard=True, scope={"ai_model": "gpt-4o"})  # always fails
    assert evaluate(db_dsn, "model").verdict == "fail"
    assert q(db_dsn, "SELECT task_type, ai_model FROM execution_blocks") == [(None, "gpt-4o")]


def test_audit_run_exit_codes_and_json(db_dsn, run_cli):
    import json

    out = run_cli("audit", "run", "--format", "json", "--dsn", db_dsn)
    assert out.returncode == 0, out.stderr  # an empty database: built-ins inconclusive or passing, none hard-failing
    report = json.loads(out.stdout)
    assert {g["name"] for g in report["gates"]} >= {"builtin:trust-inflation", "builtin:rollback-artifacts"}
    assert all(g["verdict"] in ("pass", "inconclusive") for g in report["gates"])
    assert not math.isnan(report["drift"]["firing"])
    bad = run_cli(
        "audit",
        "gate",
        "add",
        "x",
        "--metric",
        "failure_rate",
        "--pass-if",
        "=< 1",
        "--window",
        "1h",
        "--reason",
        "r",
        "--dsn",
        db_dsn,
    )
    assert bad.returncode == 2 and "pass condition" in bad.stderr and "Traceback" not in bad.stderr
    window = run_cli(
        "audit",
        "gate",
        "add",
        "x",
        "--metric",
        "failure_rate",
        "--pass-if",
        "< 1",
        "--window",
        "-1h",
        "--reason",
        "r",
        "--dsn",
        db_dsn,
    )
    assert window.returncode == 2 and "--window" in window.stderr
    assert run_cli("audit", "run", "--gate", "nope", "--dsn", db_dsn).returncode == 2
    assert q(db_dsn, "SELECT count(*) FROM audit_gates WHERE name = 'x'") == [(0,)]


def test_scheduled_check_evaluates_once_per_database_and_not_read_only(db_dsn):
    import psycopg

    from fsar_tui.services.audit_pass import EVALUATOR_LOCK, scheduled_check

    enabled = q(db_dsn, "SELECT count(*) FROM audit_gates WHERE enabled")[0][0]
    assert scheduled_check(db_dsn, read_only=True).gates_evaluated is None
    with psycopg.connect(db_dsn) as other:  # another panel mid-evaluation holds the lock
        other.execute("SELECT pg_advisory_xact_lock(%s)", (EVALUATOR_LOCK,))
        assert scheduled_check(db_dsn, read_only=False).gates_evaluated is None
    assert q(db_dsn, "SELECT count(*) FROM audit_runs") == [(0,)]
    assert scheduled_check(db_dsn, read_only=False).gates_evaluated == enabled
    assert q(db_dsn, "SELECT count(*) FROM audit_runs") == [(enabled,)]
    assert q(
        db_dsn,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ) == [(0,)]  # nothing left held in this database (other tests' databases hold their own)


def test_verdicts_past_retention_are_pruned_but_each_gates_latest_and_latest_pass_stay(db_dsn, login):
    from fsar_tui.services.audit_pass import scheduled_check

    def gate(name, history):
        x(
            db_dsn,
            "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold, hard, enabled) "
            "VALUES (%s, 'failure_rate', '1 hour', '<', 0.2, true, false)",
            (name,),
        )  # disabled: no new verdicts
        gate_id = q(db_dsn, "SELECT id FROM audit_gates WHERE name = %s", (name,))[0][0]
        for days, verdict in history:
            x(
                db_dsn,
                "INSERT INTO audit_runs (gate_id, at, verdict) VALUES (%s, now() - make_interval(days => %s), %s)",
                (gate_id, days, verdict),
            )
        return gate_id

    def kept(gate_id):
        return q(
            db_dsn,
            "SELECT extract(day FROM now() - at)::int, verdict FROM audit_runs WHERE gate_id = %s ORDER BY at",
            (gate_id,),
        )

    recent = gate("recent", [(200, "pass"), (150, "pass"), (120, "fail"), (100, "fail"), (10, "fail")])
    stale = gate("stale", [(300, "fail"), (250, "fail")])  # latest verdict past retention, never passed
    # Overrides: one newer than the latest pass (live), one between the two passes (spent by
    # the 150-day pass; pruning that pass would bring it back to life).
    for days in (130, 170):
        x(
            db_dsn,
            "INSERT INTO audit_gate_overrides (gate_id, actor, reason, at) "
            "VALUES (%s, 'ops', 'known', now() - make_interval(days => %s))",
            (recent, days),
        )
    live = "SELECT extract(day FROM now() - at)::int FROM live_gate_overrides"
    assert q(db_dsn, live) == [(130,)]
    operator = login("fsar_operator")
    check = scheduled_check(operator, read_only=False)  # the pass runs as an operator may
    assert check.prune_problem is None and check.runs_pruned == 4
    assert kept(recent) == [(150, "pass"), (10, "fail")]  # its latest pass (the override rule reads it), its latest
    assert kept(stale) == [(250, "fail")]  # a gate's latest verdict stays, however old
    assert q(db_dsn, live) == [(130,)]  # the spent override stays spent
    # The operator may prune by the rule, not delete verdicts at will.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        x(operator, "DELETE FROM audit_runs")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        x(login("fsar_viewer"), "SELECT fsar_prune_audit_runs(10, '1 day')")


def test_a_failing_prune_keeps_the_passs_verdicts(db_dsn):
    from fsar_tui.services.audit_pass import scheduled_check

    x(db_dsn, "ALTER FUNCTION fsar_prune_audit_runs(integer, interval) RENAME TO fsar_prune_gone")  # as before 0018
    check = scheduled_check(db_dsn, read_only=False)
    assert check.prune_problem and "fsar_prune_audit_runs" in check.prune_problem
    assert check.gates_evaluated and q(db_dsn, "SELECT count(*) FROM audit_runs") == [(check.gates_evaluated,)]
