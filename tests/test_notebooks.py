"""Every notebook runs under papermill in FAST mode and teaches with numbers from its own run."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_notebooks_have_required_structure():
    assert NOTEBOOKS, "the curriculum has no notebooks"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1, f"{path.name}: needs one cell tagged 'parameters'"
        src = "".join(params[0]["source"])
        for name in ("FAST", "DEVICE", "SEED", "DATA"):
            assert f"{name} =" in src, f"{path.name}: parameters cell lacks {name}"
        text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert "## Summary" in text and "## Exercises" in text, path.name
        assert all(not c.get("outputs") and not c.get("execution_count") for c in code), f"{path.name} has outputs"
        assert ".to(\"cuda\")" not in "".join("".join(c["source"]) for c in code)
        # the parameters are applied by the shared helper, right after they are set, and exercises use its check()
        after = "".join(code[code.index(params[0]) + 1]["source"])
        assert "setup(FAST, DEVICE, SEED, DATA)" in after, f"{path.name}: the cell after the parameters must call setup"
        all_code = "\n".join("".join(c["source"]) for c in code)
        assert "def check(" not in all_code and "check(" in all_code, f"{path.name}: use lumbarlab.lesson.check"


@pytest.mark.notebook
def test_the_device_parameter_is_honoured(tmp_path):
    """A lesson run with DEVICE="cpu" runs on the CPU, and one asking for CUDA on a machine without it stops with
    the lab's error instead of quietly using the CPU."""
    import papermill as pm
    import torch

    path = REPO / "notebooks" / "06_xray_segmentation.ipynb"
    out = tmp_path / "06.ipynb"
    pm.execute_notebook(str(path), str(out), parameters={"FAST": True, "DEVICE": "cpu"}, cwd=str(path.parent),
                        execution_timeout=300, progress_bar=False, kernel_name="python3")
    printed = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []))
    assert "device=cpu" in printed
    if not torch.cuda.is_available():
        with pytest.raises(pm.PapermillExecutionError, match="CUDA"):
            pm.execute_notebook(str(path), str(tmp_path / "06-cuda.ipynb"), parameters={"FAST": True, "DEVICE": "cuda"},
                                cwd=str(path.parent), execution_timeout=300, progress_bar=False, kernel_name="python3")


def test_every_notebook_is_executed_fast_by_the_test_command():
    """nbval executes every notebook (FAST, with a cell timeout) in the README's test command and fails on any
    error, so the notebooks are not run a second time under papermill here; tests that read a lesson's numbers
    run that lesson themselves. This guards that run: the test target keeps nbval over notebooks/, with FAST
    switched on through the environment that every parameters cell reads."""
    make = (REPO / "Makefile").read_text()
    target = make[make.index("\ntest: "):make.index("\ntest-fast:")]
    assert "LUMBARLAB_FAST=1" in target and "--nbval-lax" in target and "--nbval-cell-timeout" in target, target
    assert target.rstrip().endswith("notebooks"), target
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        params = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
        assert 'FAST = bool(int(os.environ.get("LUMBARLAB_FAST", "0")))' in "".join(params["source"]), path.name


@pytest.mark.notebook
def test_start_here_reports_its_own_numbers(tmp_path):
    import papermill as pm

    out = tmp_path / "00.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "00_start_here.ipynb"), str(out), parameters={"FAST": True},
                        cwd=str(REPO / "notebooks"), execution_timeout=300, progress_bar=False, kernel_name="python3")
    nb = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "asked for 30 %, measured 30.0" in text  # slip measured on the corners
    assert "Exercise 1: not answered yet" in text
    assert "Pfirrmann I" in text and "Pfirrmann V" in text


def test_this_run_sentences_are_generated_from_the_run():
    """A lesson's "This run:" sentences carry its numbers, so they are written by the run itself (an f-string shown
    with ``Markdown``), never typed into a markdown cell where they would go stale; every lesson after the first has
    at least one."""
    import re

    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] == "markdown":
                assert "**This run:**" not in text, f"{path.name}: a typed 'This run:' sentence; generate it in code"
        generated = [c for c in nb["cells"] if c["cell_type"] == "code" and "This run:" in "".join(c["source"])]
        for cell in generated:
            text = "".join(cell["source"])
            assert "Markdown(" in text and re.search(r'f"[^"]*\{', text), f"{path.name}: 'This run:' must be an f-string"
        if not path.name.startswith("00_"):
            assert generated, f"{path.name}: no 'This run:' sentence generated from the run"
