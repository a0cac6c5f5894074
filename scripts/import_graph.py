"""Cycles in the import graph of src/stalwart.

    python scripts/import_graph.py            # runtime imports (module level and inside functions)
    python scripts/import_graph.py --typing   # also imports under `if TYPE_CHECKING:`

Prints each cycle found (a strongly connected group of modules) and exits 1 if any.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, with_typing: bool, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        if isinstance(node, ast.Import | ast.ImportFrom) and (with_typing or not typing_only):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[: len(up) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                # ``from pkg import sub`` imports the submodule; ``from pkg import name``
                # the package itself (a package's __init__ runs before any of its
                # submodules anyway, so that part is not an edge of its own).
                subs = [f"{base}.{a.name}" for a in node.names]
                targets = [t for t in subs if t in modules]
                if len(targets) < len(subs):
                    targets.append(base)
            found.update(t for t in targets if t.startswith("stalwart"))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--typing", action="store_true", help="count TYPE_CHECKING imports too")
    args = parser.parse_args()
    files = {module_name(p): p for p in (ROOT / "stalwart").rglob("*.py")}
    graph = {
        m: {t for t in imports_of(p, args.typing, set(files)) if t in files and t != m}
        for m, p in files.items()
    }
    # A package's __init__ importing its own submodules is not a cycle of concern;
    # a submodule importing its package's __init__ is (it runs the whole package).
    cycles = strongly_connected(graph)
    for group in cycles:
        print("cycle:", " -> ".join(sorted(group)))
    print(f"{len(files)} modules, {sum(map(len, graph.values()))} imports, {len(cycles)} cycle(s)")
    return 1 if cycles else 0


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(group)

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            connect(v)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
