"""The rooms hold: imports flow one way (cli -> {executors, projections} -> ledger),
no two modules import each other (inside packages too), no module outgrows one
sitting, and the application class stays thin. `tools/rooms.py` draws the same
graph for `docs/architecture.md`."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import rooms  # noqa: E402

RULES = {
    "ledger": {"projections", "executors", "cli"},
    "projections": {"executors", "cli"},
    "executors": {"projections", "cli"},
}
#: a module that does not fit one sitting is cut by seam, not by size
MAX_LINES = 400


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


def test_no_import_circle_anywhere_in_src_and_cli():
    """Every import counts, lazy ones and `TYPE_CHECKING` ones too: a circle a
    function hides is still a circle to a reader."""
    graph = rooms.import_graph(ROOT)
    assert len(graph) > 50, "the modules were found"
    assert rooms.circles(graph) == []


def test_the_rooms_form_no_circle_either():
    """The picture in docs/architecture.md reads one way: no room imports a room
    that imports it back."""
    edges = rooms.room_graph(ROOT)
    assert len(edges) > 10
    assert rooms.circles(edges) == []


def test_the_circle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert rooms.circles(graph) == [["a", "b", "c"]]


def test_no_module_over_one_sitting():
    sizes = rooms.module_lines(ROOT)
    assert sizes, "the modules were found"
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_the_application_is_thin():
    """One eventsourcing Application, subclassed by nothing in src/, and no
    project class more than one project class deep but aggregates, events,
    errors and CloudStack's wire messages (their trees are the design)."""
    classes = rooms.class_bases(ROOT)
    apps = [c for c in classes if rooms.is_application(c, classes)]
    assert apps == ["Ledger"]
    deep = {
        name: depth
        for name in classes
        if (depth := rooms.depth(name, classes)) > 1
        and not rooms.is_tree_by_design(name, classes)
    }
    assert deep == {}
