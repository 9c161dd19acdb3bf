"""The package's shape: no import circles among htr's modules, read from the source (no module is imported).

An import circle works only as long as every module in it happens to be imported in a lucky order (or through
imports tucked inside functions); the modules in it cannot be understood or tested one at a time. Each import
counts, wherever it stands (inside a function too), except under ``if TYPE_CHECKING:``; importing
``htr.a.b`` runs ``htr/a/__init__.py`` first, so it counts as importing that package too.
"""

from __future__ import annotations

import ast
from pathlib import Path

HTR = Path(__file__).resolve().parents[1] / "htr"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of a module, leaving out those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                walk(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(tree)
    return found


def import_graph(root: Path = HTR) -> dict[str, set[str]]:
    """Module -> the htr modules importing it runs (packages' ``__init__`` included; not its own packages)."""
    paths = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                wanted = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names]
            for target in wanted:
                while target and target not in paths:  # htr.x.CONSTANT -> htr.x
                    target = target.rpartition(".")[0]
                parts = target.split(".")
                for k in range(1, len(parts) + 1):  # the packages on the way run their __init__ first
                    step = ".".join(parts[:k])
                    if step in paths and step != name and not name.startswith(step + "."):
                        targets.add(step)
        graph[name] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_htr_has_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "htr.decode" in graph["htr.inference"]  # the graph is read as meant
    cycles = import_cycles(graph)
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_circle_through_a_package_init(tmp_path: Path) -> None:
    pkg = tmp_path / "htr"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from htr.sub.a import f\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from htr.b import g\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import htr.sub.a\n")
    assert import_cycles(import_graph(pkg)) == []  # a type-only import is no circle
    (pkg / "b.py").write_text("from .sub.a import f as g\n")  # runs htr/sub/__init__.py, which imports b
    assert import_cycles(import_graph(pkg)) == [["htr.b", "htr.sub", "htr.sub.a"]]
