"""How well a registration worked: target registration error of landmarks, and how a deformation field bends
space — its Jacobian determinant and the share of voxels it folds.

* **TRE** (Fitzpatrick & West, *IEEE TMI* 2001): the distance in mm between each landmark mapped by the registration
  and the same landmark in the fixed image; reported as mean, median and maximum over the landmarks.
* **Jacobian determinant** of the transform :math:`\\phi(x) = x + u(x)`: :math:`\\det(I + \\nabla u)` per voxel, with
  the derivatives of the displacement ``u`` (in mm) by central differences (one-sided at the border), divided by the
  voxel size. 1 keeps volume, above 1 expands, below 1 shrinks, and ≤ 0 folds space onto itself — a transform no
  anatomy can make; the learnt-registration literature reports the share of such voxels (e.g. the Learn2Reg
  challenge's "percentage of negative Jacobians").

Example:
    >>> import numpy as np
    >>> target_registration_error([[0, 0, 0], [10, 0, 0]], [[0, 3, 4], [10, 0, 0]]).tolist()
    [5.0, 0.0]
    >>> u = np.zeros((3, 8, 8, 8)); u[0] = 0.1 * np.arange(8)[:, None, None]   # stretch x by 10 % (1 mm voxels)
    >>> round(float(jacobian_determinant(u).mean()), 3), folded_fraction(u)
    (1.1, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array, check_finite

__all__ = ["target_registration_error", "jacobian_determinant", "folded_fraction"]


def target_registration_error(moved, fixed) -> np.ndarray:
    """Per landmark, the distance (mm) between ``moved`` (the moving image's landmarks mapped into the fixed
    image) and ``fixed`` (the same landmarks found in the fixed image): (N, D) arrays of points in mm."""
    m = check_finite(as_array(moved, "moved", dtype=float), "moved")
    f = check_finite(as_array(fixed, "fixed", dtype=float), "fixed")
    if m.ndim != 2 or m.shape != f.shape:
        raise LumbarLabError(f"moved and fixed must be (N, D) point sets of one shape, got {m.shape} and {f.shape}.")
    return np.linalg.norm(m - f, axis=1)


def jacobian_determinant(ddf, spacing: Sequence[float] | None = None) -> np.ndarray:
    """The Jacobian determinant of ``x ↦ x + u(x)`` at every voxel: ``ddf`` is the displacement ``u`` in mm,
    (D, *spatial) with D = 2 or 3 components in the order of the spatial axes; ``spacing`` the voxel size in mm
    (default 1). Returns an array of the spatial shape."""
    u = check_finite(as_array(ddf, "ddf", dtype=float), "ddf")
    dims = u.ndim - 1
    if dims not in (2, 3) or u.shape[0] != dims:
        raise LumbarLabError(f"ddf must be (D, *spatial) with D = 2 or 3 spatial dimensions, got shape {u.shape}.")
    if min(u.shape[1:]) < 2:
        raise LumbarLabError(f"ddf needs at least 2 voxels along every axis, got {u.shape[1:]}.")
    sp = np.ones(dims) if spacing is None else np.asarray(spacing, float)
    if sp.shape != (dims,) or np.any(sp <= 0):
        raise LumbarLabError(f"spacing must be {dims} positive voxel sizes in mm, got {spacing}.")
    # J[i][j] = δ_ij + ∂u_i/∂x_j
    grads = [np.gradient(u[i], *sp) for i in range(dims)]
    jac = np.empty((dims, dims, *u.shape[1:]))
    for i in range(dims):
        for j in range(dims):
            jac[i, j] = grads[i][j] + (1.0 if i == j else 0.0)
    return np.linalg.det(np.moveaxis(jac, (0, 1), (-2, -1)))


def folded_fraction(ddf, spacing: Sequence[float] | None = None, mask=None) -> float:
    """The share of voxels (inside ``mask`` when given) where :func:`jacobian_determinant` is ≤ 0: where the
    deformation folds space.

    Example:
        >>> u = np.zeros((2, 10, 10)); u[0, 5:] = -3.0     # half the image jumps 3 mm back past its neighbours
        >>> folded_fraction(u) > 0
        True
    """
    det = jacobian_determinant(ddf, spacing)
    if mask is not None:
        m = np.asarray(mask, bool)
        if m.shape != det.shape:
            raise LumbarLabError(f"mask {m.shape} and field {det.shape} differ in shape.")
        det = det[m]
    if det.size == 0:
        raise LumbarLabError("the mask selects no voxel.")
    return float(np.mean(det <= 0.0))
