"""The rooms of storctl, read from the code: the import graph, its circles, module
sizes, class depths, and the picture `docs/architecture.md` shows.

    python tools/rooms.py            the picture (mermaid), as the doc holds it
    python tools/rooms.py --check    exit 1 when the doc's picture is stale

`tests/unit/test_layering.py` asserts what this reads (no circle, no module over
one sitting, a thin application); `make rooms` writes the picture into the doc.
Every import counts, inside functions and under `TYPE_CHECKING` too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGES = {
    "ledger": Path("src/ledger"),
    "projections": Path("src/projections"),
    "executors": Path("src/executors"),
    "cli": Path("cli"),
}
DOC = Path("docs/architecture.md")
BEGIN, END = "<!-- rooms:begin -->", "<!-- rooms:end -->"

#: the ledger's top-level modules, grouped into the rooms a reader walks through
LEDGER_ROOMS = {
    "aggregates": {
        "aggregate", "volume", "volume_data", "volume_answers", "snapshot",
        "template", "pool", "image_store", "host", "vm", "job", "copies", "names",
        "config", "zone", "simulator_plan",
    },
    "values, errors, commands, fsm": {
        "values", "errors", "commands", "fsm", "capacity", "host_limits",
        "transcodings",
    },
    "transfer, reach": {"transfer", "reach"},
    "verify, doctor": {"verify", "doctor"},
}  # fmt: skip


def modules(root: Path) -> dict[str, Path]:
    """Every module of the four packages, by dotted name."""
    found: dict[str, Path] = {}
    for top, folder in PACKAGES.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = [top, *path.relative_to(root / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(tree: ast.AST, package: str) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    mods = modules(root)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for target in _imports(ast.parse(path.read_text()), package):
            if target in mods and target != name:
                graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def module_lines(root: Path) -> dict[str, int]:
    return {
        name: len(path.read_text().splitlines()) for name, path in modules(root).items()
    }


def class_bases(root: Path) -> dict[str, list[str]]:
    """Top-level and nested classes of `src/`, by name (`Outer.Inner` for nested
    ones), each with the names of its bases as written (the last dotted part)."""
    out: dict[str, list[str]] = {}
    for top in ("ledger", "projections", "executors"):
        for path in sorted((root / PACKAGES[top]).rglob("*.py")):
            _collect(ast.parse(path.read_text()), "", out)
    return out


def _collect(node: ast.AST, outer: str, out: dict[str, list[str]]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            name = f"{outer}{child.name}"
            out.setdefault(name, [ast.unparse(b).split("[")[0] for b in child.bases])
            _collect(child, f"{name}.", out)


def _resolve(base: str, classes: dict[str, list[str]]) -> str | None:
    """A base as written (`Answered`, `StorctlAggregate.Event`) to a class of
    the project, or None for the library's and the standard library's."""
    if base in classes:
        return base
    last = base.rsplit(".", 1)[-1]
    return last if last in classes and "." not in base else None


def depth(name: str, classes: dict[str, list[str]], seen: tuple[str, ...] = ()) -> int:
    """How many project classes deep `name` inherits (0: only outside bases)."""
    if name in seen:
        return 0
    parents = [p for b in classes.get(name, []) if (p := _resolve(b, classes))]
    return max((1 + depth(p, classes, (*seen, name)) for p in parents), default=0)


def _ancestors(name: str, classes: dict[str, list[str]]) -> Iterator[str]:
    todo, seen = [name], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for base in classes.get(current, []):
            yield base
            parent = _resolve(base, classes)
            if parent is not None:
                todo.append(parent)


def is_application(name: str, classes: dict[str, list[str]]) -> bool:
    return any(b.rsplit(".", 1)[-1] == "Application" for b in _ancestors(name, classes))


def is_tree_by_design(name: str, classes: dict[str, list[str]]) -> bool:
    """Aggregates, their events (nested in them), errors, and CloudStack's wire
    messages (`Wire` -> `Command` -> `CopyCommand`, `Answer` -> ..., as
    CloudStack's own classes are): trees by design, not use cases grown by
    inheritance."""
    if "." in name:
        return True  # a nested class: an aggregate's event
    return any(
        "Aggregate" in b or b.endswith(("Error", "Exception")) or b == "Wire"
        for b in _ancestors(name, classes)
    )


def room(module: str) -> str:
    """The room a module belongs to in the picture."""
    parts = module.split(".")
    top = parts[0]
    if top == "ledger" and len(parts) > 1:
        if parts[1] in ("usecases", "workflows", "requests", "allocation", "store"):
            return f"ledger.{parts[1]}"
        for label, members in LEDGER_ROOMS.items():
            if parts[1] in members:
                return f"ledger: {label}"
        return module
    if top == "executors" and len(parts) > 1:
        if parts[1] in ("agents", "providers"):
            return f"executors.{parts[1]}"
        if parts[1] in ("qemu", "paths", "runner", "credentials"):
            return "executors: qemu, paths, runner, credentials"
        return "executors: engine, dispatcher"
    if top == "cli" and module != "cli.bootstrap":
        return "cli: nouns"
    if top in ("projections", "executors"):
        return top
    return module


def room_graph(root: Path) -> dict[str, set[str]]:
    """room -> the rooms it imports (a package's `__init__` holds only its
    docstring, so importing `ledger` itself is no edge)."""
    edges: dict[str, set[str]] = {}
    for source, targets in import_graph(root).items():
        if source in PACKAGES:
            continue
        here = room(source)
        edges.setdefault(here, set())
        for target in targets:
            if target not in PACKAGES and room(target) != here:
                edges[here].add(room(target))
    return edges


def reduced(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The edges no longer path already implies (the picture's arrows): a room
    that imports another directly and through a third shows only the path."""

    def reach(start: str, skip: tuple[str, str]) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            node = todo.pop()
            for nxt in edges.get(node, ()):
                if (node, nxt) != skip and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    return {
        a: {b for b in targets if b not in reach(a, (a, b))}
        for a, targets in edges.items()
    }


def mermaid(root: Path) -> str:
    """The rooms and the imports between them, for the doc: an arrow from a room
    to one it imports, where no longer path says so already."""
    edges = reduced(room_graph(root))
    ids = {name: f"r{i}" for i, name in enumerate(sorted(edges))}
    lines = ["```mermaid", "flowchart TD"]
    lines += [f'  {ids[n]}["{n}"]' for n in sorted(edges)]
    for source in sorted(edges):
        lines += [f"  {ids[source]} --> {ids[t]}" for t in sorted(edges[source])]
    lines.append("```")
    return "\n".join(lines)


def write_doc(root: Path) -> None:
    """Put the picture between the doc's markers."""
    path = root / DOC
    text = path.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{mermaid(root)}\n{END}{tail}")


def doc_picture(root: Path) -> str:
    text = (root / DOC).read_text()
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[1]
    if "--check" in argv:
        if doc_picture(root) != mermaid(root):
            print(f"{DOC} is stale: run `make rooms`", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    if "--write" in argv:
        write_doc(root)
        return 0
    print(mermaid(root))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
