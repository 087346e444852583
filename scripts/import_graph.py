"""Print the project's import graph problems: cycles, cross-module private imports, layout limits.

Usage: python scripts/import_graph.py [--strict]

Every ``import`` / ``from ... import`` in analyzer/, api/ and ui/ counts, including lazy ones inside
functions. A cycle is a strongly connected component of more than one module. A private import is
``from a.b import _x`` where ``_x`` is defined outside the importing module. With ``--strict`` the
exit code is 1 when any rule of the architecture (no cycles, no private imports, at most 10 modules
directly in analyzer/, no module over 800 lines) is broken.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("analyzer", "api", "ui")
MAX_TOP_MODULES = 10
MAX_LINES = 800


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def discover() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest project module that ``name`` starts with."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def analyse(modules: dict[str, Path]) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private: list[tuple[str, str, str]] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = resolve(alias.name, modules)
                    if target and target != module:
                        edges[module].add(target)
            elif isinstance(node, ast.ImportFrom):
                source = absolute(module, is_package, node)
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    target = sub if sub in modules else resolve(source, modules)
                    if target is None or target == module:
                        continue
                    edges[module].add(target)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append((module, target, alias.name))
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main(argv: list[str]) -> int:
    modules = discover()
    edges, private = analyse(modules)
    found = cycles(edges)
    top = sorted(p.name for p in (ROOT / "analyzer").glob("*.py") if p.name not in ("__init__.py",))
    long = sorted(
        (n, str(p.relative_to(ROOT)))
        for p in modules.values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    )
    print(f"modules: {len(modules)}; import edges: {sum(len(v) for v in edges.values())}")
    print(f"import cycles: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    print(f"private names imported from another module: {len(private)}")
    for module, target, name in sorted(private):
        print(f"  {module} imports {name} from {target}")
    print(f"modules directly in analyzer/: {len(top)} (at most {MAX_TOP_MODULES})")
    for name in top:
        print(f"  {name}")
    print(f"modules over {MAX_LINES} lines: {len(long)}")
    for n, path in long:
        print(f"  {path}: {n}")
    broken = bool(found or private or len(top) > MAX_TOP_MODULES or long)
    return 1 if ("--strict" in argv and broken) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
