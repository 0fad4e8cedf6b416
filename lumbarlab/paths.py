"""Where lumbarlab keeps data (fetched datasets) and caches (trained checkpoints, renders).

``LUMBARLAB_DATA`` and ``LUMBARLAB_CACHE`` override the defaults, which follow the XDG
base-directory convention (``~/.local/share/lumbarlab``, ``~/.cache/lumbarlab``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "cache_dir", "repo_root"]


def data_dir() -> Path:
    """Folder for fetched public datasets (not created until something is written)."""
    env = os.environ.get("LUMBARLAB_DATA")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lumbarlab"


def cache_dir() -> Path:
    """Folder for caches such as trained checkpoints."""
    env = os.environ.get("LUMBARLAB_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lumbarlab"


def repo_root() -> Path | None:
    """The source checkout this package runs from, or None for an installed wheel."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() and (here / "notebooks").is_dir() else None
