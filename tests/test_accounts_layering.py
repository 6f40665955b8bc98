"""accounts is the lowest app: the others ask it (whether a person may book), it asks none of them."""

import ast
from pathlib import Path

import fablab_ops.accounts

HIGHER_APPS = ("fablab_ops.courses", "fablab_ops.booking", "fablab_ops.machines", "fablab_ops.reports",
               "fablab_ops.privacy")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_accounts_imports_none_of_the_apps_built_on_it():
    root = Path(fablab_ops.accounts.__file__).parent
    offenders = {
        str(path.relative_to(root)): sorted(name for name in imported_modules(path) if name.startswith(HIGHER_APPS))
        for path in root.rglob("*.py") if "migrations" not in path.parts
    }
    assert {path: names for path, names in offenders.items() if names} == {}
