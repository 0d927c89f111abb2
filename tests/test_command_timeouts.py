"""Every command honours --statement-timeout-ms, the two that did not included: `log
verify` opened its connection with statement_timeout 0 and `anonymize` ran `SET
statement_timeout = 0`, so with another session holding the table locked they waited
out the whole lock (29 s and 59 s in the attack; 157 s through PgBouncer) while every
other command failed at ~5 s. Now, with the lock held in another connection, both exit
1 naming the statement (or lock) timeout in seconds; the old code was still waiting
when the test's 60 s ran out.

The one statement that grows with the data — the database's own walk of the operator
log, fsar_operator_actions_verify() (~0.7 ms a row) — runs without a statement timeout
but with the timeout as its lock_timeout, and both settings are back afterwards.
anonymize reads at most --batch-size rows by key per statement, so the timeout bounds a
batch: rows old enough between many new ones are all found, each once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from support.sql import q, x

LIMIT_S = 30  # the old code waited as long as the lock was held: past run_cli's timeout (60 s)


def _timed_out(done, elapsed: float) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith(("fsar-tui: statement timeout", "fsar-tui: lock timeout")), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert elapsed < LIMIT_S, elapsed


def _with_lock_held(dsn: str, table: str, run):
    with psycopg.connect(dsn) as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        done = run()
        return done, time.monotonic() - started


def test_log_verify_honours_the_statement_timeout(db_dsn, run_cli, tmp_path):
    anchor = str(tmp_path / "anchors.json")
    assert run_cli("log", "verify", "--anchor", anchor, "--dsn", db_dsn).returncode == 0  # intact, unlocked
    done, elapsed = _with_lock_held(
        db_dsn,
        "operator_actions",
        lambda: run_cli(
            "log", "verify", "--anchor", anchor, "--statement-timeout-ms", "1000", "--dsn", db_dsn, timeout=60
        ),
    )
    _timed_out(done, elapsed)


def test_anonymize_dry_run_honours_the_statement_timeout(db_dsn, run_cli):
    done, elapsed = _with_lock_held(
        db_dsn,
        "execution_tasks",
        lambda: run_cli(
            "anonymize",
            "--dry-run",
            "--older-than",
            "1d",
            "--statement-timeout-ms",
            "1000",
            "--dsn",
            db_dsn,
            timeout=60,
        ),
    )
    _timed_out(done, elapsed)


def test_anonymize_honours_the_statement_timeout(db_dsn, login, run_cli):
    admin = login("fsar_admin")
    done, elapsed = _with_lock_held(
        db_dsn,
        "ledger_entries",
        lambda: run_cli(
            "anonymize",
            "--older-than",
            "1d",
            "--reason=t",
            "--yes",
            "--statement-timeout-ms",
            "1000",
            "--dsn",
            admin,
            timeout=60,
        ),
    )
    _timed_out(done, elapsed)


def test_the_databases_own_walk_bounds_its_lock_wait_and_restores_the_settings(db_dsn):
    from fsar_tui.db import operator_log
    from fsar_tui.db.connect import connect

    for autocommit in (True, False):
        with connect(db_dsn, autocommit=autocommit, statement_timeout_ms=700) as conn:
            assert operator_log.database_verdict_sync(conn) is None
            assert conn.execute(
                "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
            ).fetchone() == ("700ms", "0")
    with connect(db_dsn, autocommit=True, statement_timeout_ms=700) as conn:
        with psycopg.connect(db_dsn) as holder:
            holder.execute("LOCK TABLE operator_actions IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(psycopg.errors.LockNotAvailable):
                operator_log.database_verdict_sync(conn)
            assert time.monotonic() - started < 10
        assert conn.execute("SHOW statement_timeout").fetchone() == ("700ms",)


def test_anonymize_batches_find_every_old_row_between_new_ones(db_dsn):
    from fsar_tui.db import governance
    from fsar_tui.db.connect import connect

    # 1,000 finished tasks, every 97th of them finished long ago.
    x(
        db_dsn,
        "INSERT INTO execution_tasks (task_type, status, payload, started_at, finished_at) "
        "SELECT 'implement_idea', 'succeeded', jsonb_build_object('n', g), now() - interval '1 hour', "
        "CASE WHEN g % 97 = 0 THEN now() - interval '400 days' ELSE now() END FROM generate_series(1, 1000) g",
    )
    old = [
        r[0]
        for r in q(db_dsn, "SELECT id FROM execution_tasks WHERE finished_at < now() - interval '1 day' ORDER BY id")
    ]
    assert len(old) == 10
    cutoff = datetime.now(UTC) - timedelta(days=90)
    with connect(db_dsn, autocommit=True, statement_timeout_ms=5000) as conn:
        found = [row for batch in governance.batches(conn, "execution_tasks", cutoff, 25) for row in batch]
        assert [row[0] for row in found] == old
        assert all(row[1] is not None for row in found)  # the columns of the rows found are there
        assert all(len(batch) <= 25 for batch in governance.batches(conn, "execution_tasks", cutoff, 25))
        assert [r[0] for b in governance.batches(conn, "execution_tasks", cutoff, 1) for r in b] == old


@pytest.mark.parametrize("table", ["duration_sketches", "ledger_daily"])
def test_profile_backfill_waits_for_a_lock_no_longer_than_the_statement_timeout(table, db_dsn, run_cli):
    """`profile --backfill` lifts the statement timeout for its batches (bounded by their
    size), its sketch rebuild and its VACUUM — which waited as long as a lock was held
    (duration_sketches: the rebuild; ledger_daily: the VACUUM). Its lock waits now end at
    the statement timeout."""
    done, elapsed = _with_lock_held(
        db_dsn,
        table,
        lambda: run_cli("profile", "--backfill", "--statement-timeout-ms", "1000", "--dsn", db_dsn, timeout=60),
    )
    _timed_out(done, elapsed)


def test_profile_backfill_settings_are_back_afterwards(db_dsn):
    from fsar_tui.db import profiles
    from fsar_tui.db.connect import connect

    with connect(db_dsn, autocommit=True, statement_timeout_ms=700) as conn:
        profiles.rebuild_sketches(conn)
        profiles.vacuum_rollups(conn)
        assert conn.execute(
            "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
        ).fetchone() == ("700ms", "0")


def test_through_pgbouncer_log_verify_and_anonymize_honour_it_too(server_dsn, db_dsn, run_cli, tmp_path):
    """The attack's 157 s: behind a transaction pooler the timeout travels per transaction
    (db/pooler.py); log verify and anonymize --dry-run now get it like the rest."""
    from support.pgbouncer import PgBouncer

    bouncer = PgBouncer(server_dsn).start()
    try:
        pooled = bouncer.dsn(db_dsn)
        anchor = str(tmp_path / "anchors.json")
        for table, argv in (
            ("operator_actions", ["log", "verify", "--anchor", anchor]),
            ("execution_tasks", ["anonymize", "--dry-run", "--older-than", "1d"]),
        ):
            done, elapsed = _with_lock_held(
                db_dsn,
                table,
                lambda argv=argv: run_cli(*argv, "--statement-timeout-ms", "1000", "--dsn", pooled, timeout=60),
            )
            _timed_out(done, elapsed)
    finally:
        bouncer.stop()
