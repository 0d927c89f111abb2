"""The real `fsar-tui simulate` as a child process, for the tests that run the fleet:
to completion (`run_simulate`) or in the background while they act on the database
(`start_simulate`, stdout and stderr piped as text)."""

from __future__ import annotations

import subprocess
import sys


def _command(args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "fsar_tui", "simulate", *args]


def run_simulate(dsn: str, env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(_command(args), env={**env, "FSAR_DSN": dsn}, capture_output=True, text=True, timeout=timeout)


def start_simulate(dsn: str, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        _command(args), env={**env, "FSAR_DSN": dsn}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
