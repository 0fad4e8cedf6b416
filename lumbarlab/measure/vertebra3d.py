"""One vertebra of a 3D label map in its own frame: body, endplates, corners and heights.

Real label maps (VerSe, TotalSegmentator, a model's output) label the *whole* vertebra — body, pedicles,
laminae and processes — on grids of any orientation and spacing (0.7 × 0.7 × 2.5 mm axial CT is common),
with the spine bent by up to ±45° of lordosis. Measuring such a vertebra on one array slice fails; here it
is measured where a radiologist measures it, in the vertebra's own frame, in world millimetres:

1. **Frame.** u towards the patient's right, v anterior, w along the body's axis (superior). w starts as the
   line through the neighbouring vertebrae's centroids (the local spine axis), v as the patient's anterior.
2. **Body.** The mask is resampled on a 1 mm grid of that frame and projected along w. The vertebral
   foramen is the hole of that projection, enclosed by body, pedicles and laminae; the body is what lies
   anterior to the foramen's anterior edge (its posterior wall). The direction from the foramen's centre to
   the body's centre refines v (axial rotation). Without a closed foramen (a pars defect, a cut arch) the
   body ends where the projection narrows to its pedicles (under 55 % of the body's width); with neither,
   the mask is taken to be a body-only mask.
3. **Endplates.** The body is resampled at 0.5 mm with trilinear interpolation of its mask, and the
   superior and inferior endplate surfaces — the 0.5 crossings of each column — are fitted with planes;
   w becomes the bisector of their normals. Twice, since each fit sharpens the next.
4. **Corners.** In the mid-sagittal band (±3 mm about the body's centre, averaged) the four walls and
   endplates are fitted with lines next to each corner and intersected, as on a lateral radiograph
   (the six-point morphometry of vertebral heights; Genant et al., J Bone Miner Res 1993). Anterior and
   posterior heights are distances between corners; the middle height is the body's extent along w
   midway between the walls, so a central (biconcave) depression shows.

The precision is set by the grid: an endplate that lies parallel to thick slices is only known to half a
slice, so heights of a vertebra square to 2.5 mm slices can be off by up to ~1.25 mm per endplate; tilted
endplates cross many slices and are fitted to a fraction of that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import VERSE_LABEL
from lumbarlab.volume import Volume, resample

__all__ = ["VertebraFrame", "VertebraGeometry", "vertebra_geometry", "level_value", "level_geometry",
           "axis_hint", "body_mask"]

_RIGHT, _ANTERIOR, _SUPERIOR = np.eye(3)
#: Order of VerSe values along the column, for neighbours: C1 … T12, T13 (28), L1 … L6; not the sacrum,
#: whose centroid (S1–S5) lies far from the axis of L5.
_COLUMN = (*range(1, 20), 28, *range(20, 26))


@dataclass(frozen=True)
class VertebraFrame:
    """An orthonormal frame in world mm: ``origin`` and ``axes`` (3 × 3, columns u right, v anterior,
    w superior along the body's axis; a proper rotation).

    Example:
        >>> f = VertebraFrame(np.array([10.0, 0.0, 0.0]), np.eye(3))
        >>> f.to_local(np.array([[11.0, 2.0, 3.0]])).tolist()
        [[1.0, 2.0, 3.0]]
    """

    origin: np.ndarray
    axes: np.ndarray

    @staticmethod
    def from_axis(origin: np.ndarray, w: np.ndarray, v_hint: np.ndarray = _ANTERIOR) -> VertebraFrame:
        """The frame with axis ``w`` whose v is ``v_hint`` made orthogonal to it."""
        w = np.asarray(w, dtype=float) / np.linalg.norm(w)
        v = np.asarray(v_hint, dtype=float) - (np.asarray(v_hint, dtype=float) @ w) * w
        if np.linalg.norm(v) < 0.2:  # the axis points almost anteriorly: fall back to superior as the hint
            v = _SUPERIOR - (_SUPERIOR @ w) * w
        v /= np.linalg.norm(v)
        return VertebraFrame(np.asarray(origin, dtype=float), np.stack([np.cross(v, w), v, w], axis=1))

    @property
    def u(self) -> np.ndarray:
        return self.axes[:, 0]

    @property
    def v(self) -> np.ndarray:
        return self.axes[:, 1]

    @property
    def w(self) -> np.ndarray:
        return self.axes[:, 2]

    def to_local(self, xyz: np.ndarray) -> np.ndarray:
        return (np.asarray(xyz, dtype=float) - self.origin) @ self.axes

    def to_world(self, uvw: np.ndarray) -> np.ndarray:
        return np.asarray(uvw, dtype=float) @ self.axes.T + self.origin

    def moved(self, uvw: np.ndarray) -> VertebraFrame:
        """The same axes with the origin at local point ``uvw``."""
        return VertebraFrame(self.to_world(uvw), self.axes)


@dataclass
class VertebraGeometry:
    """What :func:`vertebra_geometry` found for one vertebra; lengths in mm, points in world mm (RAS+).

    Attributes:
        frame: origin at the body's centre, axes u/v/w (w = the body's axis).
        corners: ``superior_anterior``, ``superior_posterior``, ``inferior_posterior``, ``inferior_anterior``,
            ``superior_middle``, ``inferior_middle`` in world mm (the six points of vertebral morphometry).
        heights: ``anterior``, ``middle``, ``posterior`` body heights.
        depth: AP depth of the body at mid-height; width: its left-right width.
        posterior_wall: v (local mm) of the body's posterior wall at the midline.
        foramen: True when the vertebral foramen closed the body off; False when the pedicle narrowing did.
        bony_canal_ap: AP distance (mm) from the posterior wall to the lamina at the midline, or None.
        section: the mid-sagittal band's occupancy (v × w, 0–1) and ``section_extent`` (v0, v1, w0, w1) mm.
        truncated: the body reaches the edge of the image (heights are then not reported by the report).
        uncertainty: per height, how far (mm) the voxels leave its two endplate points free, added up: half the
            range of values there of every endplate line that keeps the inside and outside voxel centres apart
            (slopes included) — about the slice spacing or more when the endplates lie along thick slices, a
            fraction of a millimetre when they cross them.
    """

    level: str
    frame: VertebraFrame
    corners: dict[str, np.ndarray] = field(default_factory=dict)
    heights: dict[str, float] = field(default_factory=dict)
    depth: float = 0.0
    width: float = 0.0
    posterior_wall: float = 0.0
    foramen: bool = False
    bony_canal_ap: float | None = None
    section: np.ndarray | None = None
    section_extent: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    truncated: bool = False
    uncertainty: dict[str, float] = field(default_factory=dict)


def _box_of(mask: np.ndarray, margin: int = 2) -> tuple[slice, slice, slice]:
    idx = np.nonzero(mask)
    return tuple(slice(max(int(i.min()) - margin, 0), int(i.max()) + margin + 1) for i in idx)  # type: ignore[return-value]


def _reslice(volume: Volume, frame: VertebraFrame, lo: np.ndarray, hi: np.ndarray, step, order: int) -> Volume:
    """``volume`` on a grid of ``frame`` covering local [lo, hi] mm with ``step`` mm voxels."""
    step = np.broadcast_to(np.asarray(step, dtype=float), (3,))
    shape = tuple(int(n) for n in np.maximum(np.ceil((np.asarray(hi) - np.asarray(lo)) / step) + 1, 2))
    return resample(volume, shape, tuple(step), tuple(frame.to_world(lo)), frame.axes, order=order)


def _box_corners(extent: np.ndarray) -> np.ndarray:
    """The eight corners of a box given as [[lo_u, lo_v, lo_w], [hi_u, hi_v, hi_w]]."""
    return np.array([[x, y, z] for x in extent[:, 0] for y in extent[:, 1] for z in extent[:, 2]])


def _local_axes(grid: Volume, frame: VertebraFrame) -> list[np.ndarray]:
    """Local u, v, w coordinates (mm) of a frame-aligned grid's voxel centres along each axis."""
    lo = frame.to_local(grid.origin)
    return [lo[a] + grid.spacing[a] * np.arange(grid.shape[a]) for a in range(3)]


