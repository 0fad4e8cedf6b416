"""Fast lateral radiographs for training sets, without rendering a volume.

A lateral ray runs along the patient's left-right axis, which is the u axis of every
vertebra's frame when the spine has no coronal tilt. Each primitive of
:mod:`lumbarlab.phantom.shapes` knows its chord length along u, so the line integral of
attenuation is a sum of chords times attenuation coefficients — exact for the same
anatomy the 3D voxelizer draws, at a few milliseconds per 256² image. Coronal tilt
(scoliosis) is ignored here; use :func:`lumbarlab.phantom.make_case` for AP views and
scoliosis.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.phantom.anatomy import Spine, build_spine
from lumbarlab.phantom.labels import VERTEBRAE, Material
from lumbarlab.phantom.params import PhantomParams, sample_params
from lumbarlab.phantom.radiography import detector_display, geometry
from lumbarlab.phantom.render import MU_WATER_PER_MM, ct_table
from lumbarlab.phantom.shapes import VertebralBody, body_shapes, canal_shapes, posterior_boxes
from lumbarlab.phantom.surroundings import line_integrals, solids
from lumbarlab.phantom.texture import texture_2d, texture_rng
from lumbarlab.phantom.voxelize import disc_coordinates
from lumbarlab.volume import Radiograph

__all__ = ["lateral_radiograph", "lateral_radiographs", "LateralFOV"]

#: Relative modulation of the trabecular path by the projected texture (clinical realism).
_TEXTURE_2D = 0.12


@dataclass(frozen=True)
class LateralFOV:
    """Square field of view of a fast lateral image: centre (y, z) in mm and side length."""

    centre_y: float
    centre_z: float
    side_mm: float = 230.0

    @staticmethod
    def around(spine: Spine, side_mm: float = 230.0) -> LateralFOV:
        l1 = spine.vertebrae["L1"]
        s1 = spine.vertebrae["S1"]
        top = l1.to_world([0, 0, l1.hm])
        bottom = s1.to_world([0, 0, 0])
        ys = [v.to_world([0, 0, v.hm / 2])[1] for v in spine.vertebrae.values()]
        return LateralFOV(0.5 * (max(ys) + min(ys)) - 20.0, 0.5 * (top[2] + bottom[2]) + 5.0, side_mm)


def _mu(hu: float) -> float:
    return MU_WATER_PER_MM * (1.0 + hu / 1000.0)


def _sagittal_local(vert, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(v, w) of points in the mid-sagittal plane, using the frame's sagittal rotation only."""
    c, s = np.cos(np.radians(vert.sagittal)), np.sin(np.radians(vert.sagittal))
    dy, dz = y - vert.origin[1], z - vert.origin[2]
    return (c * dy + s * dz).astype(np.float32), (-s * dy + c * dz).astype(np.float32)


