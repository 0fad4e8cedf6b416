"""Where zoo checkpoints live, the manifest that vouches for them, building and loading (verifying a model
against its test split is :mod:`lumbarlab.zoo.verify`, above both this and training).

The shipped checkpoints and ``manifest.json`` sit in ``lumbarlab/zoo/weights``;
``LUMBARLAB_ZOO`` points lumbarlab at another folder of the same layout (e.g. one written by
``lumbarlab zoo train --out``). A checkpoint is a dict ``{"model": state_dict}`` saved with
``torch.save``; it is read with ``weights_only=True`` and only after its sha256 matches the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.zoo.recipes import Recipe, resolve

__all__ = ["ZooEntry", "weights_dir", "checkpoint_path", "entries", "sha256", "load", "predictor", "write_entry",
           "build", "MANIFEST", "TOLERANCE"]

MANIFEST = "manifest.json"
#: Recomputed metrics may differ from the manifest's by this much (CPU thread counts change float sums).
TOLERANCE = 2e-3


def weights_dir() -> Path:
    """The folder holding checkpoints and ``manifest.json`` (``LUMBARLAB_ZOO`` overrides)."""
    env = os.environ.get("LUMBARLAB_ZOO")
    return Path(env).expanduser() if env else Path(__file__).resolve().parent / "weights"


def checkpoint_path(name: str, folder: Path | None = None) -> Path:
    return (folder or weights_dir()) / f"{resolve(name).name}.pt"


@dataclass
class ZooEntry:
    """One manifest entry: file, sha256, size, recipe, split seeds, test metrics, provenance."""

    name: str
    file: str
    sha256: str
    bytes: int
    recipe: dict
    metrics: dict[str, float]
    provenance: dict = field(default_factory=dict)

    @property
    def splits(self) -> dict[str, list[int]]:
        return {k: list(self.recipe[k]) for k in ("train", "val", "test")}

    def to_dict(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "bytes": self.bytes, "recipe": self.recipe,
                "splits": self.splits, "metrics": self.metrics, "provenance": self.provenance}


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LumbarLabError(f"{path} is not valid JSON ({exc}); restore it from the package or retrain.") from exc


def entries(folder: Path | None = None) -> dict[str, ZooEntry]:
    """Manifest entries of ``folder`` (default :func:`weights_dir`), by name."""
    raw = _read_manifest(folder or weights_dir())
    return {name: ZooEntry(name, e["file"], e["sha256"], e["bytes"], e["recipe"], e["metrics"], e.get("provenance", {}))
            for name, e in raw.items()}


def write_entry(entry: ZooEntry, folder: Path) -> Path:
    """Add or replace ``entry`` in ``folder``'s manifest, atomically."""
    from lumbarlab.io import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(folder)
    manifest[entry.name] = entry.to_dict()
    path = folder / MANIFEST
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(recipe: Recipe) -> torch.nn.Module:
    """The untrained network of ``recipe`` (2D or 3D as the recipe says). A centroid model is a heatmap network
    whose head starts at a probability of 1 % everywhere (CenterNet's prior: Zhou et al. 2019), so the focal
    loss starts near its converged scale instead of at 0.5 on millions of empty voxels."""
    from lumbarlab.models import build_model

    task = {"centroids": "landmarks", "grading": "classification"}.get(recipe.task, recipe.task)
    model = build_model(task, recipe.arch, spatial_dims=recipe.spatial_dims, size=recipe.size,
                        in_channels=recipe.in_channels, out_channels=recipe.out_channels)
    if recipe.task == "centroids":
        torch.nn.init.constant_(model.head.bias, -4.6)  # sigmoid(−4.6) ≈ 0.01
    return model


def _entry(name: str, folder: Path) -> ZooEntry:
    recipe = resolve(name)
    found = entries(folder)
    if recipe.name not in found:
        raise LumbarLabError(f"{folder / MANIFEST} has no entry for {recipe.name!r}; "
                             f"run `lumbarlab zoo train {recipe.name}` to make one.")
    return found[recipe.name]


def load(name: str, folder: Path | None = None, device=None) -> torch.nn.Module:
    """The trained model ``name`` in eval mode, after checking its sha256 against the manifest.

    Raises LumbarLabError when the checkpoint is missing, its hash differs from the manifest's
    (a changed or corrupt file is refused, never loaded), or it does not fit the recipe's network.
    """
    from lumbarlab.train import load_checkpoint

    folder = folder or weights_dir()
    entry = _entry(name, folder)
    path = folder / entry.file
    if not path.exists():
        raise LumbarLabError(f"{path}: checkpoint missing; run `lumbarlab zoo train {entry.name}`.")
    digest = sha256(path)
    if digest != entry.sha256:
        raise LumbarLabError(f"{path}: sha256 {digest[:12]}… does not match the manifest's {entry.sha256[:12]}…; "
                             f"the file was changed or corrupted. Refusing to load it — reinstall lumbarlab or "
                             f"run `lumbarlab zoo train {entry.name}`.")
    state = load_checkpoint(path)  # weights_only=True
    model = build(resolve(name))
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        raise LumbarLabError(f"{path} does not fit the {entry.name} network: {exc}") from exc
    return model.to(device or "cpu").eval()


def predictor(name: str, folder: Path | None = None, **kwargs):
    """A :class:`lumbarlab.infer.Predictor` over zoo model ``name``: class probabilities for a classifier, label
    masks for a segmenter, heatmap logits for a landmark model; 3D models run sliding windows of their patch.
    ``kwargs`` go to the Predictor (e.g. ``device=``, ``batch_size=``)."""
    from lumbarlab.infer import Predictor
    from lumbarlab.zoo.tasks import TASKS

    recipe = resolve(name)
    kwargs.setdefault("output", TASKS[recipe.task].output)
    if recipe.spatial_dims == 3:
        kwargs.setdefault("roi_size", tuple(recipe.patch))
    return Predictor(load(name, folder, kwargs.get("device")), spatial_dims=recipe.spatial_dims, **kwargs)
