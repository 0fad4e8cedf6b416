"""Turn the phantom's geometry into a label map (VerSe values) and a material map.

Work happens inside each structure's bounding box only, so a 160×160×200 grid at 1 mm
takes tens of milliseconds rather than seconds. Later structures overwrite earlier ones:
body fat → viscera → muscles → surroundings (organs, gas, ribs, iliac wings) → discs → bone → canal
(carving the neural arch) → herniations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.phantom.anatomy import Disc, Spine, Vertebra
from lumbarlab.phantom.labels import CANAL_LABEL, Material
from lumbarlab.phantom.shapes import body_shapes, canal_shapes, posterior_boxes
from lumbarlab.phantom.surroundings import ON_SOFT_TISSUE, solids

__all__ = ["Grid", "default_grid", "voxelize", "disc_coordinates"]


@dataclass(frozen=True)
class Grid:
    """An axis-aligned RAS+ grid: ``shape`` voxels of ``spacing`` mm, voxel 0 centred at ``origin``."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or any(int(n) < 8 for n in self.shape):
            raise LumbarLabError(f"grid shape must be three sizes of at least 8 voxels, got {self.shape}.")
        if any(not np.isfinite(s) or s <= 0 for s in self.spacing):
            raise LumbarLabError(f"voxel spacing must be positive millimetres, got {self.spacing}.")
        if self.shape[0] * self.shape[1] * self.shape[2] > 600**3:
            raise LumbarLabError(f"grid {self.shape} is too large for memory; use fewer voxels or larger spacing.")

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World coordinates (mm) of voxel centres along x, y, z."""
        return tuple(  # type: ignore[return-value]
            (o + s * np.arange(n)).astype(np.float32)
            for o, s, n in zip(self.origin, self.spacing, self.shape, strict=True)
        )

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices of the voxels whose centres lie within world [lo, hi], or None if empty."""
        out = []
        for o, s, n, a, b in zip(self.origin, self.spacing, self.shape, lo, hi, strict=True):
            i0 = int(np.clip(np.floor((a - o) / s), 0, n))
            i1 = int(np.clip(np.ceil((b - o) / s) + 1, 0, n))
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return tuple(out)  # type: ignore[return-value]


def default_grid(spine: Spine, shape=(160, 160, 200), spacing: float | tuple = 1.0) -> Grid:
    """A grid centred on the lumbar spine: L1's top to S1's top in z, skin of the back to the
    front of the vertebral bodies in y (a spine-centred CT field of view, as VerSe crops)."""
    sp = (float(spacing),) * 3 if np.isscalar(spacing) else tuple(float(s) for s in spacing)
    shape = tuple(int(n) for n in shape)
    l1 = spine.vertebrae["L1"]
    z_top = l1.to_world([0, 0, l1.hm])[2]
    z_mid = 0.5 * (z_top + 0.0)
    skin = spine.body_centre_y - spine.body_half_ap
    front = max(v.to_world([0, v.b, v.hm / 2])[1] for v in spine.vertebrae.values())
    y_mid = 0.5 * (skin + front + 25.0)
    centre = np.array([0.0, y_mid, z_mid])
    extent = (np.array(shape) - 1) * np.array(sp)
    return Grid(shape, sp, tuple(centre - extent / 2))  # type: ignore[arg-type]


