"""CT bone density: the trabecular HU of a vertebral body, for opportunistic osteoporosis screening."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.measure.vertebra3d import (
    VertebraGeometry,
    axis_hint,
    body_mask,
    level_value,
    vertebra_geometry,
)
from lumbarlab.volume import Volume

__all__ = ["trabecular_hu", "trabecular_core"]


def trabecular_core(labels: Volume, level: str = "L1", erode_mm: float = 4.0,
                    geometry: VertebraGeometry | None = None) -> np.ndarray:
    """The trabecular region of interest of :func:`trabecular_hu` as a boolean mask on the grid of ``labels``:
    the vertebral body eroded by ``erode_mm`` and kept to the middle half of its height.

    Example:
        >>> from lumbarlab.phantom import make_case
        >>> case = make_case(3, modalities=())
        >>> core = trabecular_core(case.labels, "L1")
        >>> bool(core.any()), bool((case.labels.array[core] == 20).all())  # inside L1 only
        (True, True)
    """
    value = level_value(labels, level)
    geo = geometry or vertebra_geometry(labels, value, level, axis_hint(labels, value))
    body = body_mask(labels, value, geo)
    box = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in np.nonzero(body))
    radii = [max(erode_mm / s, 1.0) for s in labels.spacing]
    half = [int(np.ceil(r)) for r in radii]
    grid = np.meshgrid(*[np.arange(-h, h + 1) / r for h, r in zip(half, radii, strict=True)], indexing="ij")
    structure = sum(g**2 for g in grid) <= 1.0  # an ellipsoid of erode_mm in mm, whatever the voxel size
    # erode_mm = 0: the whole body, cortex included (what an ROI drawn to the edge would hold)
    core = ndimage.binary_erosion(body[box], structure) if erode_mm > 0 else body[box].copy()
    # the middle half of the height, measured along the vertebra's own axis
    idx = np.argwhere(core) + np.array([b.start for b in box])
    w = geo.frame.to_local(labels.index_to_world(idx))[:, 2]
    half_height = 0.25 * geo.heights.get("middle", 0.0) if geo.heights else 0.0
    if half_height > 0:
        keep = np.abs(w) <= half_height
        core[tuple((idx[~keep] - np.array([b.start for b in box])).T)] = False
    if core.sum() < 10:
        raise LumbarLabError(f"{level}: nothing is left after a {erode_mm} mm erosion; use a smaller erode_mm.")
    out = np.zeros(labels.shape, bool)
    out[box] = core
    return out


def trabecular_hu(ct: Volume, labels: Volume, level: str = "L1", erode_mm: float = 4.0,
                  geometry: VertebraGeometry | None = None) -> float:
    """Median HU of a vertebral body's trabecular core: the body (the vertebra's voxels anterior to its
    posterior wall, so pedicles and processes are left out even in whole-vertebra masks) eroded by
    ``erode_mm`` in millimetres along every axis, which removes the cortex at any voxel spacing, and kept to
    the middle half of the body's height, away from both endplates — whose dense bone thick slices smear
    millimetres into the body. This is the 3D counterpart of the axial ROI of Pickhardt et al. (Ann Intern
    Med 2013), placed at mid-body in the trabecular bone.

    Args:
        ct: CT in HU on the same grid as ``labels``.
        labels: label map in lumbarlab's (VerSe) values, any orientation.
        level: the vertebra, e.g. "L1".
        erode_mm: erosion depth (mm).
        geometry: the vertebra's :func:`~lumbarlab.measure.vertebra3d.vertebra_geometry`, if already found.

    Example:
        >>> from lumbarlab.phantom import make_case
        >>> case = make_case(3, modalities=("ct",), bmd=120)
        >>> abs(trabecular_hu(case.ct, case.labels, "L1") - 120) < 10
        True
    """
    if ct.shape != labels.shape:
        raise LumbarLabError(f"CT {ct.shape} and labels {labels.shape} are not on one grid.")
    core = trabecular_core(labels, level, erode_mm, geometry)
    return float(np.median(np.asarray(ct.array)[core]))