def axis_hint(labels: Volume, value: int) -> np.ndarray | None:
    """The local spine axis at vertebra ``value`` (VerSe values), pointing superiorly: the line through the
    centroids of the nearest labelled vertebrae above and below it (one side when only one is there), or
    None when it has no usable neighbour. A neighbour cut by the image's edge is left out: its centroid is
    not its centre. Centroids are world mm, so any grid orientation works."""
    if value not in _COLUMN:
        return None
    shape = np.array(labels.shape)
    boxes = ndimage.find_objects(np.asarray(labels.array).astype(np.int64, copy=False))
    present = {v for v in _COLUMN if v - 1 < len(boxes) and boxes[v - 1] is not None
               and (v == value or all(sl.start > 0 and sl.stop < n for sl, n in zip(boxes[v - 1], shape, strict=True)))}
    i = _COLUMN.index(value)
    above = next((v for v in reversed(_COLUMN[:i]) if v in present), None)
    below = next((v for v in _COLUMN[i + 1:] if v in present), None)
    if above is None and below is None:
        return None

    def centroid(v: int) -> np.ndarray:
        return labels.index_to_world(np.argwhere(labels.array == v).mean(axis=0))

    top = centroid(above) if above is not None else centroid(value)
    bottom = centroid(below) if below is not None else centroid(value)
    axis = top - bottom
    if np.linalg.norm(axis) < 1e-6:
        return None
    axis /= np.linalg.norm(axis)
    return axis if axis @ _SUPERIOR >= 0 else -axis


def _foramen(footprint: np.ndarray) -> np.ndarray | None:
    """The largest hole (≥ 15 px) of a 2D footprint: the vertebral foramen in an axial projection."""
    closed = ndimage.binary_closing(np.pad(footprint, 2), iterations=1)[2:-2, 2:-2] | footprint
    holes = ndimage.binary_fill_holes(closed) & ~closed
    lab, n = ndimage.label(holes)
    if n == 0:
        return None
    sizes = ndimage.sum(holes, lab, range(1, n + 1))
    best = int(np.argmax(sizes))
    return lab == best + 1 if sizes[best] >= 15 else None


