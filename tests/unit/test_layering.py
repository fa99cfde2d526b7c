"""Imports flow one way: cli -> {executors, projections} -> ledger."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = {
    "ledger": {"projections", "executors", "cli"},
    "projections": {"executors", "cli"},
    "executors": {"projections", "cli"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_nothing_above_it(package):
    files = sorted((ROOT / "src" / package).rglob("*.py"))
    assert files, f"no modules found for {package}"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_packages(f) & RULES[package])
        for f in files
        if imported_packages(f) & RULES[package]
    }
    assert offenders == {}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_ledger_does_no_subprocess_or_network_io():
    forbidden = {"subprocess", "socket", "urllib.request", "http.client", "shutil"}
    files = sorted((ROOT / "src" / "ledger").rglob("*.py"))
    bad = {
        str(f.relative_to(ROOT)): sorted(imported_modules(f) & forbidden)
        for f in files
        if imported_modules(f) & forbidden
    }
    assert bad == {}
