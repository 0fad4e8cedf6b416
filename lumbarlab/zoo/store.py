"""Where zoo checkpoints live, the manifest that vouches for them, loading and verifying.

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

import numpy as np
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.zoo.recipes import Recipe, resolve

__all__ = ["ZooEntry", "weights_dir", "checkpoint_path", "entries", "sha256", "load", "predictor",
           "predict_landmarks", "verify", "VerifyResult", "write_entry", "build"]

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
    """The untrained network of ``recipe``."""
    from lumbarlab.models import build_model

    return build_model(recipe.task, recipe.arch, spatial_dims=2, size=recipe.size, out_channels=recipe.out_channels)


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
    """A :class:`lumbarlab.infer.Predictor` over zoo model ``name``: class probabilities for the
    classifier, label masks for the segmenter, heatmap logits for the landmark model."""
    from lumbarlab.infer import Predictor

    recipe = resolve(name)
    output = {"classification": "probabilities", "segmentation": "labels", "landmarks": "logits"}[recipe.task]
    return Predictor(load(name, folder), spatial_dims=2, output=kwargs.pop("output", output), **kwargs)


#: Soft-argmax window (± pixels around each map's peak) used to decode the landmark model. The recipe's
#: heavy heatmap term makes the maps single peaks, and the window drops what little mass strays far away
#: (test split: MRE 0.217 mm windowed against 0.225 mm over the whole map). None decodes over the whole
#: map, as the DSNT distance term does in training.
DECODE_WINDOW: int | None = 6


def predict_landmarks(model: torch.nn.Module, images: np.ndarray, batch_size: int = 16,
                      window: int | None = DECODE_WINDOW) -> np.ndarray:
    """(N, H, W) or (H, W) images → (N, 22, 2) or (22, 2) (x, y) landmark pixels by soft-argmax
    (over the whole map by default, as in training; ``window``: within ± pixels of each map's peak)."""
    from lumbarlab.infer import Predictor
    from lumbarlab.models import decode_heatmaps

    logits = Predictor(model, spatial_dims=2, output="logits", batch_size=batch_size)(images)
    single = logits.ndim == 3
    coords = decode_heatmaps(torch.from_numpy(logits[None] if single else logits), beta=1.0, window=window).numpy()
    return coords[0] if single else coords


@dataclass
class VerifyResult:
    """Outcome of :func:`verify` for one model; ``ok`` when hash, metrics and floor all pass."""

    name: str
    hash_ok: bool
    metrics: dict[str, float]
    expected: dict[str, float]
    floor: tuple[str, str, float]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        metric, op, value = self.floor
        status = "ok" if self.ok else "FAILED: " + "; ".join(self.problems)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
        return f"{self.name}: {metric} {self.metrics.get(metric, float('nan')):.4g} (floor {op} {value}) — {shown} — {status}"


def _meets(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound


def verify(name: str, folder: Path | None = None) -> VerifyResult:
    """Check ``name``'s sha256, recompute its test-split metrics and compare them with the manifest
    (within :data:`TOLERANCE`) and with the recipe's floor."""
    from lumbarlab.zoo.training import evaluate, test_split

    folder = folder or weights_dir()
    recipe = resolve(name)
    entry = _entry(name, folder)
    problems: list[str] = []
    path = folder / entry.file
    hash_ok = path.exists() and sha256(path) == entry.sha256
    if not hash_ok:
        problems.append(f"{path.name}: sha256 differs from the manifest" if path.exists() else f"{path.name} missing")
        return VerifyResult(recipe.name, False, {}, entry.metrics, recipe.floor, problems)
    metrics = evaluate(recipe, load(name, folder), test_split(recipe))
    for key, expected in entry.metrics.items():
        got = metrics.get(key)
        if got is None or abs(got - expected) > TOLERANCE * max(1.0, abs(expected)):
            problems.append(f"{key} = {got} but the manifest says {expected}")
    metric, op, bound = recipe.floor
    if not _meets(metrics[metric], op, bound):
        problems.append(f"{metric} = {metrics[metric]:.4g} misses the floor {op} {bound}")
    return VerifyResult(recipe.name, True, metrics, entry.metrics, recipe.floor, problems)