def lateral_radiograph(
    params: PhantomParams | int, size: int = 256, fov: LateralFOV | None = None, noise: bool = True,
) -> Radiograph:
    """One lateral radiograph of ``size``² pixels with labels, corners and truth.

    Args:
        params: case parameters or a seed (a healthy case drawn from it).
        size: image side in pixels.
        fov: field of view; by default 230 mm centred on L1–S1.
        noise: Poisson detector noise.

    Returns:
        A :class:`Radiograph` (anterior on the viewer's left) whose ``labels`` are the
        vertebra with the longest bone path per pixel and ``corners`` the four body corners
        of T12–S1 in pixels.
    """
    if not isinstance(params, PhantomParams):
        params = sample_params(params)
    if not 32 <= int(size) <= 2048:
        raise LumbarLabError(f"image size {size} is outside 32–2048 pixels.")
    spine = build_spine(params)
    fov = fov or LateralFOV.around(spine)
    pixel = fov.side_mm / size
    # Pixel centres: column 0 is the most anterior y, row 0 the most superior z.
    ys = (fov.centre_y + fov.side_mm / 2 - pixel * (np.arange(size) + 0.5)).astype(np.float32)
    zs = (fov.centre_z + fov.side_mm / 2 - pixel * (np.arange(size) + 0.5)).astype(np.float32)
    Y, Z = np.meshgrid(ys, zs)  # (row, col)

    lut = ct_table(params)
    mu_soft = _mu(0.0)
    A, B, yc = spine.body_half_lr, spine.body_half_ap, spine.body_centre_y
    body = 2 * A * np.sqrt(np.clip(1 - ((ys - yc) / B) ** 2, 0, None))
    p = np.broadcast_to((body * mu_soft).astype(np.float32), (size, size)).copy()

    top, left = fov.centre_z + fov.side_mm / 2, fov.centre_y + fov.side_mm / 2
    geo = geometry(params)
    centre = (fov.centre_y, fov.centre_z)

    def window_around(cy: float, cz: float, reach: float) -> tuple[slice, slice]:
        """Rows and columns of the pixels within ``reach`` mm of (cy, cz)."""
        r0, c0 = max(int((top - cz - reach) / pixel), 0), max(int((left - cy - reach) / pixel), 0)
        # an empty window (the structure lies outside the field) must stay empty: a negative stop would
        # otherwise count from the end of the image
        rows = slice(r0, max(min(int((top - cz + reach) / pixel) + 1, size), r0))
        cols = slice(c0, max(min(int((left - cy + reach) / pixel) + 1, size), c0))
        return rows, cols

    def slabs(half: float, x0: float) -> list[tuple[float, float, float]]:
        """(u0, u1, depth): one slab for a parallel beam; for a point source, the left and right halves, each
        seen at the depth of its centre (a vertebra's two sides project apart: doubled contours)."""
        if geo is None:
            return [(-np.inf, np.inf, 0.0)]
        return [(-np.inf, 0.0, x0 - half / 2), (0.0, np.inf, x0 + half / 2)]

    def at_depth(r: slice, c: slice, depth: float) -> tuple[np.ndarray, np.ndarray]:
        """World (y, z) where the rays of the pixels [r, c] cross the plane x = depth."""
        if geo is None or depth == 0.0:
            return Y[r, c], Z[r, c]
        yy, zz = geo.sample_at(Y[r, c], Z[r, c], depth, centre)
        return yy.astype(np.float32), zz.astype(np.float32)

    # Discs (chord through the blended ellipse in the mid-sagittal plane).
    for disc in spine.discs.values():
        centre_d = 0.5 * (disc.upper.origin + disc.lower.to_world([0.0, 0.0, disc.lower.hm]))
        r, c = window_around(centre_d[1], centre_d[2], max(disc.upper.b, disc.lower.b) + disc.height + 8.0)
        if r.start >= r.stop or c.start >= c.stop:
            continue
        dmu = _mu(float(lut[Material.ANNULUS0 + disc.index])) - mu_soft
        # one pass through the central ray's geometry: the doubled contours are the endplates' (below)
        yy, zz = at_depth(r, c, float(disc.lower.origin[0]))
        q = disc_coordinates(disc, np.float32(disc.lower.origin[0]), yy, zz, concave=False)
        p[r, c] += 2 * q["a"] * np.sqrt(np.clip(1 - (q["qv"] / q["b"]) ** 2, 0, None)) * q["between"] * dmu

    best = np.zeros((size, size), dtype=np.float32)
    labels = np.zeros((size, size), dtype=np.uint8)
    body_best = np.zeros((size, size), dtype=np.float32)
    body_labels = np.zeros((size, size), dtype=np.uint8)
    mu_cort = _mu(float(lut[Material.CORTICAL])) - mu_soft
    mu_post = _mu(float(lut[Material.POSTERIOR])) - mu_soft
    rng = np.random.default_rng([params.seed, 6]) if noise else None
    texture = None
    if params.look.texture:
        tex_rng = texture_rng(params.seed, params.acquisition.get("texture_seed", 0))
        texture = 1.0 + _TEXTURE_2D * texture_2d(tex_rng, (size, size), pixel)
    names = list(spine.vertebrae)
    for i, name in enumerate(names):
        vert = spine.vertebrae[name]
        mu_trab = _mu(float(lut[Material.TRABECULAR0 + vert.index])) - mu_soft
        mu_disc = _mu(float(lut[Material.ANNULUS0 + min(vert.index, len(spine.discs) - 1)])) - mu_soft
        # Work in the vertebra's bounding box only.
        cy, cz = vert.to_world([0, 0, vert.hm / 2])[1:]
        # Work in the vertebra's bounding box only: from the body's front to the spinous tip.
        tip = -vert.b - vert.canal_ap - 7.0 - vert.spinous_len
        wy, wz = vert.to_world([0, (vert.b + vert.osteophyte + tip) / 2, vert.hm / 2])[1:]
        r, c = window_around(wy, wz, (vert.b + vert.osteophyte - tip) / 2 + 16.0)
        if r.start >= r.stop or c.start >= c.stop:
            continue
        outer, inner = body_shapes(vert)
        boxes = posterior_boxes(vert)
        above = spine.discs[f"{names[i - 1]}-{name}"].height if i > 0 else 8.0
        below = spine.discs[f"{name}-{names[i + 1]}"].height if i + 1 < len(names) else 60.0
        canal = canal_shapes(vert, below, above)[0]
        # The body's own, smaller window (its shapes are the costly ones), as slices of the big one.
        reach = float(np.hypot(vert.b + vert.osteophyte, max(vert.ha, vert.hp) / 2 + vert.concavity)) + 6.0
        rb, cb = window_around(cy, cz, reach)
        rb, cb = slice(max(rb.start, r.start), min(rb.stop, r.stop)), slice(max(cb.start, c.start), min(cb.stop, c.stop))
        inner_rows = slice(rb.start - r.start, rb.stop - r.start)
        inner_cols = slice(cb.start - c.start, cb.stop - c.start)
        bone = np.zeros((r.stop - r.start, c.stop - c.start), dtype=np.float32)
        body_chord = np.zeros_like(bone)
        # Posterior elements through the central ray's geometry (one pass: they are many and small); the
        # body through each half's own (two passes: its doubled endplates and walls are what readers see).
        v, w = _sagittal_local(vert, *at_depth(r, c, float(vert.origin[0])))
        arch_lo, arch_hi = boxes[0].u_range(v, w)
        canal_hi = canal.u_range(v, w)[1]
        # the canal is carved out of the arch: the arch keeps |u| between the canal's edge and its own
        post = 2.0 * np.clip(arch_hi - np.maximum(arch_lo, np.where(canal_hi > 0, canal_hi, 0.0)), 0.0, None)
        for bx in boxes[1:]:
            post += bx.chord_u(v, w)
        for u0, u1, depth in slabs(vert.a, float(vert.origin[0])):
            vb, wb = _sagittal_local(vert, *at_depth(rb, cb, depth))
            trab = inner.chord_slab(vb, wb, u0, u1)
            if isinstance(outer, VertebralBody):
                outer_chord, hull_chord = outer.chords_with_hull(vb, wb, u0, u1)
            else:
                outer_chord = hull_chord = outer.chord_slab(vb, wb, u0, u1)
            cort = np.maximum(outer_chord - trab, 0.0)
            tex = 1.0 if texture is None else texture[rb, cb]
            body_p = trab * mu_trab * tex + cort * mu_cort
            body_p += np.maximum(hull_chord - outer_chord, 0.0) * mu_disc  # the disc fills concave endplates
            p[rb, cb] += body_p
            bone[inner_rows, inner_cols] += trab + cort
            body_chord[inner_rows, inner_cols] += outer_chord
        post = post.astype(np.float32)
        post[inner_rows, inner_cols] = np.where(body_chord[inner_rows, inner_cols] > 0, 0.0,
                                                post[inner_rows, inner_cols])
        p[r, c] += post * mu_post
        bone += post
        win = bone > best[r, c]
        best[r, c] = np.where(win, bone, best[r, c])
        labels[r, c] = np.where(win, vert.label, labels[r, c])
        win = body_chord > body_best[r, c]
        body_best[r, c] = np.where(win, body_chord, body_best[r, c])
        body_labels[r, c] = np.where(win, vert.label, body_labels[r, c])

    items = solids(spine)
    if items:
        soft = _mu(float(lut[Material.SOFT]))
        dmu = {it.material: _mu(float(lut[it.material])) - soft for it in items}
        p += line_integrals(items, dmu, 0, (-A, A), ys, zs).T
    image = detector_display(p, params, rng, pixel)

    corners = {}
    for name, vert in spine.vertebrae.items():
        pts = vert.to_world(vert.lateral_corners_local())
        if geo is not None:  # where the ray through each corner meets the isocentre plane
            py, pz = geo.to_detector(pts[:, 1], pts[:, 2], pts[:, 0], centre)
            pts = np.stack([pts[:, 0], py, pz], axis=1)
        col = (left - pts[:, 1]) / pixel - 0.5
        row = (top - pts[:, 2]) / pixel - 0.5
        corners[name] = np.stack([col, row], axis=1)
    truth = {
        "seed": params.seed,
        "slip_percent": {n: params.slip.get(n, 0.0) for n in VERTEBRAE[:-1]},
        "fracture_percent": {n: params.fracture.get(n, 0.0) for n in VERTEBRAE},
        "pfirrmann": dict(params.pfirrmann),
    }
    return Radiograph(image, (pixel, pixel), "lateral", labels, corners, truth, body_labels)


def lateral_radiographs(
    n: int, seed: int = 0, size: int = 256, slip_fraction: float = 0.5, max_slip: float = 50.0,
    noise: bool = True, min_slip: float = 8.0,
) -> Iterator[Radiograph]:
    """Yield ``n`` lateral radiographs for a spondylolisthesis training set.

    Case ``i`` uses anatomy seed ``seed + i``; a share ``slip_fraction`` of the cases gets
    an anterior slip of ``min_slip``–``max_slip`` % at L4 or L5 (the common levels), the rest none.
    The draw is reproducible from ``seed``.
    """
    if n < 0:
        raise LumbarLabError(f"n must be >= 0, got {n}.")
    if not 0.0 <= min_slip <= max_slip:
        raise LumbarLabError(f"need 0 <= min_slip <= max_slip, got {min_slip} and {max_slip}.")
    rng = np.random.default_rng([seed, 7])
    for i in range(n):
        pathology = {}
        if rng.random() < slip_fraction:
            pathology["slip"] = {str(rng.choice(["L4", "L5"])): float(rng.uniform(min_slip, max_slip))}
        yield lateral_radiograph(sample_params(seed + i, **pathology), size=size, noise=noise)
