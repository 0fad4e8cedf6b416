"""The layers of ARCHITECTURE.md, enforced: every import in lumbarlab (and the data_fetch alias) — at module
level or inside a function — points to its own layer or one below, and no modules import each other in a
cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

#: Layers from the bottom up (ARCHITECTURE.md); a module belongs to the first prefix that matches it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("lumbarlab.errors", "lumbarlab.volume", "lumbarlab.labels", "lumbarlab.device", "lumbarlab.metrics",
              "lumbarlab.paths", "lumbarlab.imports")),
    ("formats", ("lumbarlab.io", "lumbarlab.dicom")),
    ("measures", ("lumbarlab.measure",)),
    ("sources", ("lumbarlab.phantom", "lumbarlab.fetch", "data_fetch")),
    ("datasets", ("lumbarlab.datasets",)),
    ("learning", ("lumbarlab.models", "lumbarlab.losses", "lumbarlab.train", "lumbarlab.infer", "lumbarlab.postprocess", "lumbarlab.denoise",
                  "lumbarlab.explain", "lumbarlab.register", "lumbarlab.robustness", "lumbarlab.pretrain",
                  "lumbarlab.compact")),
    ("top", ("lumbarlab.zoo", "lumbarlab.widgets", "lumbarlab.cli", "lumbarlab.segment", "lumbarlab.segment_mri",
             "lumbarlab.grade_mri", "lumbarlab.curriculum",
             "lumbarlab.viz", "lumbarlab.lesson", "lumbarlab.__main__")),
]


def _modules() -> dict[str, Path]:
    mods = {}
    for package in ("lumbarlab", "data_fetch"):
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def _layer(module: str) -> int:
    if module == "lumbarlab":  # the package's own __init__: its version and the error type
        return 0
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer; add it to LAYERS and ARCHITECTURE.md")


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module → the lumbarlab/data_fetch modules it imports anywhere in its file."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                if target.split(".")[0] in ("lumbarlab", "data_fetch"):
                    module = resolve(target)
                    if module and module != name:
                        found.add(module)
        edges[name] = found
    return edges


MODULES = _modules()
EDGES = _imports(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    upward = [f"{module} ({LAYERS[_layer(module)][0]}) imports {other} ({LAYERS[_layer(other)][0]})"
              for other in sorted(EDGES[module]) if _layer(other) > _layer(module)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in EDGES.get(v, ()):
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
                cycles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_the_walk_sees_imports_inside_functions():
    """The test would be worthless if it missed a late import: datasets.xray imports measure inside a function."""
    assert "lumbarlab.measure" in EDGES["lumbarlab.datasets.xray"]
