"""The reference executor against a real database: exactly-once, crashes, controls, seed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from fsar_tui.db import executor
from fsar_tui.db.connect import aconnect
from fsar_tui.db.profiles import BLOCK_DRIFT_SQL, ROLLUP_DRIFT_SQL, SKETCH_DRIFT_SQL
from fsar_tui.db.roi import COST_DRIFT_SQL, LEDGER_DRIFT_SQL
from fsar_tui.db.tasks import COUNTS_DRIFT_SQL
from support.sql import q, x


def sim_process(dsn, env, *args, **popen):
    return subprocess.Popen(
        [sys.executable, "-m", "fsar_tui", "simulate", *args],
        env={**env, "FSAR_DSN": dsn},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def assert_events_agree_with_tasks(dsn):
    """Every task's task_events form one chain that ends in the task's own state."""
    broken = q(
        dsn,
        """
        WITH e AS (
            SELECT task_id, from_status, to_status, attempt,
                   lag(to_status) OVER (PARTITION BY task_id ORDER BY id) AS prev,
                   row_number() OVER (PARTITION BY task_id ORDER BY id) AS n,
                   row_number() OVER (PARTITION BY task_id ORDER BY id DESC) AS back
            FROM task_events)
        SELECT t.id, e.n, e.from_status, e.prev FROM e JOIN execution_tasks t ON t.id = e.task_id
        WHERE (e.n = 1 AND e.from_status IS NOT NULL)
           OR (e.n > 1 AND e.from_status IS DISTINCT FROM e.prev)
           OR (e.back = 1 AND (e.to_status <> t.status OR e.attempt <> t.attempt))
        LIMIT 5""",
    )
    assert broken == []
    # "No attempt runs twice": one claim (→ running) per (task, attempt), numbered 1..attempt.
    assert (
        q(
            dsn,
            "SELECT task_id, attempt FROM task_events WHERE to_status = 'running' "
            "GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5",
        )
        == []
    )
    assert (
        q(
            dsn,
            """SELECT t.id FROM execution_tasks t
                     LEFT JOIN (SELECT task_id, count(*) AS runs, max(attempt) AS top FROM task_events
                                WHERE to_status = 'running' GROUP BY 1) r ON r.task_id = t.id
                     WHERE coalesce(r.runs, 0) <> t.attempt OR coalesce(r.top, 0) <> t.attempt LIMIT 5""",
        )
        == []
    )
    # The queue screen's counters and the duration rollups (trigger-maintained) agree
    # with a recount from the tasks.
    assert q(dsn, COUNTS_DRIFT_SQL) == []
    assert q(dsn, ROLLUP_DRIFT_SQL) == []
    assert q(dsn, SKETCH_DRIFT_SQL) == []
    assert q(dsn, BLOCK_DRIFT_SQL) == []
    assert q(dsn, COST_DRIFT_SQL) == []
    assert q(dsn, LEDGER_DRIFT_SQL) == []


@pytest.mark.slow
def test_exactly_once_8_workers_2_processes_5000_tasks(db_dsn, isolated_env):
    proc = sim_process(
        db_dsn,
        isolated_env,
        "--workers",
        "4",
        "--processes",
        "2",
        "--tasks",
        "5000",
        "--rate",
        "0",
        "--time-scale",
        "0",
        "--until-idle",
        "--seed",
        "7",
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks") == [(5000,)]
    assert q(
        db_dsn, "SELECT count(*) FROM execution_tasks WHERE status NOT IN ('succeeded', 'failed', 'cancelled')"
    ) == [(0,)]
    assert_events_agree_with_tasks(db_dsn)
    # Both processes claimed work, and retries happened (the run exercised the retry path).
    pids = q(db_dsn, "SELECT count(DISTINCT split_part(worker_id, '-', 3)) FROM execution_tasks")[0][0]
    assert pids == 2
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks WHERE attempt > 1")[0][0] > 0
    assert q(db_dsn, "SELECT count(*) = count(DISTINCT external_id) FROM ledger_entries") == [(True,)]
    assert "claimed" in err and "Traceback" not in err


@pytest.mark.slow
def test_sigkilled_worker_process_tasks_are_requeued_after_lease_and_finish(db_dsn, isolated_env):
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, ai_model) "
        "SELECT 'self_improvement', 'gpt-4o' FROM generate_series(1, 8)",
    )
    # Self-improvement runs take minutes; at this scale a few seconds: the victim dies mid-run.
    victim = sim_process(
        db_dsn, isolated_env, "--no-enqueue", "--workers", "4", "--lease", "2", "--time-scale", "0.03", "--seed", "1"
    )
    deadline = time.monotonic() + 30
    held = []
    while time.monotonic() < deadline and len(held) < 4:
        held = q(
            db_dsn,
            "SELECT id FROM execution_tasks WHERE status = 'running' AND worker_id LIKE %s",
            (f"%-{victim.pid}-%",),
        )
        time.sleep(0.1)
    assert len(held) == 4, "the victim never claimed its tasks"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    held_ids = [r[0] for r in held]

    # The survivor runs faster: the test is about the hand-over, not the run times.
    survivor = sim_process(
        db_dsn,
        isolated_env,
        "--no-enqueue",
        "--workers",
        "4",
        "--lease",
        "2",
        "--time-scale",
        "0.002",
        "--until-idle",
        "--seed",
        "1",
    )
    _, err = survivor.communicate(timeout=240)
    assert survivor.returncode == 0, err
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks WHERE status IN ('queued', 'running')") == [(0,)]
    # Each task the victim held was given back by the reaper (visible as a task_event) and then finished.
    requeued = q(
        db_dsn,
        "SELECT DISTINCT task_id FROM task_events WHERE task_id = ANY(%s) "
        "AND from_status = 'running' AND to_status = 'queued'",
        (held_ids,),
    )
    assert sorted(r[0] for r in requeued) == sorted(held_ids)
    assert all(a >= 2 for (a,) in q(db_dsn, "SELECT attempt FROM execution_tasks WHERE id = ANY(%s)", (held_ids,)))
    assert "lost its worker" in err
    assert_events_agree_with_tasks(db_dsn)


async def enqueue_one(conn, task_type, model="gpt-4o-mini"):
    return (
        await executor.enqueue(
            conn,
            [
                {
                    "task_type": task_type,
                    "ai_model": model,
                    "idea_id": None,
                    "payload": {},
                    "priority": 0,
                    "max_attempts": 3,
                }
            ],
        )
    )[0][0]


async def test_claim_obeys_blocking_proposals_and_failing_hard_gates(db_dsn):
    conn = await aconnect(db_dsn)
    try:
        await enqueue_one(conn, "self_improvement")
        await enqueue_one(conn, "implement_idea")
        await conn.execute(
            "INSERT INTO fsar_proposals (id, reported_at, severity, block_execution, task_type, body, "
            "source_sha256) VALUES ('fsar_b', now(), 9, true, 'self_improvement', 'x', repeat('a', 64))"
        )
        claimed = await executor.claim(conn, "w", 30)
        assert claimed.task_type == "implement_idea"
        assert await executor.claim(conn, "w", 30) is None  # the only queued task is blocked
        assert [r[0] for r in await executor.blocked_types(conn)] == ["self_improvement"]

        # Lifting the block releases it at once.
        await conn.execute("UPDATE fsar_proposals SET block_lifted_at = now()")
        assert (await executor.claim(conn, "w", 30)).task_type == "self_improvement"

        # A failing hard gate with no type in scope blocks every type; a pass releases.
        await enqueue_one(conn, "implement_idea")
        await conn.execute(
            "INSERT INTO audit_gates (name, metric, time_window, comparator, threshold, hard) "
            "VALUES ('fail-rate', 'failure_rate', '1 hour', '<', 0.2, true)"
        )
        await conn.execute("INSERT INTO audit_runs (gate_id, verdict, value) SELECT id, 'fail', 0.5 FROM audit_gates")
        assert await executor.claim(conn, "w", 30) is None
        await conn.execute("INSERT INTO audit_runs (gate_id, verdict, value) SELECT id, 'pass', 0.1 FROM audit_gates")
        assert (await executor.claim(conn, "w", 30)) is not None
    finally:
        await conn.close()


async def test_claim_stamps_active_rollout_and_switches_at_commit(db_dsn):
    conn = await aconnect(db_dsn)
    try:
        await conn.execute(
            "INSERT INTO rollouts (target, kind, task_type) VALUES ('model/impl', 'model', 'implement_idea')"
        )
        await conn.execute(
            "INSERT INTO rollout_revisions (rollout_id, revision, artifact, sha256) "
            "SELECT id, n, jsonb_build_object('ai_model', m), repeat('d', 64) "
            "FROM rollouts, (VALUES (1, 'model-a'), (2, 'model-b')) v(n, m)"
        )
        await conn.execute("UPDATE rollouts SET active_revision = 2")
        rev = dict(
            await (await conn.execute("SELECT revision, id FROM rollout_revisions ORDER BY revision")).fetchall()
        )
        await enqueue_one(conn, "implement_idea")
        await enqueue_one(conn, "implement_idea")
        await enqueue_one(conn, "self_improvement")
        first = await executor.claim(conn, "w", 30)
        assert (first.rollout_revision_id, first.ai_model) == (rev[2], "model-b")
        # A rollback commits: the very next claim runs under the restored revision.
        await conn.execute("UPDATE rollouts SET active_revision = 1")
        second = await executor.claim(conn, "w", 30)
        assert (second.rollout_revision_id, second.ai_model) == (rev[1], "model-a")
        other = await executor.claim(conn, "w", 30)
        assert other.task_type == "self_improvement" and other.rollout_revision_id is None
    finally:
        await conn.close()


async def test_lost_lease_cannot_overwrite_the_attempt_that_replaced_it(db_dsn):
    conn = await aconnect(db_dsn)
    try:
        await enqueue_one(conn, "implement_idea")
        stale = await executor.claim(conn, "slow-worker", 0.01)
        time.sleep(0.05)
        assert len(await executor.reap_expired(conn)) == 1
        fresh = await executor.claim(conn, "fast-worker", 30)
        assert fresh.attempt == stale.attempt + 1
        assert not await executor.renew_lease(conn, stale, "slow-worker", 30)
        lost = await executor.finish(
            conn,
            stale,
            "slow-worker",
            status="succeeded",
            result={},
            error=None,
            input_tokens=1,
            output_tokens=1,
        )
        assert lost is None
        assert (
            await executor.finish(
                conn,
                fresh,
                "fast-worker",
                status="succeeded",
                result={"ok": 1},
                error=None,
                input_tokens=1,
                output_tokens=1,
            )
            is not None
        )
    finally:
        await conn.close()
    assert q(db_dsn, "SELECT status, worker_id, attempt FROM execution_tasks") == [("succeeded", "fast-worker", 2)]


@pytest.mark.parametrize(
    "args,needle",
    [
        (("--workers", "0"), "--workers must be at least 1"),
        (("--processes", "0"), "--processes must be at least 1"),
        (("--rate", "-1"), "--rate cannot be negative"),
        (("--duration", "0"), "--duration must be positive"),
        (("--live", "smoke-signals"), "invalid choice"),
    ],
)
def test_invalid_simulate_options_exit_2(run_cli, args, needle):
    proc = run_cli("simulate", *args)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_seed_writes_consistent_reproducible_history(run_cli, db_dsn, server_dsn, template_db):
    from conftest import create_database, drop_database

    proc = run_cli("seed", "--days", "7", "--tasks", "3000", "--seed", "5", "--dsn", db_dsn)
    assert proc.returncode == 0, proc.stderr
    assert "seeded 3000 tasks" in proc.stdout
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks") == [(3000,)]
    assert_events_agree_with_tasks(db_dsn)
    span = q(
        db_dsn,
        "SELECT max(created_at) - min(created_at) <= interval '7 days', "
        "count(DISTINCT task_type), count(DISTINCT ai_model) FROM execution_tasks",
    )[0]
    assert span == (True, 3, 3)
    assert q(db_dsn, "SELECT count(*) FROM rollout_revisions")[0][0] >= 6
    assert q(db_dsn, "SELECT count(*) FROM fsar_proposals")[0][0] == 3
    assert q(db_dsn, "SELECT count(*) FROM execution_blocks") == [(0,)]  # demo data does not block the demo
    # Costs were priced with the price in force at the start (gpt-4o's price dropped 14 days ago).
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks WHERE input_tokens IS NOT NULL AND cost_minor IS NULL") == [
        (0,)
    ]
    # Same seed, another database: the same history (ids aside).
    other = "fsar_t_seed_twin"
    twin = create_database(server_dsn, other, template=template_db)
    try:
        assert run_cli("seed", "--days", "7", "--tasks", "3000", "--seed", "5", "--dsn", twin).returncode == 0
        shape = "SELECT task_type, ai_model, status, attempt, cost_minor FROM execution_tasks ORDER BY id"
        assert q(twin, shape) == q(db_dsn, shape)
    finally:
        drop_database(server_dsn, other)


@pytest.mark.slow
def test_workers_survive_a_database_restart_mid_run(own_cluster, isolated_env):
    from fsar_tui.db.migrations import migrate

    dsn = own_cluster.dsn()
    migrate(dsn)
    x(
        dsn,
        "INSERT INTO execution_tasks (task_type, ai_model) SELECT 'implement_idea', 'gpt-4o-mini' "
        "FROM generate_series(1, 300)",
    )
    proc = sim_process(
        dsn,
        isolated_env,
        "--no-enqueue",
        "--workers",
        "4",
        "--lease",
        "3",
        "--time-scale",
        "0.01",
        "--until-idle",
        "--seed",
        "2",
    )
    deadline = time.monotonic() + 30
    while q(dsn, "SELECT count(*) FROM execution_tasks WHERE status = 'succeeded'")[0][0] < 20:
        assert time.monotonic() < deadline, "the simulator made no progress"
        time.sleep(0.1)
    own_cluster.restart()
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert q(dsn, "SELECT count(*) FROM execution_tasks WHERE status IN ('queued', 'running')") == [(0,)]
    assert_events_agree_with_tasks(dsn)
    assert "Traceback" not in err
