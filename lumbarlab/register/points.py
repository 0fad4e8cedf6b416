"""Landmark registration: the transform that maps landmarks of a moving image onto the same landmarks of a fixed
image, in closed form — rigid (rotation + translation, optionally a uniform scale) and affine — and applying it.

The rigid fit is Umeyama's least-squares solution (Umeyama, *IEEE TPAMI* 1991; Kabsch's without scale): centre both
point sets, take the SVD of their cross-covariance, and correct its sign so the result is a rotation, never a
reflection. Each vertebra is close to rigid while the spine bends, so a per-vertebra rigid fit of its corners or
centroids is the natural last step after a deformable registration (issue #18's lesson 1).

Example:
    >>> import numpy as np
    >>> moving = np.array([[0.0, 0, 0], [10, 0, 0], [0, 20, 0], [0, 0, 30]])
    >>> turn = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])          # 90° about z
    >>> fixed = moving @ turn.T + [5.0, -2.0, 1.0]
    >>> fit = rigid_from_points(moving, fixed)
    >>> np.allclose(fit.matrix, turn), np.round(fit.translation, 6).tolist(), round(float(fit.rms_mm), 9)
    (True, [5.0, -2.0, 1.0], 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = ["PointTransform", "rigid_from_points", "affine_from_points", "rotation_xyz"]


@dataclass(frozen=True)
class PointTransform:
    """``x ↦ matrix @ x + translation`` (points in mm), with the root-mean-square residual of the fit (mm)."""

    matrix: np.ndarray
    translation: np.ndarray
    rms_mm: float

    def __call__(self, points) -> np.ndarray:
        """Map (N, D) points (or one point) in mm."""
        p = np.asarray(points, float)
        return p @ self.matrix.T + self.translation

    def inverse(self) -> PointTransform:
        inv = np.linalg.inv(self.matrix)
        return PointTransform(inv, -inv @ self.translation, self.rms_mm)

    @property
    def rotation_deg(self) -> float:
        """The angle of the rotation part in degrees (rigid fits; for an affine, of its closest rotation)."""
        u, _, vt = np.linalg.svd(self.matrix)
        r = u @ vt
        if r.shape == (2, 2):
            return float(np.degrees(abs(np.arctan2(r[1, 0], r[0, 0]))))
        return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


def _pairs(moving, fixed, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    m, f = np.asarray(moving, float), np.asarray(fixed, float)
    if m.ndim != 2 or m.shape != f.shape or m.shape[1] not in (2, 3):
        raise LumbarLabError(f"moving and fixed must be matching (N, 2) or (N, 3) point sets, got {m.shape} and {f.shape}.")
    if len(m) < minimum:
        raise LumbarLabError(f"this fit needs at least {minimum} point pairs, got {len(m)}.")
    if not (np.isfinite(m).all() and np.isfinite(f).all()):
        raise LumbarLabError("the points hold NaN or infinite values.")
    return m, f


def rigid_from_points(moving, fixed, scale: bool = False) -> PointTransform:
    """The rotation and translation (and, with ``scale``, one uniform scale) that map ``moving`` onto ``fixed``
    (N ≥ 3 point pairs in mm, not all on one line) with the least sum of squared distances (Umeyama 1991).

    Raises:
        LumbarLabError: mismatched or too few points, or points on a line (the rotation about it is undetermined).
    """
    m, f = _pairs(moving, fixed, 3 if np.asarray(moving).shape[-1] == 3 else 2)
    mc, fc = m.mean(axis=0), f.mean(axis=0)
    a, b = m - mc, f - fc
    cov = b.T @ a / len(m)
    u, s, vt = np.linalg.svd(cov)
    dims = m.shape[1]
    if dims == 3 and s[1] < 1e-9 * max(s[0], 1e-12):
        raise LumbarLabError("the points lie on one line: the rotation about it is undetermined; use 3 or more "
                             "landmarks that span a plane.")
    d = np.ones(dims)
    d[-1] = np.sign(np.linalg.det(u @ vt)) or 1.0  # a rotation, never a reflection
    rot = u @ np.diag(d) @ vt
    k = float((s * d).sum() / (a**2).sum(axis=1).mean()) if scale else 1.0
    matrix = k * rot
    translation = fc - matrix @ mc
    rms = float(np.sqrt(np.mean(np.sum((m @ matrix.T + translation - f) ** 2, axis=1))))
    return PointTransform(matrix, translation, rms)


def affine_from_points(moving, fixed) -> PointTransform:
    """The affine map (a full matrix and a translation) that maps ``moving`` onto ``fixed`` with the least sum of
    squared distances (N ≥ D + 1 point pairs in mm, not all in one plane for 3D).

    Example:
        >>> m = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
        >>> a = np.array([[1.1, 0.2, 0], [0, 0.9, 0], [0.1, 0, 1.2]])
        >>> fit = affine_from_points(m, m @ a.T + 3.0)
        >>> np.allclose(fit.matrix, a), np.allclose(fit.translation, 3.0)
        (True, True)
    """
    m, f = _pairs(moving, fixed, np.asarray(moving).shape[-1] + 1)
    design = np.hstack([m, np.ones((len(m), 1))])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise LumbarLabError("the points do not span the space (all on one plane or line): the affine map is "
                             "undetermined.")
    solution, *_ = np.linalg.lstsq(design, f, rcond=None)
    matrix, translation = solution[:-1].T, solution[-1]
    rms = float(np.sqrt(np.mean(np.sum((m @ matrix.T + translation - f) ** 2, axis=1))))
    return PointTransform(matrix, translation, rms)


def rotation_xyz(angles_rad):
    """The 3 × 3 rotation ``R = Rz Ry Rx`` from three angles in radians (about x first, then y, then z), as a torch
    tensor of the angles' dtype and device that keeps their autograd graph — the one angle convention of the lab's
    registration optimisers (volume-to-volume and 2D/3D).

    Args:
        angles_rad: (3,) torch tensor, radians.

    Example:
        >>> import math, torch
        >>> r = rotation_xyz(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
        >>> (r @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)).round(decimals=6).tolist()
        [0.0, 1.0, 0.0]
    """
    import torch

    ax, ay, az = angles_rad[0], angles_rad[1], angles_rad[2]
    one, zero = torch.ones_like(ax), torch.zeros_like(ax)
    rx = torch.stack([torch.stack([one, zero, zero]), torch.stack([zero, torch.cos(ax), -torch.sin(ax)]),
                      torch.stack([zero, torch.sin(ax), torch.cos(ax)])])
    ry = torch.stack([torch.stack([torch.cos(ay), zero, torch.sin(ay)]), torch.stack([zero, one, zero]),
                      torch.stack([-torch.sin(ay), zero, torch.cos(ay)])])
    rz = torch.stack([torch.stack([torch.cos(az), -torch.sin(az), zero]),
                      torch.stack([torch.sin(az), torch.cos(az), zero]), torch.stack([zero, zero, one])])
    return rz @ ry @ rx
