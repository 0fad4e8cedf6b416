"""Lesson 12's DATA path, end to end: phantom studies written in SPIDER's layout, converted by
`lumbarlab fetch spider --from`, and scored by the lesson with the same code as the phantom."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.notebook
def test_lesson_12_scores_mri_spine_on_a_converted_spider_copy(tmp_path):
    import papermill as pm

    from lumbarlab.fetch import fetch
    from lumbarlab.phantom import make_case
    from lumbarlab.phantom.export import write_case

    source = tmp_path / "spider_download"
    for seed in (900_600, 900_601):  # test-split anatomies, 1 mm in-plane as a scanner gives
        write_case(make_case(seed, shape=(120, 200, 220), spacing=1.0, modalities=("t2",)), source)
    folder = fetch("spider", tmp_path / "data", from_path=source, progress=False)
    out = tmp_path / "12.ipynb"
    notebook = REPO / "notebooks" / "12_mri_segmentation.ipynb"
    pm.execute_notebook(str(notebook), str(out), parameters={"FAST": True, "DATA": str(folder)},
                        cwd=str(notebook.parent), execution_timeout=300, progress_bar=False, kernel_name="python3")
    cells = json.loads(out.read_text())["cells"]
    printed = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert f"data={folder}" in printed
    line = next(s for s in printed.splitlines() if s.startswith("phantom → real:"))
    scores = [float(v) for v in re.findall(r"→ ([0-9.]+)", line)]
    # the same phantom, converted: the model reads SPIDER's values mapped back, so the scores stay high
    assert len(scores) == 3 and min(scores) > 0.85, line
    assert sum(s.startswith("phantom90060") for s in printed.splitlines()) == 2
