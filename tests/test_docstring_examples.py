"""Every ``Example:`` in lumbarlab's docstrings runs and prints what it says (doctest), so the documented
public API cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lumbarlab


def _modules() -> list[str]:
    names = ["lumbarlab"] + [m.name for m in pkgutil.walk_packages(lumbarlab.__path__, "lumbarlab.")]
    return [n for n in names if not n.endswith("__main__")]  # running __main__ would start the command line


def _with_examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name) if t.examples]


@pytest.mark.parametrize("name", [n for n in _modules() if _with_examples(n)])
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in _with_examples(name):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, "".join(report)


def test_public_modules_have_examples():
    """The entry points a user meets first document themselves with an example that runs."""
    documented = {n for n in _modules() if _with_examples(n)}
    for name in ("lumbarlab.volume", "lumbarlab.io", "lumbarlab.dicom", "lumbarlab.labels", "lumbarlab.phantom",
                 "lumbarlab.measure.label_map", "lumbarlab.measure.reports", "lumbarlab.infer", "lumbarlab.zoo"):
        assert name in documented, name
