"""Numbers the database cannot hold are usage errors at parse time, naming the option,
through the real CLI against a real PostgreSQL:

- `--statement-timeout-ms 99999999999` was "cannot connect …: FATAL: invalid value for
  parameter statement_timeout" (exit 2, read as a connection failure): now 1..86,400,000
  ms, from the flag, the environment or config.toml alike;
- `alerts ack 99999999999999999999` was "database error: bigint out of range" (exit 1):
  every id argument is a bigint id 1..2**63-1 (commands/base.positive_id), a rollout
  revision 1..2**31-1, and the row counts passed to SQL (log list --limit, anonymize
  --batch-size) 1..2**63-1. The largest id is still looked up (and not found).
"""

from __future__ import annotations

import pytest

from fsar_tui.config import load_settings
from fsar_tui.errors import UsageError

MAX_BIGINT = 2**63 - 1
MAX_STATEMENT_TIMEOUT_MS = 86_400_000
HUGE = "99999999999999999999"  # > 2**63 - 1


def _one_line_usage_error(done, *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    for wrong in ("cannot connect", "database error", "out of range", "internal error", "Traceback"):
        assert wrong not in done.stderr, done.stderr


@pytest.mark.parametrize("value", ["99999999999", "86400001", "0", "-1", "soon"])
def test_statement_timeout_out_of_range_is_a_usage_error_naming_the_option(value, db_dsn, run_cli):
    done = run_cli("tasks", "list", f"--statement-timeout-ms={value}", "--dsn", db_dsn, timeout=60)
    _one_line_usage_error(done, "--statement-timeout-ms")


def test_statement_timeout_at_the_bound_works(db_dsn, run_cli):
    done = run_cli("tasks", "list", "--statement-timeout-ms", str(MAX_STATEMENT_TIMEOUT_MS), "--dsn", db_dsn)
    assert done.returncode == 0, done.stderr
    assert "no task matches" in done.stdout


def test_statement_timeout_from_the_environment_is_bounded_too(db_dsn, run_cli, isolated_env):
    env = {**isolated_env, "FSAR_STATEMENT_TIMEOUT_MS": "99999999999"}
    done = run_cli("tasks", "list", "--dsn", db_dsn, env=env, timeout=60)
    _one_line_usage_error(done, "statement_timeout_ms", "86,400,000")


def test_statement_timeout_from_config_toml_is_bounded(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("statement_timeout_ms = 99999999999\n")
    with pytest.raises(UsageError, match="statement_timeout_ms: must be at most 86,400,000 ms"):
        load_settings(env={}, flags={}, config_path=path)


ID_CASES = [
    (["alerts", "ack", HUGE, "--reason", "x"], "argument ID"),
    (["tasks", "show", HUGE], "argument ID"),
    (["tasks", "show", "0"], "argument ID"),
    (["tasks", "retry", "1", HUGE, "--reason", "x", "--yes"], "argument ID"),
    (["tasks", "cancel", HUGE, "--reason", "x", "--yes"], "argument ID"),
    (["tasks", "requeue", "-5", "--reason", "x", "--yes"], "argument ID"),
    (["rollback", "prompt/x", "--to", "99999999999", "--reason", "x", "--yes"], "argument --to"),
    (["log", "list", "--limit", HUGE], "argument --limit"),
    (["anonymize", "--older-than", "1d", "--batch-size", HUGE, "--dry-run"], "argument --batch-size"),
]


@pytest.mark.parametrize("argv,needle", ID_CASES, ids=[" ".join(a[:3]) for a, _ in ID_CASES])
def test_an_out_of_range_id_is_one_line_and_exit_2(argv, needle, db_dsn, run_cli):
    done = run_cli(*argv, "--dsn", db_dsn, timeout=60)
    _one_line_usage_error(done, needle)


def test_the_largest_id_reaches_the_database_and_is_not_found(db_dsn, run_cli):
    top = str(MAX_BIGINT)
    ack = run_cli("alerts", "ack", top, "--reason", "x", "--dsn", db_dsn)
    assert ack.returncode == 2 and ack.stderr.strip() == f"fsar-tui: no alert {top}", ack.stderr
    show = run_cli("tasks", "show", top, "--dsn", db_dsn)
    assert show.returncode == 1 and f"task {top} does not exist" in show.stderr, show.stderr


def test_positive_id_bounds():
    from fsar_tui.commands.base import positive_id

    assert positive_id("1") == 1 and positive_id(str(2**63 - 1)) == 2**63 - 1
    for bad in ("0", "-1", str(2**63), "1.5", "", "x" * 5000, "9" * 5000):
        with pytest.raises(Exception, match="invalid int value|must be 1"):
            positive_id(bad)
