"""The house keeps its plan: the layout of ../shared/DESIGN.md §2, module sizes, one
registry of command families, and headless commands that never load the UI.

(The import contracts between layers are import-linter's, run by `make check` and
proven to bite by tests/test_checks.py.)
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_FLAT_MODULES = 12
MAX_LINES = 500
UI_PACKAGES = ("textual", "aiomqtt")


def test_at_most_twelve_flat_modules_in_the_package():
    flat = sorted(p.name for p in (ROOT / "fsar_tui").glob("*.py"))
    assert len(flat) <= MAX_FLAT_MODULES, flat


@pytest.mark.parametrize("folder", ["fsar_tui", "screens", "widgets", "alembic", "bench", "tests", "tools"])
def test_no_module_over_500_lines(folder):
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / folder).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


def test_the_layers_have_their_folders():
    for part in ("commands", "services", "db", "live", "domain", "sim"):
        assert (ROOT / "fsar_tui" / part / "__init__.py").is_file(), part
    for top in ("screens", "widgets"):
        assert (ROOT / top / "__init__.py").is_file()
    assert not (ROOT / "alembic" / "__init__.py").exists()  # it would shadow the alembic library


def test_every_command_family_registers_itself_and_is_in_the_registry():
    from fsar_tui import commands

    modules = {m.name for m in pkgutil.iter_modules(commands.__path__)} - {"base", "output"}
    assert set(commands.FAMILIES) | set(commands.SUBFAMILIES) == modules
    assert set(commands.SUBFAMILIES.values()) <= set(commands.FAMILIES)
    for name in modules:
        module = importlib.import_module(f"fsar_tui.commands.{name}")
        assert callable(getattr(module, "register", None)), name
    for name, family in commands.SUBFAMILIES.items():  # the family really registers it
        source = (ROOT / "fsar_tui" / "commands" / f"{family}.py").read_text(encoding="utf-8")
        assert f"{name}.register(" in source, (name, family)


def test_cli_is_main_and_the_error_mapping_only():
    source = (ROOT / "fsar_tui" / "cli.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 250
    tree = ast.parse(source)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert functions <= {"build_parser", "run", "main", "_report"}, functions
    assert "add_parser(" not in source  # sub-parsers belong to their command family's module


def test_every_subcommand_has_one_handler_style():
    from fsar_tui.cli import build_parser

    parser = build_parser()
    seen = 0
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                stack.extend(action.choices.values())
        handler = p.get_default("handler")
        if handler is not None:
            seen += 1
            assert list(handler.__code__.co_varnames[:2]) == ["args", "ctx"], handler
    assert seen > 30


def test_headless_modules_load_neither_textual_nor_aiomqtt():
    # (The simulator, sim/, is the fleet: it publishes over MQTT, so it loads aiomqtt when
    # it runs; no command module loads it at import time.)
    code = (
        "import importlib, pkgutil, sys\n"
        "import fsar_tui.cli as cli\n"
        "cli.build_parser()\n"
        "for pkg in ('fsar_tui.commands', 'fsar_tui.services', 'fsar_tui.db', 'fsar_tui.domain'):\n"
        "    mod = importlib.import_module(pkg)\n"
        "    for m in pkgutil.iter_modules(mod.__path__):\n"
        "        importlib.import_module(f'{pkg}.{m.name}')\n"
        f"bad = sorted({{m for m in sys.modules if m.split('.')[0] in {UI_PACKAGES!r}}})\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["tasks", "list"],
        ["audit", "run"],
        ["report", "--period", "1d"],
        ["roi"],
        ["profile", "--window", "1h"],
        ["rollouts", "list"],
        ["proposals", "list"],
        ["log", "list"],
        ["alerts", "list"],
        ["db", "status"],
        ["simulate", "--workers", "1", "--duration", "1"],  # no --mqtt-url: no aiomqtt either
    ],
)
def test_headless_commands_run_without_loading_the_ui(db_dsn, argv):
    code = (
        "import sys\n"
        "from fsar_tui.cli import main\n"
        f"code = main({[*argv, '--dsn', db_dsn]!r})\n"
        f"bad = sorted({{m for m in sys.modules if m.split('.')[0] in {UI_PACKAGES!r}}})\n"
        "print('LOADED', bad)\n"
        "sys.exit(code if not bad else 99)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout[-500:] + proc.stderr
    assert "LOADED []" in proc.stdout
