"""The checks of `make check` bite: each tool fails when its rule is broken, and the real
tree passes it.

- import-linter (.importlinter): a copy of the package with a planted import that breaks
  a layering contract (the domain importing the data layer or the driver, a widget
  importing the data layer, the data layer importing a service) fails, naming the
  contract and the import;
- mypy (mypy.ini): a type error, and in the domain an unannotated function, fail;
  outside the domain an unannotated function's body is still checked;
- ruff (ruff.toml): a lint violation fails;
- what import-linter cannot see: no SQL in the screens' string literals (here), and
  tools/check_tree.py (part of make check): the domain imports only the standard
  library, no module of fsar_tui but the app imports the screens or the widgets (they
  are analysed as top-level packages, see .importlinter), no inline `# mypy:` switch or
  code-less `# type: ignore` — each planted in a temporary tree and seen to fail.

No database, no broker: every tool runs on a few files in a temporary directory, except
the runs over the real tree.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TIMEOUT_S = 300


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed next to {sys.executable} (pip install -e '.[dev]')")
    return found


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


# ---------------------------------------------------------------- import-linter


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as import-linter sees it (fsar_tui, screens, widgets, .importlinter)."""
    root = tmp_path_factory.mktemp("layers")
    for folder in ("fsar_tui", "screens", "widgets"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", root / ".importlinter")
    return root


def _lint_imports(root: Path, contract: str) -> subprocess.CompletedProcess[str]:
    return _run(_tool("lint-imports"), "--no-cache", "--no-logo", "--contract", contract, cwd=root)


@pytest.mark.parametrize(
    ("planted", "source", "contract", "name", "edge"),
    [
        (
            "fsar_tui/domain/_planted.py",
            "from fsar_tui.db import connect\n",
            "domain-pure",
            "fsar_tui.domain imports only itself and the standard library",
            "fsar_tui.domain._planted -> fsar_tui.db",
        ),
        (
            "fsar_tui/domain/_planted.py",
            "import psycopg\n",
            "domain-pure",
            "fsar_tui.domain imports only itself and the standard library",
            "fsar_tui.domain._planted -> psycopg",
        ),
        (
            "widgets/_planted.py",
            "from fsar_tui.db.connect import connect\n",
            "widgets-data-agnostic",
            "widgets know nothing of the database or the event sources",
            "widgets._planted -> fsar_tui.db.connect",
        ),
        (
            "fsar_tui/db/_planted.py",
            "from fsar_tui.services import gates\n",
            "layers",
            "one direction: commands and screens -> services -> db / live -> domain",
            "fsar_tui.db._planted -> fsar_tui.services.gates",
        ),
    ],
    ids=["domain-imports-db", "domain-imports-driver", "widget-imports-db", "db-imports-service"],
)
def test_a_planted_layering_violation_breaks_its_contract(
    package_copy: Path, planted: str, source: str, contract: str, name: str, edge: str
) -> None:
    path = package_copy / planted
    kept = _lint_imports(package_copy, contract)
    assert kept.returncode == 0, _output(kept)  # the copy keeps the contract before the plant
    path.write_text(f'"""A deliberate violation (tests/test_checks.py)."""\n\n{source}', encoding="utf-8")
    try:
        broken = _lint_imports(package_copy, contract)
    finally:
        path.unlink()
    out = _output(broken)
    assert broken.returncode != 0, out
    assert f"{name} BROKEN" in out, out
    assert edge in out, out


def test_the_real_tree_keeps_every_import_contract() -> None:
    proc = _run(_tool("lint-imports"), "--no-logo", cwd=ROOT)
    assert proc.returncode == 0, _output(proc)


# ---------------------------------------------------------------- mypy


def _mypy(root: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return _run(
        _tool("mypy"),
        "--config-file",
        ROOT / "mypy.ini",
        "--cache-dir",
        root / ".mypy_cache",
        "--no-error-summary",
        *files,
        cwd=root,
    )


def _module(root: Path, dotted: str, source: str) -> str:
    """Write `source` as module `dotted` under root (with its packages) and return its path."""
    parts = dotted.split(".")
    for i in range(1, len(parts)):
        init = root.joinpath(*parts[:i], "__init__.py")
        init.parent.mkdir(parents=True, exist_ok=True)
        init.touch()
    path = root.joinpath(*parts[:-1], parts[-1] + ".py")
    path.write_text(source, encoding="utf-8")
    return str(path.relative_to(root))


def test_mypy_fails_on_a_type_error_and_on_untyped_code_in_the_domain(tmp_path: Path) -> None:
    bad = _module(
        tmp_path,
        "fsar_tui.domain.planted",
        (
            '"""Deliberate errors (tests/test_checks.py)."""\n\n'
            "def untyped(x):\n"
            "    return x\n\n\n"
            'count: int = "three"\n'
        ),
    )
    proc = _mypy(tmp_path, bad)
    out = _output(proc)
    assert proc.returncode != 0, out
    assert "[assignment]" in out, out
    assert "[no-untyped-def]" in out, out  # the domain is --strict


def test_mypy_checks_untyped_bodies_outside_the_domain(tmp_path: Path) -> None:
    lenient = _module(
        tmp_path,
        "fsar_tui.services.planted",
        (
            '"""Deliberate error in an unannotated function (tests/test_checks.py)."""\n\n'
            "def untyped(x):\n"
            '    n: int = "three"\n'
            "    return x, n\n"
        ),
    )
    proc = _mypy(tmp_path, lenient)
    out = _output(proc)
    assert proc.returncode != 0, out
    assert "[assignment]" in out, out
    assert "[no-untyped-def]" not in out, out  # annotations are not required here, only checked


def test_the_real_tree_type_checks() -> None:
    proc = _run(_tool("mypy"), cwd=ROOT)
    assert proc.returncode == 0, _output(proc)


# ---------------------------------------------------------------- ruff


def test_ruff_fails_on_a_lint_violation(tmp_path: Path) -> None:
    bad = tmp_path / "planted.py"
    bad.write_text(
        '"""Deliberate violations (tests/test_checks.py)."""\n\nimport os\n\n\ndef f(items=[]):\n    return items\n',
        encoding="utf-8",
    )
    proc = _run(_tool("ruff"), "check", "--no-cache", "--config", ROOT / "ruff.toml", bad, cwd=tmp_path)
    out = _output(proc)
    assert proc.returncode != 0, out
    assert "F401" in out and "B006" in out, out


def test_the_real_tree_passes_ruff() -> None:
    proc = _run(_tool("ruff"), "check", "--no-cache", ".", cwd=ROOT)
    assert proc.returncode == 0, _output(proc)


# ---------------------------------------------------------------- what import-linter cannot see

SQL_PATTERNS = [
    re.compile(p, re.S)
    for p in (
        r"\bSELECT\b.*\bFROM\b",
        r"\bINSERT\s+INTO\b",
        r"\bUPDATE\s+\w+\s+SET\b",
        r"\bDELETE\s+FROM\b",
        r"\b(?:CREATE|ALTER|DROP|TRUNCATE)\s+(?:TABLE|VIEW|INDEX|FUNCTION|TRIGGER|ROLE)\b",
        r"\b(?:LISTEN|NOTIFY)\s+\w+",
    )
]


def sql_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal (f-string parts included) that reads as SQL."""
    tree = ast.parse(source)
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # f"UPDATE {table} SET …": the placeholders read as a name
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            text = node.value
        else:
            continue
        if any(p.search(text) for p in SQL_PATTERNS):
            found.append((node.lineno, text.strip()[:60]))
    return sorted(found)


def test_the_sql_detector_finds_sql() -> None:
    planted = (
        'Q = "SELECT id FROM execution_tasks WHERE status = %s"\n'
        'def f(t):\n    return f"UPDATE {t} SET x = 1", """\n    DELETE FROM x"""\n'
    )
    assert [line for line, _ in sql_literals(planted)] == [1, 3, 3]
    assert sql_literals('HELP = "select a task from the list, then press enter"\n') == []


def test_screens_build_no_sql() -> None:
    found = {
        str(p.relative_to(ROOT)): hits
        for p in sorted((ROOT / "screens").rglob("*.py"))
        if (hits := sql_literals(p.read_text(encoding="utf-8")))
    }
    assert not found, f"SQL belongs in fsar_tui/db/, not in a screen: {found}"


def check_tree(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_tree.py"), str(root)], capture_output=True, text=True
    )


def plant(root: Path, rel: str, source: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


@pytest.mark.parametrize(
    ("rel", "source", "named"),
    [
        ("fsar_tui/domain/x.py", "import numpy\n", "imports numpy"),
        ("fsar_tui/domain/x.py", "def f():\n    from requests import get\n", "imports requests"),
        ("fsar_tui/domain/x.py", "from fsar_tui.db import tasks\n", "imports fsar_tui.db"),
        ("fsar_tui/db/x.py", "def f():\n    from fsar_tui.screens.queue import QueueScreen\n", "fsar_tui.screens"),
        ("fsar_tui/services/x.py", "from fsar_tui import widgets\n", "fsar_tui.widgets"),
        ("fsar_tui/db/x.py", "# mypy: ignore-errors\nx = 1\n", "inline `# mypy:`"),
        ("screens/x.py", "x: int = 'a'  # type: ignore\n", "without an error code"),
    ],
)
def test_the_tree_check_fails_on_each_planted_violation(tmp_path: Path, rel: str, source: str, named: str) -> None:
    plant(tmp_path, "fsar_tui/domain/ok.py", "import re\nfrom fsar_tui.domain.money import x\n")
    plant(tmp_path, "fsar_tui/app.py", "from fsar_tui.screens.queue import QueueScreen\n")  # the app may
    assert check_tree(tmp_path).returncode == 0
    plant(tmp_path, rel, source)
    done = check_tree(tmp_path)
    assert done.returncode == 1 and named in done.stderr, done.stderr


def test_the_real_tree_passes_the_tree_check() -> None:
    done = check_tree(ROOT)
    assert done.returncode == 0, done.stderr
