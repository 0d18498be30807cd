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
