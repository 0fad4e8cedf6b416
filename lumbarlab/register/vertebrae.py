"""Per-vertebra rigid registration: each vertebra is bone and keeps its shape between two scans of one patient, while
the spine bends at the discs — so one rigid (or affine) transform cannot fit the whole lumbar spine, a deformable
field can bend where bone cannot, and a rigid transform **per vertebra**, each found on that vertebra's
neighbourhood only, is the model that matches the anatomy (the piecewise-rigid idea of spine registration, e.g.
Reaungamornrat et al., *IEEE TMI* 2016, and the vertebra-wise rigid steps of CT–MR fusion tools).

Example:
    >>> names = ["L4 centre", "L5 centre"]
    >>> up = PointTransform(np.eye(3), np.array([0.0, 0.0, 2.0]), 0.0)
    >>> map_points_by_vertebra([[0.0, 0, 10], [0.0, 0, -20]], names, {"L4": up}).tolist()   # L5 has none: kept
    [[0.0, 0.0, 12.0], [0.0, 0.0, -20.0]]
"""

from __future__ import annotations

import time

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import LUMBAR, VERSE_LABEL
from lumbarlab.register.points import PointTransform
from lumbarlab.volume import Volume

__all__ = ["vertebra_masks", "per_vertebra_rigid", "map_points_by_vertebra"]


def vertebra_masks(labels: Volume, levels=LUMBAR, margin_mm: float = 6.0) -> dict[str, np.ndarray]:
    """Each level's label (VerSe values) grown by ``margin_mm`` — the bone and its edge, where the similarity is
    measured; levels absent from the label map are left out.

    Example:
        >>> lab = np.zeros((10, 10, 10), np.uint8); lab[4:6, 4:6, 4:6] = 22
        >>> m = vertebra_masks(Volume(lab, (1.0, 1.0, 1.0)), margin_mm=1.0)
        >>> list(m), int(m["L3"].sum())
        (['L3'], 32)
    """
    from scipy import ndimage

    arr = np.asarray(labels.array)
    out = {}
    for level in levels:
        inside = arr == VERSE_LABEL[level]
        if not inside.any():
            continue
        radius = np.maximum(np.round(margin_mm / np.asarray(labels.spacing)).astype(int), 0)
        if radius.any():
            ball = np.ones(tuple(2 * r + 1 for r in radius), bool)
            grid = np.meshgrid(*[np.arange(-r, r + 1) / max(r, 1) for r in radius], indexing="ij")
            ball &= sum(g**2 for g in grid) <= 1.0 + 1e-9
            inside = ndimage.binary_dilation(inside, structure=ball)
        out[level] = inside
    return out


def per_vertebra_rigid(moving: Volume, fixed: Volume, fixed_labels: Volume, initial: PointTransform | None = None,
                       levels=LUMBAR, margin_mm: float = 6.0, pyramid: tuple[int, ...] = (2, 1),
                       iterations: int = 60, similarity: str = "ncc") -> tuple[dict[str, PointTransform], float]:
    """One rigid transform per vertebra (fixed → moving, mm), each by :func:`lumbarlab.register.register_volumes`
    on the vertebra's mask (:func:`vertebra_masks` of the **fixed** labels), starting from ``initial`` (a whole-spine
    rigid or affine result: each vertebra only refines it).

    Args:
        moving, fixed: the two scans; fixed_labels: the fixed scan's label map (VerSe values, fixed grid) — from
            the phantom, an annotation or a segmentation model.
        initial: the starting transform (default identity); levels: which vertebrae.
        margin_mm, pyramid, iterations, similarity: see :func:`vertebra_masks` and ``register_volumes``.

    Returns:
        ({level: transform}, seconds for all of them).

    Raises:
        LumbarLabError: labels not on the fixed grid, or none of ``levels`` present.
    """
    from lumbarlab.register.volumes import register_volumes

    if fixed_labels.shape != fixed.shape:
        raise LumbarLabError(f"the fixed labels {fixed_labels.shape} must lie on the fixed grid {fixed.shape}; "
                             "resample them with order=0 first.")
    masks = vertebra_masks(fixed_labels, levels, margin_mm)
    if not masks:
        raise LumbarLabError(f"none of {', '.join(levels)} is in the fixed labels; check their values (VerSe: L1 = 20 "
                             "… L5 = 24) with lumbarlab.labels.to_verse.")
    started = time.perf_counter()
    found = {level: register_volumes(moving, fixed, "rigid", levels=pyramid, iterations=iterations, initial=initial,
                                     similarity=similarity, mask=mask)
             for level, mask in masks.items()}
    return found, time.perf_counter() - started


def map_points_by_vertebra(points, names, transforms: dict[str, PointTransform],
                           fallback: PointTransform | None = None) -> np.ndarray:
    """Map each named point (``"L3 …"``: the level is the name's first word) by its vertebra's transform; points of
    a level without one go through ``fallback`` (default: unchanged)."""
    p = np.atleast_2d(np.asarray(points, float))
    if len(names) != len(p):
        raise LumbarLabError(f"{len(p)} points but {len(names)} names; name every point by its level (e.g. 'L3 centre').")
    out = p.copy()
    for i, name in enumerate(names):
        t = transforms.get(str(name).split()[0], fallback)
        if t is not None:
            out[i] = t(p[i])
    return out
