"""Landmark metrics: mean radial error and success-detection rate (Wang et al., "A benchmark for
comparison of dental radiography analysis algorithms", MedIA 2016 — the ISBI cephalometric
challenge definitions, used for spine landmarks too).

Landmarks are ``(..., K, D)`` arrays of K points in D dimensions, in pixels; ``spacing`` (one
value per dimension, in the points' own axis order, mm per pixel) turns them into millimetres.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array, check_finite, check_same_shape

__all__ = ["radial_errors", "mean_radial_error", "success_detection_rate"]


def radial_errors(pred, true, spacing: float | Sequence[float] = 1.0) -> np.ndarray:
    """Euclidean distance (mm) between each predicted and true landmark, shape ``(..., K)``."""
    p = check_finite(as_array(pred, "pred", dtype=float), "pred")
    t = check_finite(as_array(true, "true", dtype=float), "true")
    check_same_shape(p, t, ("pred", "true"))
    if p.ndim < 1 or p.shape[-1] not in (2, 3):
        raise LumbarLabError(f"landmarks must end in 2 or 3 coordinates, got shape {p.shape}.")
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (p.shape[-1],))
    return np.linalg.norm((p - t) * sp, axis=-1)


def mean_radial_error(pred, true, spacing: float | Sequence[float] = 1.0) -> tuple[float, float]:
    """Mean radial error and its standard deviation (mm) over all landmarks."""
    e = radial_errors(pred, true, spacing)
    return float(e.mean()), float(e.std())


def success_detection_rate(pred, true, spacing: float | Sequence[float] = 1.0,
                           thresholds: Sequence[float] = (2.0, 2.5, 3.0, 4.0)) -> dict[float, float]:
    """Share of landmarks within each radius (mm) of the truth."""
    e = radial_errors(pred, true, spacing)
    return {float(r): float((e <= r).mean()) for r in thresholds}