def _coarse_body(mask: Volume, frame: VertebraFrame, name: str) -> tuple[VertebraFrame, float, bool, np.ndarray]:
    """Step 2: the body in a 1 mm grid of ``frame``. Returns (frame with v refined and its origin at the
    body's centre, posterior-wall v in that frame, foramen found, body extent lo/hi (2 × 3) local mm)."""
    pts = mask.index_to_world(np.argwhere(mask.array))
    local = frame.to_local(pts)
    lo, hi = local.min(axis=0) - 3.0, local.max(axis=0) + 3.0
    grid = _reslice(mask, frame, lo, hi, 1.0, order=0)
    solid = grid.array > 0
    uu, vv, _ = _local_axes(grid, frame)
    footprint = solid.any(axis=2)
    hole = _foramen(footprint)
    if hole is not None:
        iu, iv = np.nonzero(hole)
        uf, vf = float(uu[iu].mean()), float(vv[iv].mean())
        near = np.abs(uu[iu] - uf) <= 2.0
        wall = float(vv[iv[near]].max()) + 0.5  # the foramen's anterior edge at its midline
    else:  # no closed ring: the body ends where the footprint narrows to its pedicles
        widths = footprint.sum(axis=0).astype(float)
        rows = np.flatnonzero(widths > 0)
        front, best, wall = int(rows.max()), 0.0, None
        for j in range(front, int(rows.min()) - 1, -1):
            best = max(best, widths[j])
            if vv[front] - vv[j] >= 12.0 and widths[j] < 0.55 * best:
                wall = float(vv[j]) + 0.5
                break
        if wall is None:  # neither ring nor narrowing: a body-only mask (TotalSegmentator's vertebrae_body, a
            wall = float(vv[int(rows.min())]) - 0.5  # model's body output) — all of it is body
        uf = vf = None
    body2d = footprint & (vv[None, :] >= wall)
    lab, n = ndimage.label(body2d)
    if n == 0:
        raise LumbarLabError(f"{name}: nothing of the vertebra lies anterior to its foramen; check the label map.")
    sizes = ndimage.sum(body2d, lab, range(1, n + 1))
    body2d = lab == int(np.argmax(sizes)) + 1
    body3d = solid & body2d[:, :, None]
    ii, jj, kk = np.nonzero(body3d)
    centre = np.array([uu[ii].mean(), vv[jj].mean(), _local_axes(grid, frame)[2][kk].mean()])
    extent = np.array([[uu[ii].min(), vv[jj].min(), _local_axes(grid, frame)[2][kk].min()],
                       [uu[ii].max(), vv[jj].max(), _local_axes(grid, frame)[2][kk].max()]])
    axes = frame.axes
    if uf is not None:  # axial rotation: v points from the foramen's centre to the body's centre
        d = np.array([centre[0] - uf, centre[1] - vf])
        if np.linalg.norm(d) > 1e-6:
            d /= np.linalg.norm(d)
            v_new = d[0] * frame.u + d[1] * frame.v
            axes = np.stack([np.cross(v_new, frame.w), v_new, frame.w], axis=1)
    moved = VertebraFrame(frame.to_world(centre), axes)
    # the wall point and the extent's corners, expressed in the new frame
    wall_pt = frame.to_world(np.array([uf if uf is not None else centre[0], wall, centre[2]]))
    new = moved.to_local(frame.to_world(_box_corners(extent)))
    return moved, float(moved.to_local(wall_pt)[1]), hole is not None, np.stack([new.min(0), new.max(0)])


def _crossings(profile: np.ndarray, start: int, step: float, axis_values: np.ndarray, direction: int) -> np.ndarray:
    """Sub-voxel position where each 1D occupancy profile (last axis) first drops below 0.5, walking from
    index ``start`` in ``direction`` (+1/−1); NaN where it starts outside or never drops."""
    n = profile.shape[-1]
    idx = np.arange(start, n) if direction > 0 else np.arange(start, -1, -1)
    prof = profile[..., idx]
    inside0 = prof[..., 0] >= 0.5
    below = prof < 0.5
    first = np.argmax(below, axis=-1)
    found = below.any(axis=-1) & inside0 & (first > 0)
    first = np.where(found, first, 1)
    a = np.take_along_axis(prof, (first - 1)[..., None], -1)[..., 0]
    b = np.take_along_axis(prof, first[..., None], -1)[..., 0]
    frac = np.where(a - b > 1e-9, (a - 0.5) / np.maximum(a - b, 1e-9), 0.5)
    pos = axis_values[idx[first - 1]] + direction * frac * step
    return np.where(found, pos, np.nan)


