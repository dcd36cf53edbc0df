"""The shape of the code, measured: the package import graph (and its cycles), imports
made inside functions, and functions longer than a screen.

    .venv/bin/python bench/code_shape.py            # a report; exit 1 on a package cycle
    .venv/bin/python bench/code_shape.py --json     # the same figures as JSON

Packages are the project's top-level folders (pipeline, operators, schemas, trainer,
sample_site); an edge ``a -> b`` is any import of ``multihowto.b`` from a module of ``a``,
at the top or inside a function. Tests and benchmarks are left out of every count.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "operators", "schemas", "trainer", "sample_site")
LONG_FUNCTION = 60  # lines, decorators excluded


def _modules(root: Path):
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            yield package, path


def _imported_packages(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    elif isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        return []
    found = []
    for name in names:
        parts = name.split(".")
        if parts[0] == "multihowto" and len(parts) > 1 and parts[1] in PACKAGES:
            found.append(parts[1])
    return found


def _walk(tree: ast.AST):
    """(node, inside a function?) for every node of ``tree``."""
    stack = [(tree, False)]
    while stack:
        node, inside = stack.pop()
        yield node, inside
        deeper = inside or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        stack.extend((child, deeper) for child in ast.iter_child_nodes(node))


def measure(root: Path = ROOT) -> dict:
    edges: dict[str, set[str]] = defaultdict(set)
    in_function: list[str] = []
    long_functions: list[str] = []
    for package, path in _modules(root):
        rel = path.relative_to(root)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(rel))
        for node, inside in _walk(tree):
            for target in _imported_packages(node):
                if target != package:
                    edges[package].add(target)
            if inside and isinstance(node, ast.Import | ast.ImportFrom):
                in_function.append(f"{rel}:{node.lineno}")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > LONG_FUNCTION:
                    long_functions.append(f"{rel}:{node.lineno} {node.name} ({length} lines)")
    return {
        "import_graph": {k: sorted(v) for k, v in sorted(edges.items())},
        "package_cycles": find_cycles(edges),
        "in_function_imports": len(in_function),
        "in_function_import_sites": sorted(in_function),
        "functions_over_60_lines": len(long_functions),
        "long_functions": sorted(long_functions),
    }


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each elementary cycle of the package graph once, as a list of packages."""
    cycles: list[list[str]] = []
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})

    def visit(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                cycles.append([*path, start])
            elif nxt not in path and nxt > start:  # each cycle found from its smallest node only
                visit(start, nxt, [*path, nxt])

    for start in nodes:
        visit(start, start, [start])
    return cycles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--list", action="store_true", help="also list each in-function import and long function")
    args = parser.parse_args(argv)
    shape = measure()
    if args.json:
        print(json.dumps(shape, indent=1))
        return 1 if shape["package_cycles"] else 0
    print("package import graph:")
    for package, targets in shape["import_graph"].items():
        print(f"  {package} -> {', '.join(targets)}")
    cycles = shape["package_cycles"]
    print(f"package cycles: {len(cycles)}" + "".join(f"\n  {' -> '.join(c)}" for c in cycles))
    print(f"imports inside functions: {shape['in_function_imports']}")
    print(f"functions over {LONG_FUNCTION} lines: {shape['functions_over_60_lines']}")
    if args.list:
        for site in shape["in_function_import_sites"]:
            print(f"  import in function: {site}")
        for fn in shape["long_functions"]:
            print(f"  long: {fn}")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
