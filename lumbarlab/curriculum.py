"""Execute every notebook of the curriculum with papermill, into a build folder.

Each notebook runs with ``FAST=True`` (unless ``full=True``) and a per-cell timeout —
nbclient can wait forever on a lost kernel reply (jupyter/nbclient#312) — and is written
as an executed ``.ipynb`` plus an ``.html`` page. A table of notebook, seconds and status
is printed at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from lumbarlab.errors import LumbarLabError
from lumbarlab.paths import repo_root

__all__ = ["NotebookRun", "find_notebooks", "run_curriculum", "format_table"]


@dataclass
class NotebookRun:
    notebook: str
    seconds: float
    status: str  # "ok" or "failed: <reason>"
    output: str = ""


def find_notebooks(folder: str | Path | None = None) -> list[Path]:
    """The curriculum's notebooks in lesson order (sorted by name)."""
    if folder is None:
        root = repo_root()
        if root is None:
            raise LumbarLabError("no notebooks/ folder found; run from a lumbarlab source checkout or pass a folder.")
        folder = root / "notebooks"
    folder = Path(folder)
    if not folder.is_dir():
        raise LumbarLabError(f"{folder} is not a folder of notebooks.")
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def _to_html(executed: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    html = executed.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def run_curriculum(
    notebooks: list[Path] | None = None, out_dir: str | Path = "build/curriculum", full: bool = False,
    timeout: int = 600, parameters: dict | None = None, html: bool = True,
) -> list[NotebookRun]:
    """Run each notebook with papermill; never raises for a failing notebook (see the status)."""
    import papermill as pm

    notebooks = notebooks or find_notebooks()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for nb in notebooks:
        target = out / nb.name
        params = {"FAST": not full, **(parameters or {})}
        start = time.perf_counter()
        status = "ok"
        try:
            pm.execute_notebook(
                str(nb), str(target), parameters=params, cwd=str(nb.parent),
                execution_timeout=timeout, progress_bar=False, kernel_name="python3",
            )
            if html:
                _to_html(target)
        except Exception as exc:  # a failed notebook is reported, the rest still run
            status = f"failed: {exc.__class__.__name__}: {str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else ''}"
        runs.append(NotebookRun(nb.name, time.perf_counter() - start, status))
    return runs


def format_table(runs: list[NotebookRun]) -> str:
    """A plain-text table: notebook, seconds, status."""
    width = max([len("notebook")] + [len(r.notebook) for r in runs])
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  status", "-" * (width + 20)]
    lines += [f"{r.notebook:<{width}}  {r.seconds:8.1f}  {r.status}" for r in runs]
    return "\n".join(lines)
