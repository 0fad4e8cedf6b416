"""A rendered case as a scanner would store it: another voxel size, a tilted (oblique) grid, another axis
order — the geometry real files come in, with the phantom's exact truth still attached.

The phantom renders on an axis-aligned RAS grid. Real CT and MRI arrive as 0.7 × 0.7 × 2.5 mm axial
stacks, gantry-tilted or oblique series, sagittal stacks stored PIR (VerSe), LPS (DICOM, ITK). :func:`acquire`
resamples a rendered volume onto such a grid: labels by nearest neighbour (each output voxel takes the
label at its centre, as a label map of that scan would), images by trilinear interpolation. Render the case
finer than the target (0.5 mm for a 0.7 mm scan) so that the nearest-neighbour step adds little.
"""

from __future__ import annotations

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.phantom.anatomy import rot_x, rot_y
from lumbarlab.volume import Volume, reorient, resample

__all__ = ["acquire", "rotation_matrix"]


def rotation_matrix(degrees: tuple[float, float, float]) -> np.ndarray:
    """Rotation by ``degrees`` about the patient's x (right), then y (anterior), then z (superior) axes.

    Example:
        >>> np.round(rotation_matrix((0, 0, 90)) @ [1.0, 0.0, 0.0], 6).tolist()
        [0.0, 1.0, 0.0]
    """
    ax, ay, az = (float(d) for d in degrees)
    c, s = np.cos(np.radians(az)), np.sin(np.radians(az))
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return rz @ rot_y(ay) @ rot_x(ax)


def acquire(volume: Volume, spacing: float | tuple[float, float, float], rotation: tuple[float, float, float] = (0, 0, 0),
            orientation: str = "RAS", labels: bool | None = None) -> Volume:
    """``volume`` on a new grid: voxels of ``spacing`` mm whose axes are the patient axes turned by ``rotation``
    (degrees, :func:`rotation_matrix`) about the volume's centre, then stored in ``orientation`` order
    (:func:`lumbarlab.volume.reorient`; for a rotated grid, the closest one). The new grid spans the input's
    extent along each of its own axes, about the same centre; where a rotated grid reaches past the input's
    corners it holds background. Render the input with room around the anatomy, so that what the new grid
    cuts, it cuts at its own edge — as a real scan does.

    Args:
        volume: a rendered image or label map.
        spacing: mm, one value or three (along the grid's own axes before reordering, e.g. (0.7, 0.7, 2.5)).
        rotation: degrees about x, y, z; (0, 0, 0) keeps the grid axis-aligned.
        orientation: axis order code of the stored volume, e.g. "RAS", "LPS", "PIR".
        labels: nearest-neighbour sampling (label maps); default: integer arrays are labels.

    Example:
        >>> from lumbarlab.phantom import make_case
        >>> case = make_case(2, modalities=())
        >>> scan = acquire(case.labels, (0.7, 0.7, 2.5), rotation=(10, 0, 5), orientation="LPS")
        >>> scan.spacing[2], sorted(set(np.unique(scan.array)) & {20, 24})
        (2.5, [20, 24])
    """
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (3,)).copy()
    if np.any(sp <= 0) or not np.all(np.isfinite(sp)):
        raise LumbarLabError(f"spacing must be positive millimetres, got {spacing!r}.")
    axes = rotation_matrix(rotation)
    n = np.array(volume.shape) - 1
    corners = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])], dtype=float)
    world = volume.index_to_world(corners)
    centre = world.mean(axis=0)
    h_in = np.abs(np.asarray(volume.direction)) @ ((np.array(volume.shape) - 1) * np.asarray(volume.spacing) / 2)
    half = h_in[np.abs(axes).argmax(axis=0)]  # each new axis spans the input's extent along the world axis it is nearest
    shape = tuple(int(np.ceil(2 * h / s)) + 1 for h, s in zip(half, sp, strict=True))
    origin = centre - axes @ ((np.array(shape) - 1) * sp / 2)
    if labels is None:
        labels = np.asarray(volume.array).dtype.kind in "iub"
    cval = 0.0 if labels else float(np.min(volume.array))
    out = resample(volume, shape, tuple(sp), tuple(origin), axes, order=0 if labels else 1, cval=cval)
    return reorient(out, orientation)  # nearest-neighbour resampling keeps the labels' dtype
