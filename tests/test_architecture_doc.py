"""ARCHITECTURE.md tells the truth: its layer table is the one tests/test_layers.py enforces, and its code
blocks (declaring a CT dataset and a CT zoo recipe) run."""

from __future__ import annotations

import re

from conftest import REPO
from test_layers import LAYERS

DOC = (REPO / "ARCHITECTURE.md").read_text()


def test_the_layer_table_is_the_enforced_one():
    rows = re.findall(r"^\| (\d) (\w+) \| (.+?) \|", DOC, flags=re.M)
    assert [name for _, name, _ in rows] == [name for name, _ in LAYERS]
    for (_, name, cell), (_, prefixes) in zip(rows, LAYERS, strict=True):
        documented = {m.strip("`/") for m in re.findall(r"`[^`]+`", cell)}
        enforced = {p.removeprefix("lumbarlab.") for p in prefixes}
        assert documented == enforced, f"layer {name}: ARCHITECTURE.md lists {documented}, LAYERS {enforced}"


def test_the_code_blocks_run(monkeypatch):
    from lumbarlab import zoo

    blocks = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)
    assert len(blocks) == 2
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "ARCHITECTURE.md", "exec"), scope)  # noqa: S102 - our own documentation
    recipe = scope["ct_vertebrae"]
    monkeypatch.setitem(zoo.RECIPES, recipe.name, recipe)
    assert zoo.resolve("ct/segmentation") is recipe
    assert zoo.data.builder(recipe) is zoo.data.BUILDERS["phantom_volumes"]
    model = zoo.store.build(recipe)
    assert type(model).__name__ == "UNet" and model.dimensions == 3
