"""The curriculum runner: executed notebooks + HTML, and a table of notebook, seconds, status."""

from __future__ import annotations

import nbformat
import pytest

from lumbarlab.curriculum import format_table, run_curriculum


def _notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("FAST = False", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_runs_each_notebook_and_reports(tmp_path):
    good = _notebook(tmp_path / "01_good.ipynb", "assert FAST is True\nprint('fast run')")
    bad = _notebook(tmp_path / "02_bad.ipynb", "raise ValueError('broken lesson')")
    runs = run_curriculum([good, bad], tmp_path / "build", timeout=120)
    assert [r.status == "ok" for r in runs] == [True, False]
    assert "broken lesson" in runs[1].status
    assert (tmp_path / "build" / "01_good.ipynb").exists() and (tmp_path / "build" / "01_good.html").exists()
    table = format_table(runs)
    assert "01_good.ipynb" in table and "seconds" in table and "failed" in table
