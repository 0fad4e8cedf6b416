"""environment.yml (conda) must create the same environment as pyproject.toml (pip)."""

from __future__ import annotations

import re

import tomllib
import yaml
from conftest import REPO

# conda-forge names of PyPI packages where they differ
CONDA_NAME = {"torch": "pytorch", "simpleitk": "simpleitk"}


def _name(req: str) -> str:
    return re.split(r"[<>=!\[ ;]", req, maxsplit=1)[0].strip().lower()


def _lower_bound(req: str) -> str | None:
    m = re.search(r">=\s*([\w.]+)", req)
    return m.group(1) if m else None


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = {_name(d): d for d in deps if isinstance(d, str)}
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)

    # python 3.11, as CI uses, and allowed by requires-python
    assert conda["python"].replace(" ", "") == "python=3.11"
    assert project["requires-python"] == ">=3.10"
    assert "pip" in conda

    # every runtime dependency is a conda package with the same lower bound
    for req in project["dependencies"]:
        name = CONDA_NAME.get(_name(req), _name(req))
        assert name in conda, f"{req} missing from environment.yml"
        assert _lower_bound(conda[name]) == _lower_bound(req), (req, conda[name])

    # the pip section installs this repo with every extra
    extras = sorted(project["optional-dependencies"])
    installs = [p for p in pip_section if p.startswith("-e")]
    assert len(installs) == 1
    m = re.match(r"-e\s+\.\[([\w,]+)\]", installs[0])
    assert m and sorted(m.group(1).split(",")) == extras