def _local_coords(vert_or_frame, grid: Grid, sl, axes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local (u, v, w) coordinates of the voxels in ``sl`` for a frame (rotation, origin)."""
    rot, origin = vert_or_frame
    dx = (axes[0][sl[0]] - origin[0])[:, None, None]
    dy = (axes[1][sl[1]] - origin[1])[None, :, None]
    dz = (axes[2][sl[2]] - origin[2])[None, None, :]
    r = rot.astype(np.float32)
    return tuple(r[0, c] * dx + r[1, c] * dy + r[2, c] * dz for c in range(3))  # type: ignore[return-value]


def _world_box(vert: Vertebra, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    pts = vert.to_world(corners)
    return pts.min(axis=0), pts.max(axis=0)


def _paint(target: np.ndarray, sl, mask: np.ndarray, value: int) -> None:
    view = target[sl]
    view[mask] = value


def _paint_body_and_muscles(spine: Spine, grid: Grid, axes, material: np.ndarray) -> None:
    x, y, z = axes
    s = spine.params.scale
    # Body outline and subcutaneous fat: an ellipse constant along z.
    ex = (x / spine.body_half_lr) ** 2
    ey = ((y - spine.body_centre_y) / spine.body_half_ap) ** 2
    body2d = ex[:, None] + ey[None, :] <= 1.0
    fat = spine.fat
    ix = (x / (spine.body_half_lr - 0.8 * fat)) ** 2
    iy = ((y - spine.body_centre_y) / (spine.body_half_ap - fat)) ** 2
    inner2d = ix[:, None] + iy[None, :] <= 1.0
    plane = np.where(inner2d, Material.SOFT, np.where(body2d, Material.FAT, Material.AIR)).astype(np.uint8)
    material[...] = plane[:, :, None]

    # Muscles follow the spine's centre line in z.
    cx, cy, cz = spine.centre_line()
    xc = np.interp(z, cz, cx).astype(np.float32)
    yc = np.interp(z, cz, cy).astype(np.float32)
    depth = np.interp(z, cz, [v.b for v in sorted(spine.vertebrae.values(), key=lambda v: v.body_centre()[2])])
    half = np.interp(z, cz, [v.a for v in sorted(spine.vertebrae.values(), key=lambda v: v.body_centre()[2])])
    l1_z = spine.vertebrae["L1"].body_centre()[2]
    l5_z = spine.vertebrae["L5"].body_centre()[2]
    # Psoas: grows from ~8 mm radius at L1 to ~22 mm at L5, beside the vertebral bodies.
    frac = np.clip((l1_z - z) / max(l1_z - l5_z, 1.0), 0.0, 1.0)
    r_psoas = ((8.0 + 14.0 * frac) * s * (z > l5_z - 25.0) * (z < l1_z + 30.0)).astype(np.float32)
    # Paraspinal muscles fill the gutters behind the transverse processes.
    canal = spine.params.canal_diameter
    y_para = (yc - depth - canal - 22.0 * s).astype(np.float32)
    for side in (-1.0, 1.0):
        px = xc + side * (half + r_psoas * 0.95)
        _paint_ellipses(material, grid, axes, px, yc, r_psoas, 0.9 * r_psoas, None)
        _paint_ellipses(material, grid, axes, xc + side * 27.0 * s, y_para,
                        np.full_like(xc, 24.0 * s), np.full_like(xc, 26.0 * s), inner2d)
        if spine.params.look.surroundings:
            # quadratus lumborum: lateral to the transverse processes, from the 12th rib to the iliac crest
            r_ql = (13.0 * s * (z > l5_z) * (z < l1_z + 20.0)).astype(np.float32)
            _paint_ellipses(material, grid, axes, xc + side * (half + 48.0 * s), (yc - depth - 8.0 * s).astype(np.float32),
                            r_ql, 0.7 * r_ql, inner2d)


def _paint_ellipses(material, grid: Grid, axes, cx, cy, rx, ry, within) -> None:
    """Mark MUSCLE inside per-slice ellipses (centres and radii vary with z), only inside the
    body (and inside ``within``, a 2D mask, when given); work stays in the ellipses' box."""
    x, y, _ = axes
    live = rx > 0
    if not live.any():
        return
    lo = np.array([np.min((cx - rx)[live]), np.min((cy - ry)[live]), -1e9])
    hi = np.array([np.max((cx + rx)[live]), np.max((cy + ry)[live]), 1e9])
    sl = grid.box(lo, hi)
    if sl is None:
        return
    sx, sy = sl[0], sl[1]
    qx = ((x[sx, None] - cx[None, :]) / np.maximum(rx, 1e-3)[None, :]) ** 2
    qy = ((y[sy, None] - cy[None, :]) / np.maximum(ry, 1e-3)[None, :]) ** 2
    inside = (qx[:, None, :] + qy[None, :, :] <= 1.0) & live[None, None, :]
    view = material[sx, sy, :]
    inside &= view != Material.AIR
    if within is not None:
        inside &= within[sx, sy, None]
    view[inside] = Material.MUSCLE


def disc_coordinates(disc: Disc, x, y, z, concave: bool = True) -> dict[str, np.ndarray]:
    """Where points (world mm, broadcastable arrays) sit relative to a disc.

    Returns ``t`` (0 at the lower vertebra's superior surface, 1 at the upper's inferior
    endplate), ``qu, qv`` (mm from the disc's sheared centre line, in frames blended between
    the two vertebrae), the interpolated half-axes ``a, b`` and ``between`` (inside the slab).
    With ``concave`` the slab reaches into concave endplates (the disc fills them); without, it
    stops at the rims' level.
    """
    up, lo = disc.upper, disc.lower
    c_lo = lo.to_world([0.0, 0.0, (lo.hp + lo.ha) / 2])
    r_lo, r_up = lo.rotation.astype(np.float32), up.rotation.astype(np.float32)
    dl = (x - lo.origin[0], y - lo.origin[1], z - lo.origin[2])
    du_ = (x - up.origin[0], y - up.origin[1], z - up.origin[2])
    u_l, v_l, w_l = (r_lo[0, c] * dl[0] + r_lo[1, c] * dl[1] + r_lo[2, c] * dl[2] for c in range(3))
    u_u, v_u, w_u = (r_up[0, c] * du_[0] + r_up[1, c] * du_[1] + r_up[2, c] * du_[2] for c in range(3))
    below = w_l - lo.top(v_l)  # height above the lower vertebra's superior surface
    above = -w_u  # depth below the upper vertebra's inferior endplate
    if concave and lo.concavity > 0:
        below = below + lo.concavity * np.clip(1.0 - (u_l / lo.a) ** 2 - (v_l / lo.b) ** 2, 0.0, None)
    if concave and up.concavity > 0:
        above = above + up.concavity * np.clip(1.0 - (u_u / up.a) ** 2 - (v_u / up.b) ** 2, 0.0, None)
    t = np.clip(below / np.maximum(below + above, 1e-3), 0.0, 1.0)
    shift = (up.origin - c_lo) @ lo.rotation
    qu = (1 - t) * (u_l - t * shift[0]) + t * u_u
    qv = (1 - t) * (v_l - t * shift[1]) + t * v_u
    return {
        "t": t, "qu": qu, "qv": qv,
        "a": (1 - t) * lo.a + t * up.a, "b": (1 - t) * lo.b + t * up.b,
        "between": (below >= 0) & (above >= 0),
    }


def _paint_disc(disc: Disc, grid: Grid, axes, labels, material, herniation_only: bool = False,
                cleft: bool = False) -> None:
    up, lo = disc.upper, disc.lower
    pts = np.array([lo.to_world([0.0, 0.0, (lo.hp + lo.ha) / 2]), up.origin])
    reach = max(up.a, lo.a) + disc.herniation + 4.0 + max(up.concavity, lo.concavity)
    sl = grid.box(pts.min(axis=0) - reach, pts.max(axis=0) + reach)
    if sl is None:
        return
    x, y, z = axes[0][sl[0]][:, None, None], axes[1][sl[1]][None, :, None], axes[2][sl[2]][None, None, :]
    q = disc_coordinates(disc, x, y, z)
    t, qu, qv, a, b, between = q["t"], q["qu"], q["qv"], q["a"], q["b"], q["between"]
    if not herniation_only:
        disc_mask = between & ((qu / a) ** 2 + (qv / b) ** 2 <= 1.0)
        nucleus = disc_mask & ((qu / (0.55 * a)) ** 2 + ((qv + 0.08 * b) / (0.5 * b)) ** 2 <= 1.0)
        nucleus &= (t > 0.15) & (t < 0.85)
        _paint(labels, sl, disc_mask, disc.label)
        _paint(material, sl, disc_mask, Material.ANNULUS0 + disc.index)
        _paint(material, sl, nucleus, Material.NUCLUS0 + disc.index)
        if cleft:  # the intranuclear cleft of adult discs: a thin fibrous band across the nucleus, dark on T2
            _paint(material, sl, nucleus & (np.abs(t - 0.5) < 0.07), Material.ANNULUS0 + disc.index)
    elif disc.herniation > 0:
        depth = disc.herniation
        ru, rv, rw = 7.0, depth / 2 + 1.0, max(disc.height * 0.35, 1.5)
        cv = -b - depth / 2 + 1.0
        blob = ((qu / ru) ** 2 + ((qv - cv) / rv) ** 2 + ((t - 0.5) * disc.height / rw) ** 2 <= 1.0) & between
        _paint(labels, sl, blob, disc.label)
        _paint(material, sl, blob, Material.NUCLUS0 + disc.index)


def _paint_vertebra(vert: Vertebra, grid: Grid, axes, labels, material) -> None:
    boxes = posterior_boxes(vert)
    top = max(vert.ha, vert.hp, vert.hm) + 1.0
    u_ext = max([vert.a] + [bx.u_hi for bx in boxes]) + 1.0
    v_lo = min([-vert.b] + [bx.v_lo for bx in boxes]) - 1.0
    w_lo = min([0.0] + [bx.w_lo - bx.w_shear * (bx.v_hi - bx.v_lo) for bx in boxes]) - 1.0
    bmin, bmax = _world_box(vert, np.array([-u_ext, v_lo, w_lo]), np.array([u_ext, vert.b + 1.0, top]))
    sl = grid.box(bmin, bmax)
    if sl is None:
        return
    u, v, w = _local_coords((vert.rotation, vert.origin), grid, sl, axes)
    outer, inner = body_shapes(vert)
    post = np.zeros(u.shape, dtype=bool)
    for bx in boxes:
        post |= bx.mask(u, v, w)
    # The body's shapes are the costly ones: evaluate them in the body's own box only.
    b_lo, b_hi = _world_box(vert, np.array([-vert.a - 1.0, -vert.b - 1.0, -1.0]),
                            np.array([vert.a + 1.0, vert.b + vert.osteophyte + 1.0, top]))
    sub = grid.box(b_lo, b_hi)
    body = np.zeros(u.shape, dtype=bool)
    trab = np.zeros(u.shape, dtype=bool)
    if sub is not None:
        rel = tuple(slice(max(a.start, b.start) - b.start, min(a.stop, b.stop) - b.start) for a, b in zip(sub, sl, strict=True))
        ub, vb, wb = u[rel], v[rel], w[rel]
        body[rel] = outer.mask(ub, vb, wb)
        trab[rel] = inner.mask(ub, vb, wb)
    _paint(material, sl, post & ~body, Material.POSTERIOR)
    _paint(material, sl, body, Material.CORTICAL)
    _paint(material, sl, trab, Material.TRABECULAR0 + vert.index)
    _paint(labels, sl, body | post, vert.label)


def _paint_canal(spine: Spine, grid: Grid, axes, labels, material) -> None:
    names = list(spine.vertebrae)
    for i, name in enumerate(names):
        vert = spine.vertebrae[name]
        above = spine.discs[f"{names[i - 1]}-{name}"].height if i > 0 else 8.0
        below = spine.discs[f"{name}-{names[i + 1]}"].height if i + 1 < len(names) else 60.0
        canal, sac, nerve = canal_shapes(vert, below, above)
        lo = np.array([-canal.a, canal.centre_v - canal.b, canal.w_lo]) - 1.0
        hi = np.array([canal.a, canal.centre_v + canal.b, canal.w_hi]) + 1.0
        sl = grid.box(*_world_box(vert, lo, hi))
        if sl is None:
            continue
        u, v, w = _local_coords((vert.rotation, vert.origin), grid, sl, axes)
        c = canal.mask(u, v, w)
        _paint(labels, sl, c, CANAL_LABEL)
        _paint(material, sl, c, Material.EPIDURAL_FAT)
        _paint(material, sl, sac.mask(u, v, w), Material.CSF)
        _paint(material, sl, nerve.mask(u, v, w), Material.NERVE)


def _paint_surroundings(spine: Spine, grid: Grid, axes, material: np.ndarray) -> None:
    """Organs and gas over the abdomen's soft tissue, then ribs and iliac wings over anything inside the
    body (:mod:`lumbarlab.phantom.surroundings`); the spine, painted next, stays on top."""
    for solid in solids(spine):
        sl = grid.box(solid.lo, solid.hi)
        if sl is None:
            continue
        x, y, z = axes[0][sl[0]][:, None, None], axes[1][sl[1]][None, :, None], axes[2][sl[2]][None, None, :]
        mask = solid.inside(x, y, z)
        view = material[sl]
        if solid.name.split(":")[0] in ON_SOFT_TISSUE:
            mask &= view == Material.SOFT
        else:
            mask &= view != Material.AIR
        view[mask] = solid.material


def _endplate_band(vert: Vertebra, grid: Grid, axes, material, superior: bool, depth: float):
    """(slices, mask) of the trabecular voxels of ``vert`` within ``depth`` mm of its superior or inferior
    endplate (following the endplate's concavity), or None."""
    lo, hi = _world_box(vert, np.array([-vert.a, -vert.b, -1.0]), np.array([vert.a, vert.b, max(vert.ha, vert.hp) + 1]))
    sl = grid.box(lo, hi)
    if sl is None:
        return None
    u, v, w = _local_coords((vert.rotation, vert.origin), grid, sl, axes)
    dip = vert.concavity * np.clip(1.0 - (u / vert.a) ** 2 - (v / vert.b) ** 2, 0.0, None)
    band = (w >= vert.top(v) - dip - depth) if superior else (w <= dip + depth)
    # marrow of this vertebra (Modic bands painted first stay marrow for the sclerosis band)
    marrow = material[sl] == Material.TRABECULAR0 + vert.index
    marrow |= np.isin(material[sl], (Material.MODIC1, Material.MODIC2)) & band
    return sl, band & marrow


def _paint_degeneration(spine: Spine, grid: Grid, axes, labels, material) -> None:
    """Signs of degeneration next to the discs the case names: Modic marrow (7 mm bands) and sclerosis (3 mm)
    on both sides of a disc, gas in a vacuum disc's nucleus, a Schmorl node through a superior endplate."""
    params = spine.params
    for disc in spine.discs.values():
        for sign, code, depth in (("modic", None, 7.0), ("sclerosis", Material.SCLEROSIS, 3.0)):
            kind = params.modic.get(disc.name) if sign == "modic" else disc.name in params.sclerosis
            if not kind:
                continue
            value = code if code is not None else (Material.MODIC1 if kind == 1 else Material.MODIC2)
            for vert, superior in ((disc.lower, True), (disc.upper, False)):
                found = _endplate_band(vert, grid, axes, material, superior, depth)
                if found is not None:
                    _paint(material, found[0], found[1], value)
        if disc.name in params.vacuum:  # a cleft of gas in the nucleus
            up, lo = disc.upper, disc.lower
            pts = np.array([lo.to_world([0.0, 0.0, (lo.hp + lo.ha) / 2]), up.origin])
            sl = grid.box(pts.min(axis=0) - up.a, pts.max(axis=0) + up.a)
            if sl is not None:
                x, y, z = axes[0][sl[0]][:, None, None], axes[1][sl[1]][None, :, None], axes[2][sl[2]][None, None, :]
                q = disc_coordinates(disc, x, y, z)
                gas = q["between"] & ((q["qu"] / (0.4 * q["a"])) ** 2 + (q["qv"] / (0.25 * q["b"])) ** 2 <= 1.0)
                gas &= (q["t"] > 0.35) & (q["t"] < 0.65)
                _paint(material, sl, gas, Material.AIR)
    names = list(spine.vertebrae)
    for name in params.schmorl:  # nucleus through the superior endplate's centre, 4 mm deep
        vert = spine.vertebrae[name]
        i = names.index(name)
        if i == 0:
            continue
        disc = spine.discs[f"{names[i - 1]}-{name}"]
        centre = np.array([0.0, -0.1 * vert.b, vert.hm - vert.concavity])
        lo, hi = _world_box(vert, centre - 6.0, centre + 6.0)
        sl = grid.box(lo, hi)
        if sl is None:
            continue
        u, v, w = _local_coords((vert.rotation, vert.origin), grid, sl, axes)
        node = (u / 5.0) ** 2 + ((v - centre[1]) / 5.0) ** 2 + ((w - centre[2]) / 4.0) ** 2 <= 1.0
        node &= labels[sl] == vert.label
        _paint(material, sl, node, Material.NUCLUS0 + disc.index)
        _paint(labels, sl, node, disc.label)


def voxelize(spine: Spine, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Label map (uint8, VerSe values) and material map (uint8, :class:`Material`) on ``grid``."""
    axes = grid.axes()
    labels = np.zeros(grid.shape, dtype=np.uint8)
    material = np.zeros(grid.shape, dtype=np.uint8)
    _paint_body_and_muscles(spine, grid, axes, material)
    _paint_surroundings(spine, grid, axes, material)
    adult = spine.params.look.body_shape and spine.params.age >= 30.0
    for disc in spine.discs.values():
        _paint_disc(disc, grid, axes, labels, material, cleft=adult and disc.pfirrmann >= 2)
    for vert in spine.vertebrae.values():
        _paint_vertebra(vert, grid, axes, labels, material)
    _paint_degeneration(spine, grid, axes, labels, material)
    _paint_canal(spine, grid, axes, labels, material)
    for disc in spine.discs.values():
        if disc.herniation > 0:
            _paint_disc(disc, grid, axes, labels, material, herniation_only=True)
    return labels, material
