"""Intensity-based rigid and affine registration of two volumes (any grids, orientations and voxel sizes) by gradient
descent in torch, coarse to fine.

Example:
    >>> import numpy as np
    >>> from lumbarlab.volume import Volume
    >>> x = np.zeros((24, 24, 24), np.float32); x[8:16, 6:14, 9:17] = 100.0
    >>> fixed = Volume(x, (2.0, 2.0, 2.0))
    >>> moving = Volume(x, (2.0, 2.0, 2.0), origin=(3.0, 0.0, 0.0))       # the same object 3 mm along x
    >>> fit = register_volumes(moving, fixed, levels=(2, 1), iterations=60, lr=0.05)
    >>> bool(abs(fit.translation[0] - 3.0) < 0.5)
    True
"""

from __future__ import annotations

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.register.points import PointTransform, rotation_xyz

__all__ = ["register_volumes", "flatten_intensity", "robust_range", "SIMILARITIES"]


def _smoothed(array, sigma) -> np.ndarray:
    """``array`` blurred by a Gaussian of ``sigma`` voxels (one value, or one per axis); NaN voxels (outside the scan)
    stay NaN and do not bleed into their neighbours (normalised convolution)."""
    from scipy import ndimage

    a = np.asarray(array, np.float32)
    if np.all(np.asarray(sigma) <= 0):
        return a
    valid = np.isfinite(a)
    if valid.all():
        return ndimage.gaussian_filter(a, sigma)
    num = ndimage.gaussian_filter(np.where(valid, a, 0.0).astype(np.float32), sigma)
    den = ndimage.gaussian_filter(valid.astype(np.float32), sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, num / den, np.nan).astype(np.float32)


SIMILARITIES = ("ncc", "ssd", "mi", "mind")


def flatten_intensity(volume, sigma_mm: float = 20.0):
    """An MR volume divided by a heavily blurred copy of itself (Gaussian σ = ``sigma_mm``, NaN kept out of the blur):
    a crude correction of the smooth intensity non-uniformity (coil fall-off, bias field) that mutual information
    cannot bear. Each tissue then has about one intensity everywhere; the result is dimensionless, about 1 on
    average. Use N4 (Tustison et al., *IEEE TMI* 2010; ``SimpleITK.N4BiasFieldCorrection``) for real work.

    Args:
        volume: a :class:`lumbarlab.volume.Volume` (NaN: not scanned, stays NaN).
        sigma_mm: the blur's σ in mm, larger than the structures to keep (vertebrae: 20–30 mm).

    Example:
        >>> from lumbarlab.volume import Volume
        >>> gain = np.linspace(1.0, 3.0, 60, dtype=np.float32)[None, :, None]          # a coil's fall-off along y
        >>> mr = Volume(100.0 * gain * np.ones((8, 60, 8), np.float32), (2.0, 2.0, 2.0))
        >>> flat = flatten_intensity(mr, sigma_mm=6.0)
        >>> round(float(np.ptp(mr.array[4, 20:40, 4])), 1), round(float(np.ptp(flat.array[4, 20:40, 4])), 4)
        (64.4, 0.0)
    """
    from lumbarlab.volume import Volume

    if not isinstance(volume, Volume):
        raise LumbarLabError("flatten_intensity takes a lumbarlab Volume.")
    a = np.asarray(volume.array, np.float32)
    low = _smoothed(a, np.asarray(sigma_mm, float) / np.asarray(volume.spacing, float))
    with np.errstate(invalid="ignore", divide="ignore"):
        flat = np.where(np.abs(low) > 1e-6 * np.nanmax(np.abs(low)), a / low, np.nan).astype(np.float32)
    return Volume(flat, volume.spacing, volume.origin, volume.direction)


def _mask_array(mask, fixed) -> np.ndarray | None:
    """The fixed-grid boolean mask from a boolean/label array or a label Volume (non-zero voxels count)."""
    from lumbarlab.volume import Volume

    if mask is None:
        return None
    arr = np.asarray(mask.array if isinstance(mask, Volume) else mask)
    if arr.shape != tuple(fixed.shape):
        raise LumbarLabError(f"mask has shape {arr.shape} but the fixed volume {tuple(fixed.shape)}: give a mask on "
                             "the fixed grid (resample a label map with order=0 first).")
    arr = arr != 0
    if not arr.any():
        raise LumbarLabError("the mask is empty: no fixed voxel would count; pick a label that is present (e.g. "
                             "labels.array == 22, dilated by a few mm) or leave mask=None for the whole volume.")
    return arr


