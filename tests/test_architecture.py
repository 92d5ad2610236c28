"""The package map holds: imports flow one way, cli | api -> features -> inference -> models -> data.

Every `cifarlab` import in `src/cifarlab` is read with `ast`, at module level and inside
functions alike, so a lazy import cannot hide a dependency that points up the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {  # package -> layer; a module may import only from lower layers or its own package
    "cli": 4, "api": 4,
    "training": 3, "evaluation": 3, "live": 3, "predict": 3, "export": 3,
    "inference": 2,
    "models": 1,
    "data": 0,
}
SHARED = {"cifarlab", "cifarlab.errors", "cifarlab.atomic", "cifarlab.options", "cifarlab.imports"}
# Shared modules (used by every layer) import only other shared modules, except the package root,
# which hands out the Python API on first use: FRONT_DOOR, imported inside functions only.
FRONT_DOOR = ("cifarlab", "cifarlab.api")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str], top_level_only: bool = False) -> set[str]:
    """The cifarlab modules `path` imports (`from pkg import submodule` counts as the submodule)."""
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return {name for name in found if name in modules}


def graph() -> dict[str, set[str]]:
    """module -> the modules it imports, without the front door's lazy edge."""
    modules = {module_name(p): p for p in (SRC / "cifarlab").rglob("*.py")}
    edges = {name: imports_of(path, set(modules)) - {name} for name, path in modules.items()}
    edges[FRONT_DOOR[0]].discard(FRONT_DOOR[1])
    return edges


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(module: str) -> int | None:
    return None if module in SHARED else LAYERS[package(module)]


def test_every_package_has_a_layer():
    assert {package(m) for m in graph() if m not in SHARED} == set(LAYERS)


def test_no_import_points_up_or_across_the_layers():
    wrong = []
    for source, targets in graph().items():
        for target in targets:
            if source in SHARED:
                if target not in SHARED:
                    wrong.append(f"{source} -> {target} (shared modules import only shared modules)")
            elif target not in SHARED and package(source) != package(target) and \
                    layer(target) >= layer(source):
                wrong.append(f"{source} (layer {layer(source)}) -> {target} (layer {layer(target)})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_the_package_root_imports_the_api_only_when_asked():
    root = SRC / "cifarlab" / "__init__.py"
    modules = {module_name(p) for p in (SRC / "cifarlab").rglob("*.py")}
    assert FRONT_DOOR[1] in imports_of(root, modules)
    assert FRONT_DOOR[1] not in imports_of(root, modules, top_level_only=True)


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("source,target", [("cifarlab.models.io", "cifarlab.inference"),
                                           ("cifarlab.data.folder", "cifarlab.training.train")])
def test_the_check_catches_an_upward_import(tmp_path, monkeypatch, source, target):
    """The layer check fails on a planted upward import (so it can fail at all)."""
    edges = graph()
    edges[source] = edges[source] | {target}
    monkeypatch.setattr(__import__(__name__), "graph", lambda: edges)
    with pytest.raises(AssertionError, match="against the layer order"):
        test_no_import_points_up_or_across_the_layers()
