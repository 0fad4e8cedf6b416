"""Landmark metrics: mean radial error and success-detection rate (Wang et al., "A benchmark for
comparison of dental radiography analysis algorithms", MedIA 2016 — the ISBI cephalometric
challenge definitions, used for spine landmarks too).

Landmarks are ``(..., K, D)`` arrays of K points in D dimensions, in pixels; ``spacing`` (one
value per dimension, in the points' own axis order, mm per pixel) turns them into millimetres.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array, check_finite, check_same_shape

__all__ = ["radial_errors", "mean_radial_error", "success_detection_rate", "identification_rate",
           "identified", "localisation_errors"]


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


def identification_rate(pred: Mapping[int, Sequence[float]], true: Mapping[int, Sequence[float]],
                        max_mm: float = 20.0) -> float:
    """Share of true vertebrae that are identified, as the VerSe benchmark defines it (Sekuboyina et al.,
    Med Image Anal 2021, section 3.3): vertebra ``v`` is identified when a prediction for ``v`` exists, lies
    within ``max_mm`` of ``v``'s true centroid, and no other true centroid is closer to it. A missing
    prediction is a miss; predictions of vertebrae absent from ``true`` do not count.

    Args:
        pred, true: label → centroid (x, y, z) in mm (world coordinates).
        max_mm: the distance limit (VerSe: 20 mm).

    Example:
        >>> truth = {20: (0, 0, 100), 21: (0, 0, 70), 22: (0, 0, 40)}
        >>> identification_rate({20: (0, 0, 98), 21: (0, 0, 42), 22: (0, 0, 40)}, truth)  # L2 put on L3
        0.6666666666666666
    """
    if not true:
        raise LumbarLabError("identification_rate needs at least one true centroid.")
    found = identified(pred, true, max_mm)
    return sum(found.values()) / len(found)


def identified(pred: Mapping[int, Sequence[float]], true: Mapping[int, Sequence[float]],
               max_mm: float = 20.0) -> dict[int, bool]:
    """Per true vertebra, whether it is identified by :func:`identification_rate`'s rule (VerSe).

    Example:
        >>> identified({20: (0, 0, 98), 21: (0, 0, 42)}, {20: (0, 0, 100), 21: (0, 0, 70), 22: (0, 0, 40)})
        {20: True, 21: False, 22: False}
    """
    labels = list(true)
    centres = np.array([np.asarray(true[v], float) for v in labels])
    out = {}
    for k, v in enumerate(labels):
        if v not in pred:
            out[v] = False
            continue
        d = np.linalg.norm(centres - np.asarray(pred[v], float), axis=1)
        out[v] = bool(d[k] <= max_mm and int(np.argmin(d)) == k)
    return out


def localisation_errors(pred: Mapping[int, Sequence[float]], true: Mapping[int, Sequence[float]]) -> dict[int, float]:
    """Distance in mm from each predicted centroid to the true centroid of the same vertebra (VerSe's
    localisation distance), for the vertebrae in both.

    Example:
        >>> localisation_errors({20: (0, 3, 4), 30: (0, 0, 0)}, {20: (0, 0, 0), 21: (0, 0, 9)})
        {20: 5.0}
    """
    return {v: float(np.linalg.norm(np.asarray(pred[v], float) - np.asarray(true[v], float)))
            for v in true if v in pred}
