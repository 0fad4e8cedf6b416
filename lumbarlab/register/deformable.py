"""Deformable registration as a displacement field, the classical baseline (a B-spline transform optimised by
SimpleITK) and a learned one (a MONAI LocalNet that predicts the field in one forward pass).

A **displacement field** here is an array ``u`` of shape ``(3, *fixed.shape)`` in mm (world RAS components) on the
fixed image's grid: the fixed voxel at world point ``x`` corresponds to the moving world point ``φ(x) = x + u(x)`` — the
same direction as every transform of :mod:`lumbarlab.register` (fixed → moving). The moving image warped into the
fixed frame is the moving image sampled at ``φ(x)``, and a fixed landmark ``p`` is predicted at ``φ(p)`` in the
moving image; TRE compares that prediction with the landmark's true position there
(:func:`lumbarlab.metrics.target_registration_error`). :func:`lumbarlab.metrics.jacobian_determinant` of ``u``
counts where the field folds space.

The B-spline baseline is the free-form deformation of Rueckert et al. (*IEEE TMI* 1999): a grid of control points
every ``grid_mm`` whose cubic B-spline interpolation is the displacement, its coefficients found by L-BFGS-B on a
similarity (SimpleITK's ``ImageRegistrationMethod``). The learned model is MONAI's LocalNet (Hu et al., *Medical Image
Analysis* 2018) through :class:`lumbarlab.models.RegistrationNet`, whose output is a dense displacement in voxels of
its input grid.

Example:
    >>> import numpy as np
    >>> from lumbarlab.volume import Volume
    >>> fixed = Volume(np.zeros((8, 8, 8), np.float32), (2.0, 2.0, 2.0))
    >>> u = displacement_from_transform(PointTransform(np.eye(3), np.array([3.0, 0, 0]), 0.0), fixed)
    >>> u.shape, float(u[0].mean()), displace_points([[4.0, 4.0, 4.0]], u, fixed).tolist()
    ((3, 8, 8, 8), 3.0, [[7.0, 4.0, 4.0]])
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.register.points import PointTransform
from lumbarlab.volume import Volume

__all__ = ["displacement_from_transform", "displace_points", "warp_volume", "warped_label_dice", "compose",
           "bspline_register", "field_from_ddf", "learned_register"]


def _world_grid(fixed: Volume) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in fixed.shape], indexing="ij"), -1)
    return fixed.index_to_world(idx)


def _check_field(u, fixed: Volume) -> np.ndarray:
    u = np.asarray(u)
    if u.shape != (3, *fixed.shape):
        raise LumbarLabError(f"a displacement field on this grid has shape (3, {', '.join(map(str, fixed.shape))}), "
                             f"got {u.shape}.")
    return u


def displacement_from_transform(transform: PointTransform, fixed: Volume) -> np.ndarray:
    """The displacement field ``T(x) − x`` (mm) of a rigid or affine transform on the fixed grid."""
    world = _world_grid(fixed)
    return np.moveaxis(transform(world) - world, -1, 0).astype(np.float32)


def displace_points(points, u, fixed: Volume) -> np.ndarray:
    """``φ(p) = p + u(p)``: where fixed world points (N, 3 mm) lie in the moving image, the field interpolated
    trilinearly between voxel centres (clamped at the border)."""
    from scipy import ndimage

    u = _check_field(u, fixed)
    p = np.atleast_2d(np.asarray(points, float))
    ijk = fixed.world_to_index(p).T
    ijk = np.clip(ijk, 0, np.asarray(fixed.shape)[:, None] - 1)
    du = np.stack([ndimage.map_coordinates(np.asarray(c, np.float64), ijk, order=1, mode="nearest") for c in u], -1)
    return p + du


def warp_volume(moving: Volume, u, fixed: Volume, order: int = 1, cval: float = np.nan) -> Volume:
    """The moving image sampled at ``φ(x)`` for every voxel ``x`` of the fixed grid (order 0 for label maps);
    ``cval`` where ``φ(x)`` leaves the moving image (NaN: not scanned; use 0 for labels). ``u`` is a displacement
    field or a :class:`PointTransform` (a rigid/affine result: the moving image brought into line for overlays,
    chequerboards and joint histograms).

    Example:
        >>> v = Volume(np.arange(27.0).reshape(3, 3, 3), (1.0, 1.0, 1.0))
        >>> shift = PointTransform(np.eye(3), np.array([1.0, 0.0, 0.0]), 0.0)    # fixed x ↦ moving x + 1 mm
        >>> warp_volume(v, shift, v).array[:, 0, 0].tolist()
        [9.0, 18.0, nan]
    """
    from scipy import ndimage

    if not (isinstance(moving, Volume) and isinstance(fixed, Volume)):
        raise LumbarLabError("warp_volume takes two lumbarlab Volumes.")
    if isinstance(u, PointTransform):
        u = displacement_from_transform(u, fixed)
    u = _check_field(u, fixed)
    if order not in (0, 1, 3):
        raise LumbarLabError(f"order must be 0, 1 or 3, got {order}.")
    world = _world_grid(fixed) + np.moveaxis(u, 0, -1)
    ijk = np.moveaxis(moving.world_to_index(world), -1, 0)
    src = np.asarray(moving.array)
    if order > 0:
        src = src.astype(np.float32)
    out = ndimage.map_coordinates(src, ijk, order=order, mode="constant", cval=cval, prefilter=order > 1)
    if order == 0:
        out = out.astype(np.asarray(moving.array).dtype)
    return Volume(out, fixed.spacing, fixed.origin, fixed.direction)


def warped_label_dice(moving_labels: Volume, u, fixed_labels: Volume, labels: Sequence[int] | None = None) -> float:
    """Mean Dice (0–1) between the fixed scan's label map and the moving scan's label map warped onto it by ``u``
    (nearest neighbour, 0 outside the moving scan) — the label-overlap score of a registration (Table 2's Dice used
    as in Learn2Reg, Hering et al., IEEE TMI 2023). A zero field gives the overlap before registration.

    Args:
        moving_labels: the moving scan's labels.
        u: displacement field (3, X, Y, Z) in mm on the fixed grid, or a :class:`PointTransform`.
        fixed_labels: the fixed scan's labels; their grid is the fixed grid.
        labels: label values to average over; default L1–L5 (the lab's VerSe values 20–24).

    Example:
        >>> a = np.zeros((6, 4, 4), np.int16); a[1:3] = 20
        >>> lab = Volume(a, (1.0, 1.0, 1.0))
        >>> warped_label_dice(lab, np.zeros((3, 6, 4, 4)), lab, [20])
        1.0
        >>> shift = PointTransform(np.eye(3), np.array([1.0, 0.0, 0.0]), 0.0)  # fixed x ↦ moving x + 1 mm
        >>> warped_label_dice(lab, shift, lab, [20])  # the warped band moves one slice: half of it overlaps
        0.5
    """
    from lumbarlab.labels import LUMBAR, VERSE_LABEL
    from lumbarlab.metrics import mean_dice

    values = [VERSE_LABEL[name] for name in LUMBAR] if labels is None else list(labels)
    warped = warp_volume(moving_labels, u, fixed_labels, order=0, cval=0)
    return mean_dice(np.asarray(fixed_labels.array), np.asarray(warped.array), values)


def compose(transform: PointTransform, u, fixed: Volume) -> np.ndarray:
    """The field of ``x ↦ T(x + u(x))``: a deformation ``u`` found on images already brought into line by ``T``
    (e.g. an affine), expressed against the original moving image."""
    u = _check_field(u, fixed)
    world = _world_grid(fixed)
    return np.moveaxis(transform(world + np.moveaxis(u, 0, -1)) - world, -1, 0).astype(np.float32)


def _sitk_image(volume: Volume, fill: float):
    """The volume (NaN → ``fill``) and the mask of its scanned voxels as SimpleITK images."""
    from lumbarlab.io import sitk_image

    arr = np.asarray(volume.array, np.float32)
    return sitk_image(volume, np.nan_to_num(arr, nan=fill)), sitk_image(volume, np.isfinite(arr).astype(np.uint8))


def bspline_register(moving: Volume, fixed: Volume, grid_mm: float = 40.0, metric: str = "ncc",
                     initial: PointTransform | None = None, iterations: int = 60, levels: tuple[int, ...] = (2, 1),
                     mask=None, sample: float | None = None, seed: int = 0) -> tuple[np.ndarray, float]:
    """The classical baseline: a cubic B-spline free-form deformation (Rueckert et al. 1999) optimised by SimpleITK
    (L-BFGS-B, coarse to fine), after an optional rigid/affine ``initial`` transform.

    Args:
        moving, fixed: volumes of one modality (``metric="ncc"``) or two (``"mi"``: Mattes mutual information, 32
            bins); NaN voxels (not scanned) are left out of the metric.
        grid_mm: spacing of the control points in mm — smaller bends more locally (and overfits noise sooner).
        initial: the fixed → moving transform the deformation starts from (e.g. :func:`register_volumes`' affine).
        iterations: L-BFGS-B iterations per level; levels: shrink factors of the image pyramid.
        mask: a boolean array (or label Volume, non-zero = in) on the fixed grid: only these voxels count — e.g. the
            spine's labels dilated, so that soft tissue that moves on its own does not pull the bones.
        sample, seed: the share of voxels the metric samples at random (e.g. 0.2, faster on large images) and the
            sampler's seed; None (default) measures every voxel, so that a run repeats exactly.

    Returns:
        (displacement field of the whole transform, initial included, in mm on the fixed grid; seconds it took).

    Raises:
        LumbarLabError: an unknown metric, or a control-point spacing of less than two voxels.
    """
    import SimpleITK as sitk

    from lumbarlab.io import RAS_TO_LPS

    if metric not in ("ncc", "mi"):
        raise LumbarLabError(f"metric must be 'ncc' or 'mi', got {metric!r}.")
    if grid_mm < 2 * max(fixed.spacing):
        raise LumbarLabError(f"grid_mm = {grid_mm} mm is under two voxels ({2 * max(fixed.spacing)} mm): the "
                             "B-spline would chase noise; use a coarser control grid.")
    started = time.perf_counter()
    f_img, f_mask = _sitk_image(fixed, float(np.nanmin(fixed.array)))
    if mask is not None:
        roi = np.asarray(mask.array if isinstance(mask, Volume) else mask) != 0
        if roi.shape != fixed.shape or not roi.any():
            raise LumbarLabError(f"the mask must be a non-empty array of the fixed grid's shape {fixed.shape}, got "
                                 f"{roi.shape} with {int(roi.sum())} voxels in it.")
        roi &= np.isfinite(np.asarray(fixed.array))
        from lumbarlab.io import sitk_image

        f_mask = sitk_image(fixed, roi.astype(np.uint8))
    m_img, m_mask = _sitk_image(moving, float(np.nanmin(moving.array)))
    extent = (np.asarray(fixed.shape) - 1) * np.asarray(fixed.spacing)
    mesh = [max(int(round(e / grid_mm)), 1) for e in extent]
    bspline = sitk.BSplineTransformInitializer(f_img, mesh, 3)
    reg = sitk.ImageRegistrationMethod()
    if metric == "ncc":
        reg.SetMetricAsCorrelation()
    else:
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    if sample is None:  # every voxel (in the mask): the same result on every run
        reg.SetMetricSamplingStrategy(reg.NONE)
    else:
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(float(sample), seed)
    reg.SetMetricFixedMask(f_mask)
    reg.SetMetricMovingMask(m_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=iterations,
                             maximumNumberOfCorrections=5, maximumNumberOfFunctionEvaluations=4 * iterations)
    reg.SetShrinkFactorsPerLevel(list(levels))
    reg.SetSmoothingSigmasPerLevel([f / 2.0 if f > 1 else 0.0 for f in levels])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(bspline, inPlace=True)
    start = sitk.AffineTransform(3)
    if initial is not None:
        start.SetMatrix(tuple((RAS_TO_LPS @ initial.matrix @ RAS_TO_LPS).ravel()))
        start.SetTranslation(tuple(RAS_TO_LPS @ initial.translation))
    reg.SetMovingInitialTransform(start)
    reg.Execute(f_img, m_img)
    whole = sitk.CompositeTransform([start, bspline])  # the last added acts first: x ↦ start(bspline(x))
    field = sitk.TransformToDisplacementField(whole, sitk.sitkVectorFloat64, f_img.GetSize(), f_img.GetOrigin(),
                                              f_img.GetSpacing(), f_img.GetDirection())
    u = np.transpose(sitk.GetArrayFromImage(field), (3, 2, 1, 0))      # (LPS component, i, j, k)
    u = np.einsum("ab,b...->a...", RAS_TO_LPS, u).astype(np.float32)
    return u, time.perf_counter() - started


def field_from_ddf(ddf, fixed: Volume) -> np.ndarray:
    """A network's dense displacement (MONAI ``Warp``'s convention: voxels of the fixed grid along its array axes,
    shape (3, *fixed.shape) or (1, 3, …)) → the displacement field in mm (world components)."""
    d = np.asarray(ddf.detach().cpu().numpy() if hasattr(ddf, "detach") else ddf, np.float64)
    d = d.reshape(3, *fixed.shape)
    steps = fixed.direction * np.asarray(fixed.spacing)[None, :]          # world mm per voxel step, by axis
    return np.einsum("ab,b...->a...", steps, d).astype(np.float32)


def learned_register(model, moving: Volume, fixed: Volume, initial: PointTransform | None = None,
                     window=(-200.0, 1500.0)) -> tuple[np.ndarray, float]:
    """One forward pass of a trained :class:`lumbarlab.models.RegistrationNet` (e.g. the zoo's ``ct-register``):
    the moving CT is first brought onto the fixed grid (through ``initial``, if given), both are windowed to [0, 1]
    (``window`` in HU, the model's training scale), and the predicted field is composed with ``initial``.

    Returns:
        (displacement field in mm on the fixed grid, seconds).

    Raises:
        LumbarLabError: a fixed grid the network cannot take (each side must be a multiple of 8 voxels).
    """
    import torch

    from lumbarlab.device import get_device

    if any(n % 8 for n in fixed.shape):
        raise LumbarLabError(f"the fixed grid {fixed.shape} must be a multiple of 8 voxels on each side for the "
                             "network; resample or crop it first.")
    started = time.perf_counter()
    start = initial or PointTransform(np.eye(3), np.zeros(3), 0.0)
    on_fixed = warp_volume(moving, displacement_from_transform(start, fixed), fixed)
    from lumbarlab.datasets.registration_pairs import ct_window

    def scaled(a):  # the training pairs' scale (registration_pairs.pair_arrays)
        return np.nan_to_num(ct_window(a, *window), nan=0.0)

    device = get_device()
    model = model.to(device).eval()
    with torch.no_grad():
        m = torch.from_numpy(scaled(on_fixed.array))[None, None].to(device)
        f = torch.from_numpy(scaled(fixed.array))[None, None].to(device)
        _, ddf = model(m, f)
    u = compose(start, field_from_ddf(ddf, fixed), fixed)
    return u, time.perf_counter() - started
