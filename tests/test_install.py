"""A non-editable `pip install .` into a clean venv gives a working `fsar-tui`.

Proves the wheel carries the migrations (fsar_tui/_alembic), fsar_tui.screens and
fsar_tui.widgets, and that `migrate` and `db status` work from a directory that has
nothing of the source tree in it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from fsar_tui.db.migrations import head_revision

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_clean_venv_install_migrates_from_anywhere(tmp_path, empty_dsn, isolated_env):
    # Copy the tracked sources so the build cannot pick up anything untracked or built.
    src = tmp_path / "src"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    env_dir = tmp_path / "venv"
    # No pip (nor setuptools) in the venv: the suite's pip installs into it (`--python`),
    # so nothing the package forgot to declare can be found there. `--no-compile`: the
    # dependencies' bytecode is not what is tested (half of pip's time).
    venv.create(env_dir, with_pip=False)
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install", "-q", "--no-compile"]
        + [str(src)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]

    exe = env_dir / "bin" / "fsar-tui"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check = subprocess.run(
        [
            str(env_dir / "bin" / "python"),
            "-c",
            "import fsar_tui.screens, fsar_tui.widgets, fsar_tui.db.migrations as m; print(m.script_location())",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert str(env_dir) in check.stdout and "_alembic" in check.stdout

    mig = subprocess.run(
        [str(exe), "migrate", "--dsn", empty_dsn],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=isolated_env,
        timeout=300,
    )
    assert mig.returncode == 0, mig.stderr
    status = subprocess.run(
        [str(exe), "db", "status", "--dsn", empty_dsn],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=isolated_env,
        timeout=300,
    )
    assert status.returncode == 0, status.stderr
    assert f"revision:  {head_revision()}" in status.stdout
