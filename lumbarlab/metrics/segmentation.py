"""Segmentation metrics: overlap (Dice, IoU) and boundary distances in millimetres.

* Dice (Dice 1945; Sørensen 1948): DSC = 2|A∩B| / (|A| + |B|) — on binary masks it equals F1.
* IoU (Jaccard 1912): |A∩B| / |A∪B| = DSC / (2 − DSC).
* Surface distances (Heimann et al., IEEE TMI 2009): the surface of a mask is its voxels
  removed by one binary erosion; each surface voxel's distance (mm, spacing-aware Euclidean
  distance transform) to the other mask's surface. HD95 is the larger of the two directed
  95th percentiles (as MONAI computes it); the mean surface distance averages both directions.

Edge cases: two empty masks agree perfectly (Dice = IoU = 1, distances 0); one empty and one
not gives Dice = IoU = 0 and infinite distances. ``labels`` picks the classes of a label map;
``mean_dice`` / ``mean_iou`` average over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array, check_same_shape

__all__ = ["dice", "iou", "mean_dice", "mean_iou", "surface_distances", "hausdorff95", "mean_surface_distance"]


def _masks(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = as_array(y_true, "y_true"), as_array(y_pred, "y_pred")
    check_same_shape(t, p)
    if t.dtype.kind == "f" and not np.all(np.isfinite(t)) or p.dtype.kind == "f" and not np.all(np.isfinite(p)):
        raise LumbarLabError("masks hold NaN values; threshold probabilities before computing overlap.")
    return t.astype(bool), p.astype(bool)


def dice(y_true, y_pred) -> float:
    """Dice similarity coefficient of two binary masks (any shape); 1.0 when both are empty."""
    t, p = _masks(y_true, y_pred)
    total = int(t.sum()) + int(p.sum())
    return 1.0 if total == 0 else float(2 * np.logical_and(t, p).sum() / total)


def iou(y_true, y_pred) -> float:
    """Intersection over union (Jaccard index) of two binary masks; 1.0 when both are empty."""
    t, p = _masks(y_true, y_pred)
    union = int(np.logical_or(t, p).sum())
    return 1.0 if union == 0 else float(np.logical_and(t, p).sum() / union)


def _per_label(fn, y_true, y_pred, labels: Sequence[int] | None) -> dict[int, float]:
    t, p = as_array(y_true, "y_true"), as_array(y_pred, "y_pred")
    check_same_shape(t, p)
    if labels is None:
        labels = sorted(set(np.unique(t).tolist()) - {0})
    if len(labels) == 0:
        raise LumbarLabError("no foreground labels to average over; pass labels=[...] explicitly.")
    return {int(k): fn(t == k, p == k) for k in labels}


def mean_dice(y_true, y_pred, labels: Sequence[int] | None = None, per_class: bool = False):
    """Mean Dice over the labels of two label maps (default: the non-zero labels of ``y_true``)."""
    scores = _per_label(dice, y_true, y_pred, labels)
    return scores if per_class else float(np.mean(list(scores.values())))


def mean_iou(y_true, y_pred, labels: Sequence[int] | None = None, per_class: bool = False):
    """Mean IoU (mIoU) over the labels of two label maps."""
    scores = _per_label(iou, y_true, y_pred, labels)
    return scores if per_class else float(np.mean(list(scores.values())))


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def surface_distances(y_true, y_pred, spacing: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of ``y_pred`` to ``y_true``'s surface, and back."""
    t, p = _masks(y_true, y_pred)
    spacing = tuple(float(s) for s in (spacing or (1.0,) * t.ndim))
    if len(spacing) != t.ndim or any(s <= 0 for s in spacing):
        raise LumbarLabError(f"spacing must give one positive size per axis ({t.ndim}), got {spacing}.")
    st, sp = _surface(t), _surface(p)
    if not st.any() and not sp.any():
        return np.zeros(0), np.zeros(0)
    if not st.any() or not sp.any():
        return np.array([np.inf]), np.array([np.inf])
    to_true = ndimage.distance_transform_edt(~st, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return to_true[sp], to_pred[st]


def hausdorff95(y_true, y_pred, spacing: Sequence[float] | None = None) -> float:
    """95th-percentile Hausdorff distance (mm): max of the two directed 95th percentiles."""
    a, b = surface_distances(y_true, y_pred, spacing)
    if a.size == 0:
        return 0.0
    if np.isinf(a).any() or np.isinf(b).any():
        return float("inf")
    return float(max(np.percentile(a, 95), np.percentile(b, 95)))


def mean_surface_distance(y_true, y_pred, spacing: Sequence[float] | None = None) -> float:
    """Average symmetric surface distance (mm): the mean over both directions' distances."""
    a, b = surface_distances(y_true, y_pred, spacing)
    if a.size == 0:
        return 0.0
    return float(np.concatenate([a, b]).mean())
