"""Shared fixtures: small phantom cases rendered once per session, and an isolated Jupyter home."""

from __future__ import annotations

import os
from pathlib import Path

import harness
import pytest
from harness import open_dashboard  # noqa: F401  (the browser harness fixture)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Caches (zoo training runs, rendered files) go to a temporary folder, never the user's."""
    old = os.environ.get("LUMBARLAB_CACHE")
    os.environ["LUMBARLAB_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("LUMBARLAB_CACHE", None)
    else:
        os.environ["LUMBARLAB_CACHE"] = old


@pytest.fixture(scope="session")
def healthy_case():
    """A healthy case at 1 mm on the benchmark grid, rendered once."""
    from lumbarlab.phantom import make_case

    return make_case(11)


@pytest.fixture(scope="session")
def small_case():
    """A quick 2 mm case, for tests that need a case but not its detail."""
    from lumbarlab.phantom import make_case

    return make_case(5, shape=(80, 80, 100), spacing=2.0, slip={"L4": 20})


@pytest.fixture
def free_port() -> int:
    return harness.free_port()


@pytest.fixture
def jupyter_env(tmp_path) -> dict[str, str]:
    """Environment for a Jupyter server that touches nothing of the user's."""
    return harness.jupyter_env(tmp_path / "home")