def _plane_normal(u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """Unit normal (towards +w) of the plane w = a + b·u + c·v fitted to points, with one trimmed refit."""
    ok = np.isfinite(w)
    u, v, w = u[ok], v[ok], w[ok]
    if len(w) < 20:
        return None
    a = np.stack([np.ones_like(u), u, v], axis=1)
    coef = np.linalg.lstsq(a, w, rcond=None)[0]
    res = np.abs(w - a @ coef)
    keep = res <= max(2.5 * np.median(res) * 1.4826, 0.5)
    if keep.sum() >= 20:
        coef = np.linalg.lstsq(a[keep], w[keep], rcond=None)[0]
    n = np.array([-coef[1], -coef[2], 1.0])
    return n / np.linalg.norm(n)


def _refine_axis(mask: Volume, frame: VertebraFrame, wall: float, extent: np.ndarray, step: float) -> VertebraFrame:
    """Step 3: fit both endplates of the body resampled at ``step`` mm; returns the frame turned so that w
    bisects their normals (origin kept)."""
    lo = np.array([extent[0, 0] - 3.0, wall - 3.0, extent[0, 2] - 4.0])
    hi = np.array([extent[1, 0] + 3.0, extent[1, 1] + 3.0, extent[1, 2] + 4.0])
    grid = _reslice(mask, frame, lo, hi, step, order=1)
    occ = np.asarray(grid.array, dtype=np.float32)
    uu, vv, ww = _local_axes(grid, frame)
    occ[:, vv < wall - 3.0, :] = 0.0  # behind the wall lies the foramen: nothing there belongs to the body
    kc = int(np.argmin(np.abs(ww)))
    section = occ[:, :, kc] >= 0.5
    interior = ndimage.binary_erosion(section, iterations=max(int(round(3.0 / step)), 1)) & (vv[None, :] > wall + 2.0)
    top = _crossings(occ, kc, step, ww, +1)
    bottom = _crossings(occ, kc, step, ww, -1)
    ug, vg = np.meshgrid(uu, vv, indexing="ij")
    n_top = _plane_normal(ug[interior], vg[interior], top[interior])
    n_bot = _plane_normal(ug[interior], vg[interior], bottom[interior])
    if n_top is None or n_bot is None:
        return frame
    axis_local = n_top + n_bot
    w = frame.axes @ (axis_local / np.linalg.norm(axis_local))
    return VertebraFrame.from_axis(frame.origin, w, frame.v)


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Least-squares y = a + b·x over finite points, or None with fewer than 3."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    b, a = np.polyfit(x[ok], y[ok], 1)
    return float(a), float(b)


def _intersect(wall: tuple[float, float], plate: tuple[float, float]) -> np.ndarray:
    """Intersection (v, w) of a wall v = α + β·w with an endplate w = γ + δ·v."""
    (al, be), (ga, de) = wall, plate
    v = (al + be * ga) / (1.0 - be * de)
    return np.array([v, ga + de * v])


def _centre_left_right(mask: Volume, frame: VertebraFrame, wall: float, extent: np.ndarray,
                       name: str) -> tuple[VertebraFrame, float]:
    """The frame moved to the body's left-right middle at mid-height, and the body's width there (mm)."""
    lo = np.array([extent[0, 0] - 3.0, wall - 3.0, -1.0])
    hi = np.array([extent[1, 0] + 3.0, extent[1, 1] + 3.0, 1.0])
    grid = _reslice(mask, frame, lo, hi, 0.5, order=1)
    uu, vv, ww = _local_axes(grid, frame)
    mid = (np.asarray(grid.array)[:, :, int(np.argmin(np.abs(ww)))] >= 0.5) & (vv[None, :] > wall + 1.0)
    if not mid.any():
        raise LumbarLabError(f"{name}: the body has no cross-section at mid-height; check the label map.")
    cols = np.nonzero(mid.any(axis=1))[0]
    return frame.moved(np.array([(uu[cols.min()] + uu[cols.max()]) / 2, 0.0, 0.0])), float(uu[cols.max()] - uu[cols.min()]) + 0.5


def level_value(labels: Volume, level: str) -> int:
    """The VerSe value of vertebra ``level`` (e.g. "L1" → 20), checked to be in ``labels``.

    Example:
        >>> from lumbarlab.phantom import make_case
        >>> level_value(make_case(1, modalities=()).labels, "L1")
        20
    """
    if level not in VERSE_LABEL:
        raise LumbarLabError(f"unknown vertebra {level!r}; use one of {', '.join(VERSE_LABEL)}.")
    value = VERSE_LABEL[level]
    if not np.any(labels.array == value):
        raise LumbarLabError(f"{level} (label {value}) is not in the label map.")
    return value


def level_geometry(labels: Volume, level: str) -> VertebraGeometry:
    """:func:`vertebra_geometry` of vertebra ``level``, its axis hinted by its neighbours (:func:`axis_hint`)."""
    value = level_value(labels, level)
    return vertebra_geometry(labels, value, level, axis_hint(labels, value))


def vertebra_geometry(labels: Volume, value: int, name: str = "vertebra", axis: np.ndarray | None = None,
                      band: float = 3.0) -> VertebraGeometry:
    """Frame, body, corners and heights of the vertebra labelled ``value`` (whole-vertebra or body-only
    mask; any orientation and spacing). See the module text for the method.

    Args:
        labels: a label map.
        value: the vertebra's label value.
        name: its name, for messages.
        axis: the local spine axis (world, pointing superiorly), e.g. :func:`axis_hint`; default superior.
        band: half-thickness (mm) of the mid-sagittal band the corners are fitted in.

    Raises:
        LumbarLabError: naming the vertebra, when it is absent, too small, or has no recognisable body.
    """
    full = np.asarray(labels.array) == value
    if full.sum() < 50:
        raise LumbarLabError(f"{name} (label {value}) has {int(full.sum())} voxels in the label map; too few to measure.")
    box = _box_of(full)
    mask = labels.crop(box).with_array(full[box].astype(np.uint8))
    centre = mask.index_to_world(np.argwhere(mask.array)).mean(axis=0)
    # the axis to project along: the neighbours' line, else the patient's superior; the first that shows the
    # vertebral foramen wins (a wrong axis smears the ring shut), else the first that finds a body at all
    found, failure = None, None
    for candidate in ([axis] if axis is not None else []) + [_SUPERIOR]:
        try:
            result = _coarse_body(mask, VertebraFrame.from_axis(centre, candidate), name)
        except LumbarLabError as exc:
            failure = failure or exc
            continue
        if result[2]:
            found = result
            break
        found = found or result
    if found is None:
        raise failure  # type: ignore[misc]
    frame, wall, closed, extent = found
    fine = mask.with_array(mask.array.astype(np.float32))
    for _ in range(2):  # each endplate fit sharpens the next
        wall_world, corners = frame.to_world([0.0, wall, 0.0]), frame.to_world(_box_corners(extent))
        frame = _refine_axis(fine, frame, wall, extent, 0.5)
        wall = float(frame.to_local(wall_world)[1])
        new = frame.to_local(corners)
        extent = np.stack([new.min(0), new.max(0)])
    frame, width = _centre_left_right(fine, frame, wall, extent, name)
    geo = _corners_in_band(fine, frame, wall, extent, band, name)
    if min(geo.depth, width) < 15.0:  # adult thoracolumbar bodies are 25–55 mm across (Panjabi et al., Spine 1992)
        raise LumbarLabError(f"{name}: its body measures {geo.depth:.0f} × {width:.0f} mm (front to back × side to "
                             "side), too small for a vertebral body; the label holds a fragment or another structure.")
    geo.width = width
    geo.foramen = closed
    geo.truncated = _touches_edge(labels, full, frame, geo)
    return geo


@dataclass(frozen=True)
class _Fit:
    """A line y = a + b·x fitted to inside/outside voxel centres: its least violation per point (mm), its margin
    (mm it could slide before meeting a centre of the other side), half the range of slopes the voxels allow,
    the centre x0 of the points it was fitted to, and at chosen x how far the voxels leave its value free."""

    a: float
    b: float
    violation: float
    margin: float
    slope_spread: float
    x0: float
    free_at: dict = field(default_factory=dict)

    def line(self) -> tuple[float, float]:
        return self.a, self.b

    def freedom(self, x: float) -> float:
        """Half the range of values at ``x`` of the lines the voxels allow (mm); the margin where not computed."""
        return self.free_at.get(float(x), self.margin)



def _separating_line(x: np.ndarray, y: np.ndarray, inside: np.ndarray, inside_below: bool,
                     prior: float = 0.0, prior_sd: float = 0.3, at: tuple[float, ...] = ()) -> _Fit | None:
    """The line y = a + b·x that separates a mask's inside voxel centres from its outside ones.

    A label map is a point sample of the true surface — a voxel is inside when its centre is — so the surface
    lies between the inside and the outside centres, and every line that keeps them apart is consistent
    with the voxels. The voxels bound the slope to [lo, hi]: tightly where a tilted surface crosses several
    slices, loosely where it runs along thick slices. The slope taken is the mean of a normal prior
    (``prior`` ± ``prior_sd``) restricted to [lo, hi] — the posterior mean when every consistent line is
    equally likely — and the line is then centred in the gap (the widest margin). Real masks are not exactly
    separable: the least total violation (mm) found first is the budget the bounds keep to. Three small
    linear programmes, and two more for each x in ``at``: the lowest and highest value at x of any line the
    voxels allow — half that range is how far the voxels leave the surface free there. Returns a
    :class:`_Fit` (None with too few points on either side).
    """
    from scipy.optimize import linprog

    n = len(x)
    if n < 6 or inside.all() or not inside.any():
        return None
    x0 = float(np.mean(x))
    xs = x - x0
    s = np.where(inside == inside_below, -1.0, 1.0)  # +1 for points that must lie above the line
    # variables: a, b, t, slack_1..n;  s·(y - a - b·x) >= t - slack
    a_ub = np.zeros((n, n + 3))
    a_ub[:, 0], a_ub[:, 1], a_ub[:, 2] = s, s * xs, 1.0
    a_ub[np.arange(n), 3 + np.arange(n)] = -1.0
    b_ub = s * y
    free = [(None, None), (-3.0, 3.0), (0.0, 0.0)] + [(0.0, None)] * n

    def solve(c, bounds, extra=None):
        kw = {}
        if extra is not None:
            kw = {"A_ub": np.vstack([a_ub, extra[0]]), "b_ub": np.append(b_ub, extra[1])}
        res = linprog(c, **({"A_ub": a_ub, "b_ub": b_ub} | kw), bounds=bounds, method="highs")
        return res.x if res.success else None

    slack = np.concatenate([[0.0, 0.0, 0.0], np.ones(n)])
    best = solve(slack, free)
    if best is None:
        return None
    budget = (slack[None, :], float(best[3:].sum()) + 0.02 * n)  # keep within the least violation (+0.02 mm/point)
    lo = solve(np.eye(n + 3)[1], free, budget)
    hi = solve(-np.eye(n + 3)[1], free, budget)
    if lo is None or hi is None:
        return None
    b_lo, b_hi = float(lo[1]), float(hi[1])
    if b_hi - b_lo < 1e-6:
        b = (b_lo + b_hi) / 2
    else:
        from scipy.stats import truncnorm

        b = float(truncnorm.mean((b_lo - prior) / prior_sd, (b_hi - prior) / prior_sd, loc=prior, scale=prior_sd))
        b = float(np.clip(b, b_lo, b_hi)) if np.isfinite(b) else float(np.clip(prior, b_lo, b_hi))
    a, margin = _centred_offset(y - b * x, s)
    free_at = {}
    tight = (slack[None, :], float(best[3:].sum()) * 1.05 + 0.5)  # the ranges: at most 0.5 mm more violation
    for xq in at:
        objective = np.zeros(n + 3)
        objective[0], objective[1] = 1.0, xq - x0  # the line's value at xq (in the centred coordinates)
        low, high = solve(objective, free, tight), solve(-objective, free, tight)
        if low is not None and high is not None:
            free_at[float(xq)] = float((objective @ high - objective @ low) / 2)
    return _Fit(a, b, float(best[3:].sum()) / n, margin, (b_hi - b_lo) / 2, x0, free_at)


def _centred_offset(r: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """The offset a of a line of fixed slope (``r`` = y − b·x per point; ``s`` +1 where the point must lie above
    the line, −1 below): half-way across the gap between the two sides, and half that gap (the margin); where
    the sides overlap, the middle of the offsets that leave the least total violation, and margin 0. Unique,
    whatever the order of the points."""
    below, above = r[s < 0], r[s > 0]
    lo, hi = float(below.max()), float(above.min())
    if lo <= hi:
        return (lo + hi) / 2, (hi - lo) / 2
    cand = np.unique(np.concatenate([below, above]))
    cost = np.maximum(below[None, :] - cand[:, None], 0).sum(1) + np.maximum(cand[:, None] - above[None, :], 0).sum(1)
    best = cand[cost <= cost.min() + 1e-9]
    return float(best.min() + best.max()) / 2, 0.0


@dataclass
class _Section:
    """The mid-sagittal band resampled at 0.25 mm: its mean occupancy (v × w), the body's outline along each
    column (top, bottom) and row (anterior, posterior), and the body's centre row/column."""

    vv: np.ndarray
    ww: np.ndarray
    occupancy: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    anterior: np.ndarray
    posterior: np.ndarray
    jc: int
    kc: int

    @property
    def height(self) -> float:
        return float(self.top[self.jc] - self.bottom[self.jc])

    @property
    def mid_height(self) -> float:
        return float(self.top[self.jc] + self.bottom[self.jc]) / 2

    def mid_rows(self, fraction: float = 0.3) -> np.ndarray:
        """The rows within ``fraction`` of the height of the body's mid-height (away from the endplates)."""
        return np.abs(self.ww - self.mid_height) <= fraction * self.height


def _section(mask: Volume, frame: VertebraFrame, wall: float, extent: np.ndarray, band: float, name: str) -> _Section:
    """The band's resampled section and the body's rough outline in it (to 0.25 mm, the grid's staircase)."""
    step = 0.25
    lo = np.array([-band, wall - 45.0, extent[0, 2] - 4.0])  # 45 mm behind the wall: the lamina too
    hi = np.array([band, extent[1, 1] + 3.0, extent[1, 2] + 4.0])
    grid = _reslice(mask, frame, lo, hi, (0.5, step, step), order=1)
    _, vv, ww = _local_axes(grid, frame)
    full = np.asarray(grid.array, dtype=np.float32).mean(axis=0)  # (v, w): the band's mean occupancy
    body = full.copy()
    body[vv < wall - 3.0, :] = 0.0  # the foramen lies behind the wall at the midline: cut inside it
    inside = body >= 0.5
    lab, n = ndimage.label(inside)
    if n == 0:
        raise LumbarLabError(f"{name}: no body in the mid-sagittal plane; check the label map.")
    jc, kc = int(np.argmin(np.abs(vv - (wall + extent[1, 1]) / 2))), int(np.argmin(np.abs(ww)))
    keep = lab[jc, kc] if lab[jc, kc] else int(np.argmax(ndimage.sum(inside, lab, range(1, n + 1)))) + 1
    body = np.where(lab == keep, body, np.minimum(body, 0.49))
    ys, zs = np.nonzero(lab == keep)
    jc, kc = int(round(ys.mean())), int(round(zs.mean()))
    sec = _Section(vv, ww, full, _crossings(body, kc, step, ww, +1), _crossings(body, kc, step, ww, -1),
                   _crossings(body.T, jc, step, vv, +1), _crossings(body.T, jc, step, vv, -1), jc, kc)
    depth = sec.anterior[kc] - sec.posterior[kc]
    if not (np.isfinite(sec.height) and np.isfinite(depth)) or sec.height < 3.0 or depth < 5.0:
        raise LumbarLabError(f"{name}: the body's mid-sagittal section is too small to measure "
                             f"({sec.height:.1f} × {depth:.1f} mm).")
    return sec


def _voxel_centres(mask: Volume, frame: VertebraFrame, band: float, wall: float) -> tuple[np.ndarray, ...]:
    """(v, w, inside) of the mask's voxel centres in the band, in front of the foramen."""
    idx = np.indices(mask.shape).reshape(3, -1).T
    loc = frame.to_local(mask.index_to_world(idx))
    inside = np.asarray(mask.array).reshape(-1) > 0
    sel = (np.abs(loc[:, 0]) <= band) & (loc[:, 1] >= wall - 3.0)
    return loc[sel, 1], loc[sel, 2], inside[sel]


def _corners_in_band(mask: Volume, frame: VertebraFrame, wall: float, extent: np.ndarray, band: float,
                     name: str) -> VertebraGeometry:
    """Step 4: corners and heights in the mid-sagittal band of ``frame``: a resampled section finds the body's
    outline roughly, then the walls and endplates are fitted to the mask's own voxel centres and intersected."""
    sec = _section(mask, frame, wall, extent, band, name)
    pv, pw, pin = _voxel_centres(mask, frame, band, wall)
    rows = sec.mid_rows()
    walls = {}
    for side, prof, below in (("posterior", sec.posterior, False), ("anterior", sec.anterior, True)):
        pick = (np.abs(pw - sec.mid_height) <= 0.3 * sec.height) & (np.abs(pv - float(np.nanmedian(prof[rows]))) <= 4.0)
        prior = (_line(sec.ww[rows], prof[rows]) or (0.0, 0.0))[1]
        fit = _separating_line(pw[pick], pv[pick], pin[pick], inside_below=below, prior=prior)
        if fit is None:
            raise LumbarLabError(f"{name}: the {side} wall of the body cannot be fitted.")
        walls[side] = fit.line()
    vp, va = (walls[side][0] + walls[side][1] * sec.mid_height for side in ("posterior", "anterior"))
    depth, vmid = va - vp, (vp + va) / 2
    fits = _endplate_lines(sec, pv, pw, pin, vp, va, max(mask.spacing), name)
    lines = {key: fit.line() for key, fit in fits.items()}
    pts = {
        "superior_anterior": _intersect(walls["anterior"], lines["superior", "anterior"]),
        "superior_posterior": _intersect(walls["posterior"], lines["superior", "posterior"]),
        "inferior_posterior": _intersect(walls["posterior"], lines["inferior", "posterior"]),
        "inferior_anterior": _intersect(walls["anterior"], lines["inferior", "anterior"]),
    }
    for plate in ("superior", "inferior"):
        a, b = lines[plate, "middle"]
        pts[f"{plate}_middle"] = np.array([vmid, a + b * vmid])
    geo = VertebraGeometry(name, frame)
    geo.corners = {k: frame.to_world(np.array([0.0, p[0], p[1]])) for k, p in pts.items()}
    geo.heights = {
        "anterior": float(np.linalg.norm(pts["superior_anterior"] - pts["inferior_anterior"])),
        "middle": float(pts["superior_middle"][1] - pts["inferior_middle"][1]),
        "posterior": float(np.linalg.norm(pts["superior_posterior"] - pts["inferior_posterior"])),
    }
    at = {"anterior": va, "middle": vmid, "posterior": vp}
    geo.uncertainty = {side: float(fits["superior", side].freedom(v) + fits["inferior", side].freedom(v))
                       for side, v in at.items()}
    geo.depth, geo.posterior_wall, geo.bony_canal_ap = float(depth), float(vp), _bony_canal(sec)
    geo.section = sec.occupancy
    geo.section_extent = (float(sec.vv[0]), float(sec.vv[-1]), float(sec.ww[0]), float(sec.ww[-1]))
    return geo


def _endplate_lines(sec: _Section, pv: np.ndarray, pw: np.ndarray, pin: np.ndarray, vp: float, va: float,
                    coarsest: float, name: str) -> dict[tuple[str, str], _Fit]:
    """Lines w = a + b·v of both endplates near each wall and in the middle, fitted to the voxel centres."""
    depth, vmid = va - vp, (vp + va) / 2
    margin = max(1.5, 0.6 * coarsest)  # corners are rounded, by anatomy and by the grid
    # narrow (a central depression is V- or cup-shaped), but wide enough for thick slices to cross it
    half_mid = max(1.25, 0.04 * depth, 0.8 * coarsest)
    # each half of an endplate, from the rim's margin to near the centre, is fitted as one line: long enough
    # to cross several thick slices; a concave endplate bends the line by about a sixth of its depth
    strips = {"posterior": (vp + margin, vmid - 0.1 * depth), "anterior": (vmid + 0.1 * depth, va - margin),
              "middle": (vmid - half_mid, vmid + half_mid)}
    rims = (((pv >= vp + margin) & (pv <= vp + margin + 0.35 * depth))
            | ((pv >= va - margin - 0.35 * depth) & (pv <= va - margin)))
    # where the voxels leave a line's slope open, it takes the slope of the whole endplate (the resampled
    # outline's, rim to rim: a staircase, but one whose steps average out over the full depth)
    inner = (sec.vv >= vp + margin) & (sec.vv <= va - margin)
    lines = {}
    for plate, profile, below in (("superior", sec.top, True), ("inferior", sec.bottom, False)):
        overall = (_line(sec.vv[inner], profile[inner]) or (0.0, 0.0))[1]
        near = np.abs(pw - np.interp(pv, sec.vv, profile)) <= 4.0

        def fit(where, at, near=near, below=below, overall=overall):
            pick = near & where
            return _separating_line(pv[pick], pw[pick], pin[pick], inside_below=below, prior=overall, at=at)

        # One line through both rims first (the ring apophysis; the more slices it crosses the better its slope
        # is pinned); when the voxels refuse one line (a depressed, biconcave endplate) each half gets its own.
        both = fit(rims, (vp, va))
        halves = {}
        for side, corner in (("posterior", vp), ("anterior", va)):
            halves[side] = fit((pv >= strips[side][0]) & (pv <= strips[side][1]), (corner, vmid))
            if halves[side] is None:
                raise LumbarLabError(f"{name}: the {plate} endplate cannot be fitted near its {side} part.")
            lines[plate, side] = both if both is not None and both.violation <= 0.02 else halves[side]
        # the middle point: where the two halves' lines meet the centre (exact for a straight or V-shaped
        # endplate, a sixth of the depth of a cup-shaped one too deep); each half crosses many more slices
        # than a narrow window at the centre would
        p, a = halves["posterior"], halves["anterior"]
        at_mid = (p.a + p.b * vmid + a.a + a.b * vmid) / 2
        slope = (p.b + a.b) / 2
        lines[plate, "middle"] = _Fit(at_mid - slope * vmid, slope, max(p.violation, a.violation),
                                      (p.margin + a.margin) / 2, (p.slope_spread + a.slope_spread) / 2, vmid,
                                      {float(vmid): (p.freedom(vmid) + a.freedom(vmid)) / 2})
    return lines


def _bony_canal(sec: _Section) -> float | None:
    """AP distance (mm) from the body's posterior wall back to the next bone (the lamina) at the midline, the
    median over the rows around mid-height; None without a lamina in the band."""
    gaps = []
    for k in np.flatnonzero(sec.mid_rows()):
        behind = (sec.vv < sec.posterior[k] - 0.5) & (sec.occupancy[:, k] >= 0.5)
        if np.isfinite(sec.posterior[k]) and behind.any():
            gaps.append(sec.posterior[k] - sec.vv[behind].max() - (sec.vv[1] - sec.vv[0]) / 2)
    return float(np.median(gaps)) if len(gaps) >= 3 else None


def _touches_edge(labels: Volume, full: np.ndarray, frame: VertebraFrame, geo: VertebraGeometry) -> bool:
    """True when the body (the vertebra's voxels anterior to its posterior wall) reaches the image's edge."""
    idx = np.argwhere(full)
    local = frame.to_local(labels.index_to_world(idx))
    body = idx[local[:, 1] >= geo.posterior_wall - 1.0]
    if not len(body):
        return True
    shape = np.array(labels.shape)
    return bool(np.any(body.min(axis=0) == 0) or np.any(body.max(axis=0) == shape - 1))


def body_mask(labels: Volume, value: int, geo: VertebraGeometry) -> np.ndarray:
    """Boolean mask, on the label map's grid, of the vertebra's body: its voxels anterior to the posterior
    wall that :func:`vertebra_geometry` found (the pedicles' roots go with it, the rest of the arch does not)."""
    full = np.asarray(labels.array) == value
    idx = np.argwhere(full)
    local = geo.frame.to_local(labels.index_to_world(idx))
    keep = idx[local[:, 1] >= geo.posterior_wall]
    out = np.zeros(full.shape, dtype=bool)
    out[tuple(keep.T)] = True
    return out
