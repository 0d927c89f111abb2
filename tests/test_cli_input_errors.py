"""Every input error is a usage error, and what the server refuses is named (issue 15
point 3), through the real CLI against a real PostgreSQL:
- out-of-range windows, durations, ids, limits, sizes: one line, exit 2, nothing written;
- a lock held by another session (migrate), a statement timeout, a refused privilege
  (an operator's downgrade): one line naming it, exit 1 — never "internal error";
- a reader that closes the pipe early (`| head -1`): exit 0, nothing on stderr.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import psycopg
import pytest

from fsar_tui.db.migrations import known_revisions
from support.sql import q, x

pytestmark = pytest.mark.services

USAGE = [
    ["tasks", "list", "--filter", "since:9999999999w"],
    ["tasks", "list", "--filter", "since:99999999d"],
    ["tasks", "list", "--limit", "0"],
    ["profile", "--window", "0d"],
    ["profile", "--window", "99999999999d"],
    ["roi", "--window", "9999999999w"],
    ["log", "list", "--since", "9999999999w"],
    ["log", "list", "--limit", "-1"],
    ["audit", "override", "g", "--for", "9999999999w", "--reason", "x"],
    ["audit", "gate", "add", "g", "--metric", "failure_rate", "--pass-if", "<= 1e999", "--window", "1d", "--reason=x"],
    ["anonymize", "--older-than", "99999999999d", "--dry-run"],
    ["anonymize", "--older-than", "1d", "--batch-size", "0", "--dry-run"],
    ["seed", "--tasks", "99999999999999"],
    ["seed", "--days", "0"],
    ["simulate", "--workers", "-1"],
    ["tasks", "show", "abc"],
]


@pytest.mark.parametrize("argv", USAGE, ids=[" ".join(a[:3]) for a in USAGE])
def test_out_of_range_input_is_one_line_and_exit_2(argv, db_dsn, run_cli):
    before = q(db_dsn, "SELECT count(*) FROM execution_tasks")
    done = run_cli(*argv, "--dsn", db_dsn, timeout=60)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert q(db_dsn, "SELECT count(*) FROM execution_tasks") == before


@pytest.mark.parametrize("command", [["metrics"], ["serve"], ["webhook"]])
def test_a_huge_host_is_cut_where_the_error_quotes_it(command, db_dsn, run_cli):
    """A 3,000-character --host came back whole in the error (an attack's finding)."""
    from fsar_tui.domain.sanitize import MAX_HOST_CHARS

    host = "a" * 3000 + ".example"
    done = run_cli(*command, "--host", host, "--port", "9", "--dsn", db_dsn, timeout=60)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(("fsar-tui: cannot listen on aaa", "fsar-tui: --host 'aaa")), line
    assert "a" * MAX_HOST_CHARS not in line and "a…" in line and len(line) < MAX_HOST_CHARS + 150, line


def test_a_statement_timeout_is_named_and_exit_1(db_dsn, run_cli):
    with psycopg.connect(db_dsn) as holder:
        holder.execute("LOCK TABLE execution_tasks IN ACCESS EXCLUSIVE MODE")
        done = run_cli("tasks", "list", "--statement-timeout-ms", "300", "--dsn", db_dsn, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("fsar-tui: statement timeout"), done.stderr
    assert "connection lost" not in done.stderr


def test_migrate_meeting_a_held_lock_is_named_and_exit_1(db_dsn, run_cli):
    with psycopg.connect(db_dsn) as holder:
        holder.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        done = run_cli("migrate", "--dsn", db_dsn, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "could not lock the tables" in done.stderr and "internal error" not in done.stderr


def test_an_operators_refused_downgrade_names_the_privilege(db_dsn, login, run_cli):
    head, below = known_revisions()[-1], known_revisions()[-2]
    done = run_cli("migrate", "--downgrade", below, "--yes", "--dsn", login("fsar_operator"), timeout=60)
    assert done.returncode == 1, done.stderr
    # Which refusal comes first depends on the revision undone ("must be owner of …",
    # "permission denied for schema public"): named, with the hint, never "internal error".
    assert ("must be owner" in done.stderr or "permission denied" in done.stderr) and "lacks the grant" in done.stderr
    assert "internal error" not in done.stderr
    assert q(db_dsn, "SELECT version_num FROM alembic_version") == [(head,)]


def test_a_closed_pipe_ends_quietly(db_dsn, isolated_env, tmp_path):
    x(db_dsn, "INSERT INTO execution_tasks (task_type) SELECT 'implement_idea' FROM generate_series(1, 3000)")
    cli = subprocess.Popen(
        [sys.executable, "-m", "fsar_tui", "tasks", "list", "--limit", "3000", "--dsn", db_dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=isolated_env,
        cwd=tmp_path,
    )
    assert cli.stdout is not None and cli.stderr is not None
    first = cli.stdout.readline()  # `| head -1`: read one line, then go away
    cli.stdout.close()
    err = threading.Thread(target=lambda: setattr(cli, "err_text", cli.stderr.read()))
    err.start()
    code = cli.wait(timeout=60)
    err.join()
    assert b"id" in first
    assert code == 0
    assert cli.err_text == b"", cli.err_text  # type: ignore[attr-defined]
