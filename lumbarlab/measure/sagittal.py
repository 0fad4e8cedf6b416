"""Measurements of discs and canal from a label map of a sagittal MRI stack (slabs along axis 0; lumbarlab's
values: discs 119–124, canal 200): where each disc lies and how it is turned, its mid-height, the canal's AP
diameter behind it and the canal's cross-section at its level — what radiologists read from sagittal T2 to grade
disc narrowing and central stenosis.

Example:
    >>> import numpy as np
    >>> from lumbarlab.volume import Volume
    >>> lab = np.zeros((3, 60, 40), np.uint16)
    >>> lab[:, 20:50, 18:26] = 123      # a flat disc 30 pixels long, 8 high
    >>> lab[:, 6:18, 10:34] = 200       # the canal behind it, 12 pixels deep
    >>> m = sagittal_disc_measurements(Volume(lab, (4.0, 1.0, 1.0)))["L4-L5"]
    >>> m["height_mm"], m["canal_ap_mm"], m["canal_area_mm2"]
    (8.0, 12.0, 144.0)
"""

from __future__ import annotations

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import CANAL_LABEL, DISC_LABEL
from lumbarlab.volume import Volume

__all__ = ["disc_frame", "chord_mm", "sagittal_disc_measurements"]


def disc_frame(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Where a disc is on a sagittal stack: ``mask`` (X slabs, Y, Z) → (its widest slab, its centre (y, z) on that
    slab in pixels, the unit vector along its mid-plane in (y, z) pixels, pointing anterior). The direction is the
    principal axis of the disc's pixels (a disc is much longer than it is high).

    Example:
        >>> m = np.zeros((3, 40, 40), bool); m[1, 10:30, 18:22] = True
        >>> slab, centre, along = disc_frame(m)
        >>> slab, centre.tolist(), np.abs(along).round(3).tolist()
        (1, [19.5, 19.5], [1.0, 0.0])
    """
    areas = mask.reshape(mask.shape[0], -1).sum(axis=1)
    if areas.max() == 0:
        raise LumbarLabError("the disc mask is empty.")
    slab = int(np.argmax(areas))
    pts = np.argwhere(mask[slab]).astype(float)
    centre = pts.mean(axis=0)
    if len(pts) < 3:
        return slab, centre, np.array([1.0, 0.0])
    _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
    along = vt[0] / np.linalg.norm(vt[0])
    return slab, centre, along if along[0] >= 0 else -along


def _run(inside: np.ndarray, start: int) -> tuple[int, int]:
    """First and last index of the run of True in ``inside`` that contains ``start`` (or the first run after it)."""
    idx = np.flatnonzero(inside[start:])
    if idx.size == 0:
        return -1, -1
    first = start + int(idx[0])
    gaps = np.flatnonzero(~inside[first:])
    last = first + (int(gaps[0]) - 1 if gaps.size else inside.size - first - 1)
    return first, last


def chord_mm(plane: np.ndarray, centre: np.ndarray, direction: np.ndarray, pixel_mm: tuple[float, float],
             start_mm: float = 0.0, reach_mm: float = 80.0, step_mm: float = 0.1, longest: bool = False) -> float:
    """Length in mm of the run of ``plane`` (a 2D mask, pixels (y, z)) along the line from ``centre`` in
    ``direction`` (pixels), starting ``start_mm`` from the centre (negative: behind it) and going up to
    ``reach_mm`` — the run that contains the start, or the first one after it (``longest``: the longest run on the
    line); 0 when there is none. Nearest-pixel sampling every ``step_mm``; the length counts whole pixels the run
    covers.

    Example:
        >>> plane = np.zeros((40, 40), bool); plane[10:20, 15:25] = True
        >>> chord_mm(plane, np.array([15.0, 20.0]), np.array([0.0, 1.0]), (1.0, 1.0), start_mm=-20.0)
        10.0
    """
    u = np.asarray(direction, float) / np.linalg.norm(np.asarray(direction, float) * np.asarray(pixel_mm, float))
    t = np.arange(start_mm, reach_mm, step_mm)
    pts = np.rint(np.asarray(centre, float)[:, None] + u[:, None] * t[None]).astype(int)  # u: pixels per mm
    valid = (pts >= 0).all(axis=0) & (pts[0] < plane.shape[0]) & (pts[1] < plane.shape[1])
    inside = np.zeros(t.size, bool)
    inside[valid] = plane[pts[0, valid], pts[1, valid]]
    first, last = _run(inside, 0)
    if first < 0:
        return 0.0
    if longest:
        runs, at = [], 0
        while at < inside.size:
            a, b = _run(inside, at)
            if a < 0:
                break
            runs.append((a, b))
            at = b + 1
        first, last = max(runs, key=lambda r: np.linalg.norm((pts[:, r[1]] - pts[:, r[0]]) * np.asarray(pixel_mm)))
    span = np.linalg.norm((pts[:, last] - pts[:, first]) * np.asarray(pixel_mm, float))
    return float(span + _pixel_along(u, pixel_mm))


def _pixel_along(d: np.ndarray, pixel_mm) -> float:
    """The length of one pixel along unit-mm direction ``d`` (pixels per mm): a run from pixel a to pixel b covers
    b − a + 1 pixels."""
    step = np.asarray(d, float) / np.max(np.abs(d))  # one pixel along the dominant axis
    return float(np.linalg.norm(step * np.asarray(pixel_mm, float)))


def sagittal_disc_measurements(labels: Volume) -> dict[str, dict[str, float]]:
    """Per disc found in ``labels`` (a sagittal stack's label map, lumbarlab's values, slabs along axis 0):

    * ``height_mm`` — the disc's chord across its mid-plane through its centre, on its widest slab;
    * ``canal_ap_mm`` — the canal's longest chord behind the disc along the disc's mid-plane, within 60 mm (the AP
      diameter at the disc, what Verbiest's stenosis cut-offs read; 0 when no canal lies behind it);
    * ``canal_area_mm2`` — the canal's cross-section at the disc's level: on every slab, the canal's chord along
      the same line, times the slab spacing.
    """
    array = np.asarray(labels.array)
    pixel = (float(labels.spacing[1]), float(labels.spacing[2]))
    canal = array == CANAL_LABEL
    out: dict[str, dict[str, float]] = {}
    for disc, value in DISC_LABEL.items():
        mask = array == value
        if not mask.any():
            continue
        slab, centre, along = disc_frame(mask)
        up = np.array([-along[1], along[0]])
        height = chord_mm(mask[slab], centre, up, pixel, start_mm=-30.0, reach_mm=30.0)
        behind = -along
        # the longest run within 60 mm: a herniation can leave a sliver of canal between itself and the disc
        ap = chord_mm(canal[slab], centre, behind, pixel, reach_mm=60.0, longest=True)
        area = sum(chord_mm(canal[s], centre, behind, pixel, reach_mm=60.0, longest=True)
                   for s in range(array.shape[0]))
        out[disc] = {"height_mm": round(height, 2), "canal_ap_mm": round(ap, 2),
                     "canal_area_mm2": round(area * float(labels.spacing[0]), 1)}
    return out