def robust_range(array) -> tuple[float, float]:
    """The 0.5th and 99.5th percentiles of the finite values: the span that mutual information bins (outliers such
    as a few bright artefact voxels would otherwise squeeze the tissue into a few bins).

    Example:
        >>> lo, hi = robust_range(np.r_[np.arange(1000.0), 1e6])
        >>> round(lo, 1), round(hi, 1)
        (5.0, 995.0)
    """
    a = np.asarray(array, np.float32)
    a = a[np.isfinite(a)]
    lo, hi = (float(v) for v in np.percentile(a, (0.5, 99.5))) if a.size else (0.0, 1.0)
    return lo, (hi if hi > lo else lo + 1.0)


def _mind_grid(factor: int) -> tuple[int, int]:
    """The grid step and neighbour distance (voxels) of the MIND descriptors at a level: half the level's
    subsampling (at least 1), with the neighbours ``factor`` fixed voxels away — coarser grids left too few voxels
    between the edges of the spine for the descriptors to say where they are."""
    sub = max(1, factor // 2)
    return sub, max(1, factor // sub)


def _mind_channels(array, valid, radius: int):
    """MIND descriptors (6, D, H, W) of a subsampled image with NaN filled, and where they are trustworthy: voxels
    whose whole neighbourhood (patch + shift) was scanned."""
    import torch
    from scipy import ndimage

    from lumbarlab.register.similarity import mind

    fill = float(np.nanmean(array)) if valid.any() else 0.0
    desc = mind(torch.tensor(np.where(valid, array, fill), dtype=torch.float32), radius=radius)
    ok = ndimage.binary_erosion(valid, iterations=radius + 2) if not valid.all() else valid
    return desc, ok


def register_volumes(moving, fixed, kind: str = "rigid", levels: tuple[int, ...] | None = None, iterations: int = 80,
                     lr: float = 0.02, initial: PointTransform | None = None, similarity: str = "ncc",
                     mask=None, bins: int = 32, samples: int | None = None) -> PointTransform:
    """Intensity-based rigid or affine registration of two 3D volumes (any grids, orientations and voxel sizes), by
    gradient descent on a similarity measure in torch, coarse to fine: normalised cross-correlation for one
    modality, mutual information or MIND across modalities (MR to CT).

    The result maps **fixed world points to moving world points** (mm): ``moving`` sampled at ``T(x)`` lines up
    with ``fixed`` at ``x``, and a landmark ``p`` of the fixed image sits at ``T(p)`` in the moving one.

    Args:
        moving, fixed: :class:`lumbarlab.volume.Volume` s (CT in HU, or one MR sequence).
        kind: ``"rigid"`` (3 rotations about the fixed volume's centre — or the mask's — + 3 translations) or
            ``"affine"`` (12 parameters, starting from the rigid result).
        levels: the fixed grid subsampled by these factors in turn (each blurred first, σ = factor / 2 voxels).
            Default: (4, 2, 1) for ``"ncc"`` and ``"ssd"``, (2, 1) for ``"mi"`` and ``"mind"`` — at 4× (10 mm on a
            2.5 mm phantom) the spine's MR–CT similarity is too flat to steer: from a 5° / 10 mm start the phantom's
            T1 left for 20–80 mm in 2 of 3 cases, and started within 0.7 mm from (2, 1).
        iterations, lr: Adam steps and step size per level (translations in units of 10 mm, rotations in radians).
        initial: a starting transform (default: identity).
        similarity: what is maximised (see :mod:`lumbarlab.register.similarity`): ``"ncc"`` (normalised
            cross-correlation: one modality, any gain and offset), ``"ssd"`` (mean squared difference: one modality,
            one intensity scale), ``"mi"`` (mutual information, cubic B-spline Parzen windows over ``bins`` bins of
            each volume's 0.5–99.5th percentile range: any modalities) or ``"mind"`` (SSD of MIND descriptors,
            computed once per level on both volumes subsampled to about the same voxel size: any modalities).
        mask: only fixed voxels inside count: a boolean array on the fixed grid or a label Volume on it (non-zero
            voxels), e.g. one vertebra's label dilated by a few mm for a per-vertebra rigid registration. Coarse
            levels keep a voxel when its block touches the mask.
        bins: intensity bins per volume for ``"mi"``.
        samples: at most this many fixed voxels per level, drawn at random once per level (seeded: the result is
            reproducible) from those that count, each moved to a random point within its voxel block so that both
            images are interpolated — on the grid, mutual information has false maxima where the voxels line up
            (Pluim et al., *IEEE TMI* 2000; on the phantom's T1 it stayed 7 mm off). Mattes et al. (2003) sample a
            few percent. Default: all grid voxels for ``"ncc"`` and ``"ssd"``, 32768 for ``"mi"`` and ``"mind"``.

    Voxels that are NaN in either volume are left out of the similarity: mark with NaN what lies outside what was
    scanned (a resampled image's fill). A fill with a real value (−1000 HU) is read as air and biases the result —
    on the phantom by 1.2 mm for a rigid motion of 5° and 10 mm.

    Raises:
        LumbarLabError: not 3D volumes, an unknown ``kind`` or ``similarity``, or a mask that is empty or not on
        the fixed grid.
    """
    import torch
    from scipy import ndimage

    from lumbarlab.register.similarity import mutual_information, ncc, ssd
    from lumbarlab.volume import Volume

    if kind not in ("rigid", "affine"):
        raise LumbarLabError(f"kind must be 'rigid' or 'affine', got {kind!r}.")
    if similarity not in SIMILARITIES:
        raise LumbarLabError(f"similarity must be one of {', '.join(repr(s) for s in SIMILARITIES)}, got "
                             f"{similarity!r}: 'ncc' or 'ssd' for one modality, 'mi' or 'mind' across modalities.")
    for v in (moving, fixed):
        if not isinstance(v, Volume):
            raise LumbarLabError("register_volumes takes two lumbarlab Volumes.")
    region = _mask_array(mask, fixed)
    if levels is None:
        levels = (4, 2, 1) if similarity in ("ncc", "ssd") else (2, 1)
    if kind == "affine":
        initial = register_volumes(moving, fixed, "rigid", levels, iterations, lr, initial, similarity, mask, bins,
                                   samples)
    if region is None:
        centre = fixed.index_to_world((np.asarray(fixed.shape, float) - 1) / 2)
    else:
        centre = fixed.index_to_world(np.argwhere(region).mean(axis=0))
    inv_moving = np.linalg.inv(moving.affine)
    m_shape = np.asarray(moving.shape, float)
    start_a = np.eye(3) if initial is None else np.asarray(initial.matrix, float)
    start_t = np.zeros(3) if initial is None else np.asarray(initial(centre) - centre, float)  # about the centre
    angles = torch.zeros(3, dtype=torch.float64, requires_grad=kind == "rigid")
    shift = torch.tensor(start_t / 10.0, dtype=torch.float64, requires_grad=True)
    linear = torch.tensor(start_a, dtype=torch.float64, requires_grad=kind == "affine")
    base = torch.tensor(start_a, dtype=torch.float64)
    c = torch.tensor(centre, dtype=torch.float64)
    if similarity == "mi":
        range_f, range_m = robust_range(fixed.array), robust_range(moving.array)
    if samples is None and similarity in ("mi", "mind"):
        samples = 32768
    rng = np.random.default_rng(0)

    def matrix():
        return rotation_xyz(angles) @ base if kind == "rigid" else linear

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: on a busy 2-core CPU torch's thread pool made this 10× slower
    try:
        for factor in levels:
            sigma = factor / 2.0 if factor > 1 else 0.0
            f_arr, m_arr = _smoothed(fixed.array, sigma), _smoothed(moving.array, sigma)
            axes = [np.arange(0, n, factor) for n in fixed.shape]
            idx = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
            world = torch.tensor(fixed.index_to_world(idx.astype(float)), dtype=torch.float64)
            target = torch.tensor(f_arr[tuple(idx.T)], dtype=torch.float32)
            to_index = torch.tensor(inv_moving, dtype=torch.float64)
            step = np.ones(3)
            if similarity == "mind":   # descriptors once per level: the fixed on its subsampled grid, the moving on a
                # grid subsampled to about the same voxel size; the moving's descriptor channels are then interpolated
                sub, radius = _mind_grid(factor)
                f_sub = f_arr[::sub, ::sub, ::sub]
                f_desc, f_ok = _mind_channels(f_sub, np.isfinite(f_sub), radius)
                target = f_desc[(slice(None),) + tuple(idx.T // sub)]
                target_ok = torch.tensor(f_ok[tuple(idx.T // sub)])
                step = np.maximum(1, np.round(sub * np.mean(fixed.spacing) / np.asarray(moving.spacing))).astype(int)
                m_sub = m_arr[::step[0], ::step[1], ::step[2]]
                m_desc, m_ok = _mind_channels(m_sub, np.isfinite(m_sub), radius)
                image = m_desc[None]
                valid = torch.tensor(m_ok, dtype=torch.float32)[None, None]
                sub_shape = np.asarray(m_sub.shape, float)
            else:
                valid = torch.tensor(np.isfinite(m_arr), dtype=torch.float32)[None, None]
                # NaN must not enter grid_sample: its gradient would carry NaN into the transform even where unused
                image = torch.tensor(np.nan_to_num(m_arr, nan=0.0), dtype=torch.float32)[None, None]
                target_ok = torch.isfinite(target)
                target = torch.nan_to_num(target)
                sub_shape = m_shape
            if region is not None:
                block = ndimage.maximum_filter(region, size=factor) if factor > 1 else region
                target_ok = target_ok & torch.tensor(block[tuple(idx.T)])
            if samples is not None:   # a random subset of the voxels that count, each moved to a random point of its
                # block: off the grid, both images are interpolated alike, which removes the grid-aligned maxima that
                # interpolation puts into mutual information (Pluim et al., IEEE TMI 2000)
                pool = np.flatnonzero(target_ok.numpy())
                keep = np.sort(rng.choice(pool, min(int(samples), pool.size), replace=False))
                pos = idx[keep] + rng.uniform(-0.5, 0.5, (keep.size, 3)) * factor
                pos = np.clip(pos, 0, np.asarray(fixed.shape) - 1)
                world = torch.tensor(fixed.index_to_world(pos), dtype=torch.float64)
                if similarity == "mind":
                    feats, ok, at = f_desc.numpy(), f_ok, pos / sub
                else:
                    feats, ok, at = np.nan_to_num(f_arr, nan=0.0)[None], np.isfinite(f_arr), pos
                values = [ndimage.map_coordinates(ch, at.T, order=1, mode="nearest") for ch in feats]
                target = torch.tensor(np.stack(values), dtype=torch.float32)
                target = target if similarity == "mind" else target[0]
                ok = ndimage.map_coordinates(ok.astype(np.float32), at.T, order=1, mode="nearest")
                target_ok = torch.tensor(ok > 0.999)
            params = [shift] + ([angles] if kind == "rigid" else [linear])
            opt = torch.optim.Adam(params, lr=lr)
            denom = torch.tensor(np.maximum(sub_shape - 1.0, 1.0), dtype=torch.float64)
            steps = torch.tensor(step, dtype=torch.float64)
            for _ in range(iterations):
                pts = (world - c) @ matrix().T + c + 10.0 * shift
                ijk = (pts @ to_index[:3, :3].T + to_index[:3, 3]) / steps
                norm = (2.0 * ijk / denom - 1.0).float()
                inside = (norm.abs() <= 1.0).all(dim=1)
                grid = norm.flip(-1)[None, None, None]  # grid_sample wants (x, y, z) = (k, j, i)
                sampled = torch.nn.functional.grid_sample(image, grid, align_corners=True)[0, :, 0, 0]
                with torch.no_grad():  # NaN in either volume: outside what was scanned
                    scanned = torch.nn.functional.grid_sample(valid, grid, align_corners=True)[0, 0, 0, 0] > 0.999
                inside &= scanned & target_ok
                if int(inside.sum()) < 100:
                    raise LumbarLabError("the volumes (or the mask) barely overlap; start closer (initial=…), use a "
                                         "larger mask or finer levels.")
                if similarity == "mind":
                    loss = ssd(sampled[:, inside], target[:, inside])
                else:
                    a, b = sampled[0][inside], target[inside]
                    if similarity == "ncc":
                        loss = 1.0 - ncc(a, b)
                    elif similarity == "ssd":
                        loss = ssd(a, b)
                    else:
                        loss = -mutual_information(a, b, bins, value_range_a=range_m, value_range_b=range_f)
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        mat = matrix().numpy()
        translation = centre + 10.0 * shift.numpy() - mat @ centre
    return PointTransform(mat, translation, float("nan"))
