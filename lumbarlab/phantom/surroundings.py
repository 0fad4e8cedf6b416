"""What lies around the lumbar spine in a clinical case: iliac wings, the last ribs, kidneys, liver and
spleen tips, aorta and IVC, and bowel gas. World mm, RAS+ (x to the patient's right, y anterior, z up).

Each structure is a :class:`Solid`: a material, a world bounding box and an ``inside(x, y, z)`` test on
broadcastable coordinate arrays. The voxelizer paints them on its grid; the fast lateral radiograph
rasterises the same solids on a coarse grid and sums along x — one geometry for both.

Anatomy it follows (sizes scale with the case's ``scale``):
    - the iliac crests' highest points lie at the L4–L5 disc, ± about a vertebral body (the
      intercristal line radiologists count from; Chakraverty et al., J Anat 2007: L4–L5 or L4 in most
      adults); the wings flare anterolaterally from the sacroiliac joints beside the sacral alae;
    - the 12th rib leaves T12 posterolaterally and is short (floating); the 11th runs longer and lower
      at its front; 11 rib pairs leave T12 bare, 13 put a short rib on L1 (``PhantomParams.rib_pairs``);
    - kidneys beside the psoas from T12 to L3, the right one lower; the aorta left of the midline in
      front of the bodies down to its bifurcation at L4, the IVC on the right down to L5;
    - gas pockets of the bowel in the abdomen in front of the spine, their number drawn per case.

Example:
    >>> from lumbarlab.phantom.anatomy import build_spine
    >>> from lumbarlab.phantom.params import sample_params
    >>> sorted({s.name.split(":")[0] for s in solids(build_spine(sample_params(3)))})
    ['aorta', 'gas', 'ilium', 'ivc', 'kidney', 'liver', 'rib', 'spleen']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lumbarlab.phantom.anatomy import Spine
from lumbarlab.phantom.labels import Material

__all__ = ["Solid", "solids", "rib_carriers", "iliac_crest_z", "ON_SOFT_TISSUE", "line_integrals"]

#: Names of the solids painted only over the lumped abdominal soft tissue (organs and gas sit in the
#: abdomen, never inside a muscle or a bone).
ON_SOFT_TISSUE = ("gas", "kidney", "liver", "spleen", "aorta", "ivc")


@dataclass(frozen=True)
class Solid:
    """One structure: ``inside(x, y, z)`` on world mm arrays, ``lo``/``hi`` its world bounding box."""

    name: str
    material: int
    lo: np.ndarray
    hi: np.ndarray
    inside: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def rib_carriers(rib_pairs: int) -> list[str]:
    """Vertebrae in the phantom's field that carry ribs: T11 (drawn above T12) and T12 for 12 pairs.

    Example:
        >>> rib_carriers(12), rib_carriers(11), rib_carriers(13)
        (['T11', 'T12'], ['T11'], ['T11', 'T12', 'L1'])
    """
    return {11: ["T11"], 12: ["T11", "T12"], 13: ["T11", "T12", "L1"]}[int(rib_pairs)]


def iliac_crest_z(spine: Spine) -> float:
    """World z (mm) of the iliac crests' highest points: the L4–L5 disc's centre plus a per-case offset
    (normal, SD 6 mm, within ±12 mm).

    Example:
        >>> from lumbarlab.phantom.anatomy import build_spine
        >>> from lumbarlab.phantom.params import sample_params
        >>> spine = build_spine(sample_params(3))
        >>> disc = spine.discs["L4-L5"]
        >>> centre = 0.5 * (disc.upper.origin[2] + disc.lower.to_world([0.0, 0.0, disc.lower.hm])[2])
        >>> bool(abs(iliac_crest_z(spine) - centre) <= 12.0)
        True
    """
    disc = spine.discs["L4-L5"]
    centre = 0.5 * (disc.upper.origin + disc.lower.to_world([0.0, 0.0, disc.lower.hm]))
    offset = float(np.clip(np.random.default_rng([spine.params.seed, 0x11C]).normal(0.0, 6.0), -12.0, 12.0))
    return float(centre[2]) + offset


def _ilium(spine: Spine, side: float) -> Solid:
    s = spine.params.scale
    s1 = spine.vertebrae["S1"]
    x_si, x_out, x_peak = s1.a + 16.0 * s, 125.0 * s, 85.0 * s
    z_crest = iliac_crest_z(spine)
    z_low = z_crest - 130.0 * s
    y_si = float(s1.to_world([0.0, -s1.b, 0.0])[1]) + 3.0 * s

    def inside(x, y, z):
        ax = side * x
        z_top = z_crest - 25.0 * s * ((ax - x_peak) / (45.0 * s)) ** 2
        thick = 7.0 * s + 8.0 * s * np.clip(1.0 - (z_top - z) / (10.0 * s), 0.0, 1.0)  # the crest is thicker
        y_plate = y_si + 0.7 * (ax - x_si)
        return (ax >= x_si) & (ax <= x_out) & (z <= z_top) & (z >= z_low) & (np.abs(y - y_plate) <= thick / 2)

    xs = sorted((side * x_si, side * x_out))
    lo = np.array([xs[0], y_si - 8.0 * s, z_low])
    hi = np.array([xs[1], y_si + 0.7 * (x_out - x_si) + 8.0 * s, z_crest])
    return Solid(f"ilium:{'right' if side > 0 else 'left'}", Material.PELVIS, lo, hi, inside)


def _polyline_tube(points: np.ndarray, radius: float) -> Callable:
    a, d = points[:-1], np.diff(points, axis=0)
    length2 = np.maximum((d**2).sum(axis=1), 1e-9)

    def inside(x, y, z):
        best = None
        for (ax, ay, az), (dx, dy, dz), l2 in zip(a, d, length2, strict=True):
            px, py, pz = x - ax, y - ay, z - az
            t = np.clip((px * dx + py * dy + pz * dz) / l2, 0.0, 1.0)
            dist2 = (px - t * dx) ** 2 + (py - t * dy) ** 2 + (pz - t * dz) ** 2
            best = dist2 if best is None else np.minimum(best, dist2)
        return best <= radius**2

    return inside


def _rib(spine: Spine, carrier: str, side: float) -> Solid:
    s = spine.params.scale
    host = spine.vertebrae["T12" if carrier == "T11" else carrier]
    lift = host.hp + 7.0 * s if carrier == "T11" else 0.0  # T11 sits a body and a disc above T12
    start = host.to_world([side * (host.a + 2.0), -host.b + 3.0, 0.65 * host.hp + lift])
    # (end angle, drop): the floating 12th rib is short, the 11th longer; a lumbar rib is a stub.
    end, drop = {"T11": (115.0, 50.0), "T12": (70.0, 35.0), "L1": (0.0, 8.0)}[carrier]
    phi0 = np.radians(-25.0)
    phi = np.radians(np.linspace(-25.0, end, 8))
    rx, ry = 95.0 * s, 80.0 * s
    pts = np.stack([
        start[0] + side * rx * (np.sin(phi) - np.sin(phi0)),
        start[1] + ry * (np.cos(phi0) - np.cos(phi)),
        start[2] - drop * s * (phi - phi0) / (phi[-1] - phi0),
    ], axis=1)
    r = 5.0 * s
    return Solid(f"rib:{carrier}:{'right' if side > 0 else 'left'}", Material.RIB,
                 pts.min(axis=0) - r, pts.max(axis=0) + r, _polyline_tube(pts, r))


def _ellipsoid(name: str, material: int, centre, radii) -> Solid:
    c, r = np.asarray(centre, dtype=float), np.asarray(radii, dtype=float)

    def inside(x, y, z):
        return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1.0

    return Solid(name, material, c - r, c + r, inside)


def _vessel(spine: Spine, name: str, material: int, x: float, radii: tuple[float, float], z_end: float,
            z_top: float) -> Solid:
    """A tube along z in front of the vertebral bodies (its centre 14 mm in front of them)."""
    verts = sorted(spine.vertebrae.values(), key=lambda v: v.body_centre()[2])
    zc = np.array([v.body_centre()[2] for v in verts])
    front = np.array([v.to_world([0.0, v.b, v.hm / 2])[1] for v in verts])
    s = spine.params.scale
    rx, ry = radii

    def inside(xx, yy, zz):
        yc = np.interp(zz, zc, front) + 14.0 * s + ry
        return (((xx - x) / rx) ** 2 + ((yy - yc) / ry) ** 2 <= 1.0) & (zz >= z_end) & (zz <= z_top)

    lo = np.array([x - rx, front.min() + 14.0 * s, z_end])
    hi = np.array([x + rx, front.max() + 14.0 * s + 2 * ry, z_top])
    return Solid(name, material, lo, hi, inside)


def solids(spine: Spine) -> list[Solid]:
    """The surroundings of ``spine`` in painting order (organs, gas, then bone); empty unless the case's
    realism asks for them."""
    params = spine.params
    if not params.look.surroundings:
        return []
    s = params.scale
    v = spine.vertebrae
    out: list[Solid] = []
    t12, l1, l3 = v["T12"].body_centre(), v["L1"].body_centre(), v["L3"].body_centre()
    top = float(v["T12"].to_world([0.0, 0.0, v["T12"].hp])[2]) + 60.0 * s
    for side in (1.0, -1.0):  # kidneys beside the psoas, the right one 15 mm lower
        zc = 0.5 * (l1[2] + l3[2]) + (10.0 * s if side < 0 else -5.0 * s)
        out.append(_ellipsoid(f"kidney:{'right' if side > 0 else 'left'}", Material.KIDNEY,
                              (side * 68.0 * s, l1[1] - 12.0 * s, zc), (26.0 * s, 20.0 * s, 52.0 * s)))
    out.append(_ellipsoid("liver", Material.LIVER, (75.0 * s, t12[1] + 25.0 * s, t12[2] + 35.0 * s),
                          (65.0 * s, 60.0 * s, 45.0 * s)))
    out.append(_ellipsoid("spleen", Material.LIVER, (-80.0 * s, t12[1] - 5.0 * s, t12[2] + 40.0 * s),
                          (35.0 * s, 45.0 * s, 40.0 * s)))
    out.append(_vessel(spine, "aorta", Material.AORTA, -16.0 * s, (11.0 * s, 11.0 * s), v["L4"].body_centre()[2],
                       top))
    out.append(_vessel(spine, "ivc", Material.IVC, 22.0 * s, (13.0 * s, 9.0 * s), v["L5"].body_centre()[2], top))
    rng = np.random.default_rng([params.seed, 0x6A5])
    front = max(vt.to_world([0.0, vt.b, vt.hm / 2])[1] for vt in v.values())
    y_lo, y_hi = front + 30.0 * s, spine.body_centre_y + 0.7 * spine.body_half_ap
    z_lo = float(v["S1"].origin[2]) - 40.0 * s
    for k in range(int(params.acquisition.get("gas_pockets", 0))):
        centre = (rng.uniform(-0.6, 0.6) * spine.body_half_lr, rng.uniform(y_lo, max(y_hi, y_lo + 1.0)),
                  rng.uniform(z_lo, top))
        out.append(_ellipsoid(f"gas:{k}", Material.AIR, centre, rng.uniform(6.0, 22.0, size=3) * s))
    for carrier in rib_carriers(params.rib_pairs):
        for side in (1.0, -1.0):
            out.append(_rib(spine, carrier, side))
    for side in (1.0, -1.0):
        out.append(_ilium(spine, side))
    return out


def line_integrals(items: list[Solid], delta_mu: dict[int, float], ray_axis: int, ray_range: tuple[float, float],
                   across: np.ndarray, up: np.ndarray, skip: tuple[float, float] | None = None,
                   step: float = 4.0) -> np.ndarray:
    """Σ (μ − μ_soft) · path of ``items`` along rays parallel to world axis ``ray_axis`` (0 = x for a
    lateral view, 1 = y for an AP view), on a coarse grid of ``step`` mm, sampled at the detector positions
    ``across`` (world mm along the other horizontal axis) × ``up`` (world z); shape (len(across), len(up)).
    Ray positions inside ``skip`` are left out (a CT grid that already holds them).

    Example:
        >>> from lumbarlab.phantom.labels import Material
        >>> ball = _ellipsoid("gas:0", Material.AIR, (0.0, 0.0, 0.0), (10.0, 10.0, 10.0))
        >>> p = line_integrals([ball], {Material.AIR: -0.02}, 0, (-50.0, 50.0), np.array([0.0]), np.array([0.0]),
        ...                    step=0.5)
        >>> round(float(p[0, 0]) / -0.02, 1)  # the ball's 20 mm diameter, sampled every 0.5 mm
        20.5
    """
    if not items:
        return np.zeros((len(across), len(up)), dtype=np.float32)
    other = 1 - ray_axis  # the horizontal axis across the detector
    ray = np.arange(ray_range[0], ray_range[1] + step, step, dtype=np.float32)
    if skip is not None:
        ray = ray[(ray < skip[0]) | (ray > skip[1])]
    a_axis = np.arange(across.min() - step, across.max() + 2 * step, step, dtype=np.float32)
    u_axis = np.arange(up.min() - step, up.max() + 2 * step, step, dtype=np.float32)
    total = np.zeros((a_axis.size, u_axis.size), dtype=np.float32)
    for item in items:
        dmu = delta_mu.get(item.material, 0.0)
        if dmu == 0.0:
            continue
        r_sel = ray[(ray >= item.lo[ray_axis]) & (ray <= item.hi[ray_axis])]
        a_sel = np.nonzero((a_axis >= item.lo[other]) & (a_axis <= item.hi[other]))[0]
        u_sel = np.nonzero((u_axis >= item.lo[2]) & (u_axis <= item.hi[2]))[0]
        if not (r_sel.size and a_sel.size and u_sel.size):
            continue
        coords = [None, None, u_axis[u_sel][None, None, :]]
        coords[ray_axis] = r_sel[:, None, None]
        coords[other] = a_axis[a_sel][None, :, None]
        path = item.inside(*coords).sum(axis=0, dtype=np.float32) * np.float32(step)
        total[a_sel[0]:a_sel[-1] + 1, u_sel[0]:u_sel[-1] + 1] += np.float32(dmu) * path
    # Linear interpolation to the detector positions, one small matrix per axis (separable).
    return (_interpolation_matrix(across, a_axis) @ total @ _interpolation_matrix(up, u_axis).T).astype(np.float32)


def _interpolation_matrix(at: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Rows of linear-interpolation weights of the regular ``axis`` at positions ``at`` (clamped)."""
    pos = np.clip((np.asarray(at, dtype=np.float64) - axis[0]) / (axis[1] - axis[0]), 0, axis.size - 1.000001)
    i0 = np.floor(pos).astype(int)
    frac = pos - i0
    out = np.zeros((pos.size, axis.size), dtype=np.float32)
    out[np.arange(pos.size), i0] = 1.0 - frac
    out[np.arange(pos.size), i0 + 1] += frac
    return out
