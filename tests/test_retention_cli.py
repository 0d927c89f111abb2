"""`fsar-tui retention run|restore` as operators and cron call them: exit codes, one-line
errors, the output's words; config.toml `[retention]`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import RUN_PREFIX, create_database, drop_database
from fsar_tui.config import load_settings
from fsar_tui.errors import UsageError
from support import retention as history
from support.sql import q, x


@pytest.fixture
def db(server_dsn, template_db):
    from fsar_tui import clock
    from fsar_tui.sim.seed import seed_history

    name = history.clone_name(f"{RUN_PREFIX}_retention_cli")
    dsn = create_database(server_dsn, name, template=template_db)
    history.lay_out(dsn)
    seed_history(dsn, days=20, tasks=1500, seed=3)
    history.add_old_unfinished(dsn, clock.now())
    try:
        yield dsn
    finally:
        drop_database(server_dsn, name)


def one_line_error(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_run_dry_run_then_run_then_nothing_to_do(run_cli, db, tmp_path):
    archive = tmp_path / "archive"
    dry = run_cli("retention", "run", "--dry-run", "--task-events", "7d", "--tasks", "7d", "--dsn", db)
    assert dry.returncode == 0, dry.stderr
    assert "would drop" in dry.stdout and "2 task(s) queued, running or not finished: never dropped" in dry.stdout
    assert q(db, "SELECT count(*) FROM retention_log") == [(0,)]

    done = run_cli("retention", "run", "--task-events", "7d", "--tasks", "7d", "--archive", str(archive), "--dsn", db)
    assert done.returncode == 0, done.stderr
    assert "dropped" in done.stdout and f"archive: {archive}" in done.stdout
    assert "kept" in done.stdout and "queued, running" in done.stdout

    again = run_cli(
        "retention", "run", "--task-events", "7d", "--tasks", "7d", "--archive", str(archive), "--format", "json",
        "--dsn", db,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["nothing_to_do"] is True and doc["archive"] is None
    assert len(list(archive.iterdir())) == 1  # the first run's directory only


def test_the_policy_comes_from_config_toml(run_cli, db, tmp_path, isolated_env):
    archive = tmp_path / "kept-here"
    config = Path(isolated_env["XDG_CONFIG_HOME"]) / "fsar-tui" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[retention]\ntask_events = "7d"\narchive = "{archive}"\n')
    done = run_cli("retention", "run", "--dsn", db)
    assert done.returncode == 0, done.stderr
    assert "retention task_events 7d" in done.stdout
    assert list(archive.rglob("task_events_*.manifest.json"))
    assert not list(archive.rglob("execution_tasks_*"))  # no tasks age: tasks untouched


def test_restore_refuses_a_corrupt_archive_and_rows_that_exist(run_cli, db, tmp_path):
    archive = tmp_path / "a"
    assert run_cli("retention", "run", "--task-events", "7d", "--archive", str(archive), "--dsn", db).returncode == 0
    manifest = sorted(archive.rglob("task_events_*.manifest.json"))[0]
    data = manifest.with_name(json.loads(manifest.read_text())["file"])

    dry = run_cli("retention", "restore", str(data), "--dry-run", "--dsn", db)
    assert dry.returncode == 0 and dry.stdout.startswith("would restore"), dry.stderr
    ok = run_cli("retention", "restore", str(data), "--dsn", db)
    assert ok.returncode == 0 and ok.stdout.startswith("restored"), ok.stderr
    again = run_cli("retention", "restore", str(manifest), "--dsn", db)
    assert again.returncode == 1 and "already" in one_line_error(again)

    other = sorted(archive.rglob("task_events_*.manifest.json"))[1]
    other_data = other.with_name(json.loads(other.read_text())["file"])
    raw = bytearray(other_data.read_bytes())
    raw[-3] ^= 0x10
    other_data.write_bytes(bytes(raw))
    bad = run_cli("retention", "restore", str(other), "--dsn", db)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    line = bad.stderr.splitlines()[0]  # the problem; the other differences as detail lines under it
    assert str(other_data) in line and "fails verification" in line and "nothing restored" in line


def test_a_run_says_what_interrupted_runs_left(run_cli, db, tmp_path):
    root = tmp_path / "archive"
    interrupted = root / "20200101T000000Z"  # no .complete: a run killed while it wrote
    interrupted.mkdir(parents=True, mode=0o700)
    root.chmod(0o700)
    (interrupted / ".task_events_20200101.copy.gz.tmp").write_bytes(b"half")
    done = run_cli(
        "retention", "run", "--task-events", "7d", "--archive", str(root), "--format", "json", "--dsn", db
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["notes"] == [f"removed 1 temporary file(s) interrupted runs left in {interrupted}"]
    assert not interrupted.exists()  # nothing else was in it
    again = run_cli("retention", "run", "--task-events", "7d", "--archive", str(root), "--dsn", db)
    assert again.returncode == 0 and "note:" not in again.stdout, again.stderr


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--tasks", "14"], "--tasks: bad duration"),
        (["--task-events", "0d"], "--task-events: "),
        (["--task-events", "12h"], "task_events 12h is shorter than 1d: the failing-now view"),
        ([], "no retention policy"),
        (["--tasks", "7d", "--archive", "/proc/no/such"], "cannot create an archive directory under /proc/no/such"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(run_cli, db, argv, said):
    done = run_cli("retention", "run", *argv, "--dsn", db)
    assert done.returncode == 2
    assert said in one_line_error(done)


def test_restore_of_something_else_is_a_usage_error(run_cli, tmp_path, db):
    (tmp_path / "notes.txt").write_text("x")
    done = run_cli("retention", "restore", str(tmp_path / "notes.txt"), "--dsn", db)
    assert done.returncode == 2 and "not a retention archive" in one_line_error(done)
    missing = run_cli("retention", "restore", str(tmp_path / "gone.manifest.json"), "--dsn", db)
    assert missing.returncode == 2 and "no such manifest" in one_line_error(missing)


def test_read_only_refuses_a_run_but_not_a_dry_run(run_cli, db):
    done = run_cli("retention", "run", "--tasks", "7d", "--read-only", "--dsn", db)
    assert done.returncode == 2 and "--read-only" in one_line_error(done)
    dry = run_cli("retention", "run", "--tasks", "7d", "--read-only", "--dry-run", "--dsn", db)
    assert dry.returncode == 0, dry.stderr


def test_retention_in_config_toml(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[retention]\ntask_events = "14d"\ntasks = "90d"\narchive = "~/arch"\nevery = "30m"\n')
    r = load_settings(config_path=path, env={}).retention
    assert r is not None and (r.task_events, r.tasks, r.every_s) == ("14d", "90d", 1800)
    assert r.archive == Path("~/arch").expanduser()
    assert load_settings(config_path=_write(tmp_path, ""), env={}).retention is None  # off unless configured
    for body, said in [
        ('[retention]\ntasks = "90 days"\n', "tasks: bad duration"),
        ("[retention]\ntasks = 90\n", "expected an age"),
        ('[retention]\nkeep = "1d"\n', r"unknown key\(s\): keep"),
        ('[retention]\nevery = "soon"\n', "every: bad duration"),
        ('retention = "14d"\n', "must be a table"),
    ]:
        with pytest.raises(UsageError, match=said):
            load_settings(config_path=_write(tmp_path, body), env={})


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(body)
    return path


def test_a_partition_it_could_not_drop_exits_1_and_says_why(run_cli, db, tmp_path):
    day = q(
        db,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'task_events'::regclass AND c.relname ~ '^task_events_[0-9]{8}$' ORDER BY 1 LIMIT 1",
    )[0][0]
    x(db, f"CREATE VIEW pinned AS SELECT * FROM {day}")  # a customer's view: DROP TABLE refuses
    done = run_cli("retention", "run", "--task-events", "7d", "--archive", str(tmp_path / "a"), "--dsn", db)
    assert done.returncode == 1, done.stderr
    line = next(row for row in done.stdout.splitlines() if row.startswith("failed"))
    assert day in line and "could not drop it" in line and "its archive removed" in line
    assert not list((tmp_path / "a").rglob(f"{day}.*"))
