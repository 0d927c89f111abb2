"""Retention's inputs at their worst (attack on issue 18's fixes): manifests with bounds
no UTC instant holds or names no partition has, a FIFO where a manifest should be, archive
paths no file system takes, an archive root of another account, and a planted run
directory that must not stop every later run. Each is one line and a documented exit
code, never an "internal error"."""

from __future__ import annotations

import json
import os
import threading

import pytest

from fsar_tui.config import directory_path, load_settings
from fsar_tui.domain import retention_manifest as m
from fsar_tui.errors import UsageError
from fsar_tui.services import retention_archive as files
from test_retention_cli import db, one_line_error  # noqa: F401  (db: the fixture)
from test_retention_manifest import a_manifest


def doc(**changes: object) -> dict:
    return json.loads(a_manifest().to_json()) | changes


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"upper": "9999-12-31T23:59:59-12:00"}, "outside the years 1-9999 in UTC"),
        ({"lower": "0001-01-01T00:00:00+14:00"}, "outside the years 1-9999 in UTC"),
        ({"partition": "x\u0000y"}, "not a partition name"),
        ({"partition": 'a"; DROP TABLE execution_tasks; --'}, "not a partition name"),
        ({"partition": "p" * 64}, "not a partition name"),
    ],
)
def test_a_manifest_no_partition_could_have_written_is_refused_in_words(changes, said):
    with pytest.raises(m.ManifestError, match=said):
        m.parse_manifest(json.dumps(doc(**changes)))


def test_bounds_in_other_zones_are_read_in_utc():
    got = m.parse_manifest(json.dumps(doc(lower="2025-01-01T02:00:00+02:00")))
    assert got.lower == a_manifest().lower and got.lower.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_a_fifo_named_like_a_manifest_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "x.manifest.json"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def read() -> None:
        try:
            files.read_manifest(fifo)
        except BaseException as exc:  # handed to the test thread
            done.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(30)
    if reader.is_alive():  # blocked in open(): unblock it so the test ends, then fail
        with open(fifo, "w"):
            pass
        pytest.fail("read_manifest waited on a FIFO")
    assert isinstance(done[0], UsageError) and "not a regular file" in str(done[0])


@pytest.mark.parametrize(("text", "said"), [("/tmp/x\u0000y", "NUL byte"), ("~no_such_user_fsar/x", "no user's home")])
def test_archive_paths_no_file_system_takes_are_usage_errors(tmp_path, text, said):
    with pytest.raises(UsageError, match=said):
        directory_path(text, "--archive")
    config = tmp_path / "config.toml"
    config.write_text(f'[retention]\ntasks = "90d"\narchive = {json.dumps(text)}\n')
    with pytest.raises(UsageError, match=said):
        load_settings(config_path=config, env={})


def test_an_archive_root_of_another_account_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test chowns a directory: run the suite as root, as CI does")
    root = tmp_path / "theirs"
    root.mkdir(mode=0o755)
    os.chown(root, 65534, 65534)  # nobody
    with pytest.raises(UsageError, match=r"belongs to another account \(uid 65534\)"):
        files.check_root(root)
    files.check_root(tmp_path)  # ours: fine


def test_a_planted_run_directory_does_not_stop_the_runs(run_cli, db, tmp_path):  # noqa: F811
    archive = tmp_path / "a"
    planted = archive / "20260101T000000Z"
    planted.mkdir(parents=True, mode=0o700)
    os.chmod(archive, 0o700)
    (planted / "task_events_20250101.manifest.json").write_text(json.dumps(doc(upper="9999-12-31T23:59:59-12:00")))
    (planted / "evil.manifest.json").write_text(json.dumps(doc(partition="x\u0000y")))
    done = run_cli("retention", "run", "--task-events", "7d", "--archive", str(archive), "--dsn", db)
    assert done.returncode == 0, done.stderr
    assert "dropped" in done.stdout
    assert (planted / "evil.manifest.json").exists()  # not ours to judge: left alone
    bad = run_cli("retention", "run", "--task-events", "7d", "--archive", "~no_such_user_fsar/x", "--dsn", db)
    assert bad.returncode == 2 and "no user's home" in one_line_error(bad)
