"""The design card's layering, read from the imports: transforms/ stays pure."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

FORBIDDEN_IN_TRANSFORMS = {
    "flows",
    "warehouse",
    "expectations",
    "prefect",
    "duckdb",
    "great_expectations",
    "os",
    "pathlib",
    "time",
    "socket",
    "subprocess",
    "shutil",
    "io",
    "requests",
    "urllib",
}


def imported_roots(path: object) -> set[str]:
    """Top-level names of every module a file imports."""
    tree = ast.parse(path.read_text())  # type: ignore[attr-defined]
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted((REPO / "transforms").rglob("*.py")), ids=lambda p: p.name)
def test_transforms_import_no_io_and_no_other_layer(path: object) -> None:
    assert imported_roots(path) & FORBIDDEN_IN_TRANSFORMS == set()


@pytest.mark.parametrize("path", sorted((REPO / "warehouse").rglob("*.py")), ids=lambda p: p.name)
def test_warehouse_does_not_import_flows(path: object) -> None:
    assert "flows" not in imported_roots(path) and "prefect" not in imported_roots(path)


PACKAGES = ("transforms", "expectations", "warehouse", "flows", "deployments")


def _module_of(path: object) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)  # type: ignore[attr-defined]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_imports(path: object, modules: set[str]) -> set[str]:
    """The project's modules a file imports, at its top or inside functions alike."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):  # type: ignore[attr-defined]
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {name for name in names if name in modules}
    return found


def test_no_module_imports_itself_through_others() -> None:
    """No import circles (a circle is two modules that each need the other: one piece)."""
    files = {_module_of(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph = {name: _project_imports(path, set(files)) - {name} for name, path in files.items()}
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            name, trail = stack.pop()
            for nxt in graph[name]:
                if nxt == start:
                    circles.append(" -> ".join([*trail, start]))
                elif nxt not in seen and not start.startswith(nxt + "."):
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert circles == []
