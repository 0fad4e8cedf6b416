"""Verifying a zoo model: its checkpoint's sha256 against the manifest, its test metrics recomputed against
the manifest's and against the recipe's floor. Above both storing and training, so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lumbarlab.zoo.recipes import resolve
from lumbarlab.zoo.store import TOLERANCE, _entry, load, sha256, weights_dir
from lumbarlab.zoo.training import evaluate, test_split

__all__ = ["verify", "VerifyResult"]


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
