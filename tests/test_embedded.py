"""With no DSN anywhere, fsar-tui starts an embedded PostgreSQL, migrates it and reuses it."""

from __future__ import annotations

import json

import pytest

from fsar_tui.db.migrations import head_revision


@pytest.mark.slow
def test_embedded_server_is_started_migrated_and_reused(run_cli, isolated_env, tmp_path):
    first = run_cli("migrate")
    assert first.returncode == 0, first.stderr
    notice = [line for line in first.stderr.splitlines() if "embedded PostgreSQL" in line]
    assert len(notice) == 1 and str(tmp_path / "data" / "fsar-tui" / "pgdata") in notice[0]
    assert f"to {head_revision()}" in first.stdout

    status = run_cli("db", "status", "--format", "json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["embedded"] is True and info["current"] == head_revision()
    assert info["server_version"].startswith("18")

    # Reused across runs: the data directory persists and the schema is still there.
    again = run_cli("migrate")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert (tmp_path / "data" / "fsar-tui" / "pgdata" / "PG_VERSION").exists()
