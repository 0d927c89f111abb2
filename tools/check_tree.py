"""The layering rules import-linter and mypy cannot see, checked by `make check`
(`python tools/check_tree.py [ROOT]`; exit 1 naming every violation, 0 when clean):

1. fsar_tui/domain/ imports only itself and the standard library — any third-party
   package, listed anywhere or not, is a violation (import-linter's contract can only
   forbid the packages it names);
2. only fsar_tui/app.py (and screens/, widgets/ themselves) import fsar_tui.screens or
   fsar_tui.widgets: those two import as subpackages of fsar_tui only through the
   editable install's package-dir mapping, which import-linter's graph cannot follow;
3. no module switches mypy off with an inline `# mypy:` configuration comment
   (`# mypy: ignore-errors` at a module's top silences every check of it), and no
   blanket `# type: ignore` without an error code (mypy.ini also refuses those).

Imports are read from the AST, lazy ones (inside functions) and those under
`if TYPE_CHECKING:` included. tests/test_checks.py plants a violation of each rule
and asserts this script fails on it.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

UI_PACKAGES = ("fsar_tui.screens", "fsar_tui.widgets")
MAY_IMPORT_UI = {"fsar_tui/app.py"}
INLINE_MYPY = re.compile(r"^\s*#\s*mypy\s*:", re.M)
BLANKET_IGNORE = re.compile(r"#\s*type:\s*ignore(?!\[)")


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import in the tree, lazy ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def domain_violations(rel: str, tree: ast.AST) -> list[str]:
    found = set()
    for line, name in imported(tree):
        if name == "fsar_tui.domain" or name.startswith("fsar_tui.domain."):
            continue
        top = name.split(".")[0]
        if top == "__future__" or top in sys.stdlib_module_names:
            continue
        found.add(f"{rel}:{line}: the domain imports {name} (only itself and the standard library)")
    return sorted(found)


def ui_violations(rel: str, tree: ast.AST) -> list[str]:
    hits = {
        (line, name)
        for line, name in imported(tree)
        if name in UI_PACKAGES or name.startswith(tuple(p + "." for p in UI_PACKAGES))
    }
    return [f"{rel}:{line}: imports {name} (only fsar_tui/app.py may import the UI)" for line, name in sorted(hits)]


def comment_violations(rel: str, source: str) -> list[str]:
    found = []
    for m in INLINE_MYPY.finditer(source):
        line = source.count("\n", 0, m.start()) + 1
        found.append(f"{rel}:{line}: an inline `# mypy:` configuration comment (configure mypy in mypy.ini)")
    for m in BLANKET_IGNORE.finditer(source):
        line = source.count("\n", 0, m.start()) + 1
        found.append(f"{rel}:{line}: `# type: ignore` without an error code")
    return found


def check(root: Path) -> list[str]:
    problems: list[str] = []
    sources = [*sorted((root / "fsar_tui").rglob("*.py")), *sorted((root / "screens").rglob("*.py")),
               *sorted((root / "widgets").rglob("*.py"))]  # fmt: skip
    for path in sources:
        rel = path.relative_to(root).as_posix()
        source = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            problems.append(f"{rel}:{exc.lineno}: does not parse: {exc.msg}")
            continue
        if rel.startswith("fsar_tui/domain/"):
            problems += domain_violations(rel, tree)
        if rel.startswith("fsar_tui/") and rel not in MAY_IMPORT_UI:
            problems += ui_violations(rel, tree)
        problems += comment_violations(rel, source)
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check_tree: {len(problems)} violation(s)", file=sys.stderr)
        return 1
    print("check_tree: domain purity, UI imports, inline mypy switches: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
