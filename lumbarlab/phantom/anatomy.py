"""The phantom's skeleton: a kinematic chain of vertebra frames with exact corners.

Each vertebra has a local frame: u towards the patient's right, v anterior, w superior
(along the body axis), with its origin at the centre of the inferior endplate. The chain
starts at S1 (its superior endplate tilted by the sacral slope) and climbs: each disc
adds its lordotic wedge and height, a spondylolisthesis shifts the upper vertebra (and all
above it) along the lower superior endplate, and a lumbar scoliosis tilts the frames in
the coronal plane. Because corners are *defined* here, slip, lordosis, Cobb angle and
heights have exact ground truth that the renderers only draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lumbarlab.phantom.labels import DISC_LABEL, DISCS, VERSE_LABEL, VERTEBRAE
from lumbarlab.phantom.params import PhantomParams

__all__ = ["Vertebra", "Disc", "Spine", "build_spine", "rot_x", "rot_y"]


def rot_x(deg: float) -> np.ndarray:
    """Rotation about +x (patient's right) by ``deg``; positive lifts the anterior end of v."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    """Rotation about +y (anterior) by ``deg``; positive lowers the patient's right side of u."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass
class Vertebra:
    """One vertebra: frame, body size and heights (mm), canal and process sizes.

    The body is an elliptic cylinder (half-width ``a`` along u, half-depth ``b`` along v)
    whose superior surface is piecewise linear in v through the posterior, middle and
    anterior heights ``hp, hm, ha``; its inferior endplate is the plane w = 0.
    """

    name: str
    index: int  # 0 = T12 … 6 = S1
    rotation: np.ndarray  # columns: u, v, w in world
    origin: np.ndarray  # world mm, centre of the inferior endplate
    a: float
    b: float
    hp: float
    hm: float
    ha: float
    sagittal: float  # frame angle about x, degrees
    coronal: float  # frame angle about y, degrees
    canal_ap: float
    canal_hw: float
    spinous_len: float
    transverse_len: float
    cortex: float = 1.5
    height_loss: float = 0.0  # fraction, ground truth of a fracture
    expected_height: float = 0.0  # height before any fracture
    # Clinical realism (0 / False in the teaching preset): see lumbarlab.phantom.shapes.VertebralBody.
    concavity: float = 0.0  # endplate depth at the centre, mm
    waist: float = 0.0  # narrowing of the body at mid-height, fraction
    kidney: float = 0.0  # depth of the posterior-wall notch, mm
    endplate_cortex: float = 1.5  # cortex under the endplates, mm (thinner than the walls in real bone)
    osteophyte: float = 0.0  # anterior rim spur, mm
    lysis: bool = False  # pars interarticularis defect
    detail: bool = False  # articular processes instead of one arch box
    facet_hypertrophy: float = 0.0  # mm added to the articular processes by facet arthrosis
    sacralised: bool = False  # L5 as a transitional vertebra: transverse processes reaching the sacral ala

    @property
    def label(self) -> int:
        return VERSE_LABEL[self.name]

    def top(self, v: np.ndarray) -> np.ndarray:
        """Height of the superior surface above the inferior endplate at AP position v (mm)."""
        v = np.asarray(v, dtype=np.float32)
        t = np.clip(v / self.b, -1.0, 1.0)
        return np.where(t < 0, self.hm + (self.hm - self.hp) * t, self.hm + (self.ha - self.hm) * t)

    def to_local(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, dtype=float) - self.origin) @ self.rotation

    def to_world(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(q, dtype=float) @ self.rotation.T + self.origin

    # Landmarks ---------------------------------------------------------------------------
    def lateral_corners_local(self) -> np.ndarray:
        """Superior-anterior, superior-posterior, inferior-posterior, inferior-anterior (mid-sagittal)."""
        b = self.b
        return np.array([[0, b, self.ha], [0, -b, self.hp], [0, -b, 0.0], [0, b, 0.0]])

    def ap_corners_local(self) -> np.ndarray:
        """Superior-right, superior-left, inferior-left, inferior-right (mid-coronal plane).

        The patient's right (+u) is first because AP radiographs show it on the viewer's left.
        """
        a, h = self.a, self.hm
        return np.array([[a, 0, h], [-a, 0, h], [-a, 0, 0.0], [a, 0, 0.0]])

    def body_centre(self) -> np.ndarray:
        return self.to_world([0.0, 0.0, self.hm / 2])

    def superior_direction(self) -> tuple[np.ndarray, np.ndarray, float]:
        """World unit vectors along (posterior→anterior) and normal to the superior endplate, and its length."""
        d = np.array([0.0, 2 * self.b, self.ha - self.hp])
        length = float(np.linalg.norm(d))
        n = np.array([0.0, -(self.ha - self.hp), 2 * self.b]) / length
        return self.rotation @ (d / length), self.rotation @ n, length


@dataclass
class Disc:
    """An intervertebral disc between ``lower`` and ``upper`` vertebrae."""

    name: str
    index: int  # 0 = T12-L1 … 5 = L5-S1
    upper: Vertebra
    lower: Vertebra
    height: float  # mid-disc height, mm (after degeneration)
    wedge: float  # sagittal wedge, degrees
    pfirrmann: int
    herniation: float  # mm of posterior protrusion

    @property
    def label(self) -> int:
        return DISC_LABEL[self.name]


@dataclass
class Spine:
    """All vertebrae (top to bottom), discs (top to bottom) and the soft-tissue layout."""

    vertebrae: dict[str, Vertebra]
    discs: dict[str, Disc]
    params: PhantomParams
    body_centre_y: float
    body_half_lr: float
    body_half_ap: float
    fat: float

    def centre_line(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Body centres (x, y, z) of the vertebrae sorted by z, for interpolating soft tissue."""
        pts = np.array([v.body_centre() for v in self.vertebrae.values()])
        order = np.argsort(pts[:, 2])
        return pts[order, 0], pts[order, 1], pts[order, 2]

    def posterior_extent(self) -> float:
        """Most posterior y of any spinous process tip (mm)."""
        ys = []
        for v in self.vertebrae.values():
            tip = v.to_world([0.0, -v.b - v.canal_ap - 7 - v.spinous_len, 0.4 * v.hp])
            ys.append(tip[1])
        return float(min(ys))


def _scoliosis_tilts(params: PhantomParams) -> dict[str, float]:
    """Coronal tilt per vertebra for a T12–L5 C-curve whose end-vertebra tilts differ by ``cobb``.

    The tilt follows (cobb/2)·cos(π s), s = 0 at L5 … 1 at T12, so L5 and T12 are the end
    vertebrae and the apex lies at L2–L3; S1 stays level.
    """
    names = VERTEBRAE[:-1]  # T12 … L5
    sign = 1.0 if params.scoliosis_side == "right" else -1.0
    tilts = {"S1": 0.0}
    for i, name in enumerate(names):
        s = 1.0 - i / (len(names) - 1)  # T12 → 1, L5 → 0
        tilts[name] = sign * params.cobb / 2 * math.cos(math.pi * s)
    return tilts


def _heights(params: PhantomParams, name: str) -> tuple[float, float, float, float]:
    """Posterior, middle, anterior body heights after any fracture, and the fraction lost."""
    h = params.body_height(name)
    wedge = params.body_wedge(name)
    hp, ha = h - wedge / 2, h + wedge / 2
    hm = (hp + ha) / 2
    loss = params.fracture.get(name, 0.0) / 100.0
    if loss > 0:
        kind = params.fracture_type
        if kind == "wedge":  # anterior height lost relative to the posterior wall
            ha = hp * (1 - loss)
            hm = (hp + ha) / 2
        elif kind == "biconcave":  # middle height lost, walls kept
            hm = min(hp, ha) * (1 - loss)
        else:  # crush: the whole body loses height
            hp, hm, ha = hp * (1 - loss), hm * (1 - loss), ha * (1 - loss)
    return hp, hm, ha, loss


def build_spine(params: PhantomParams) -> Spine:
    """Place T12–S1 and the discs in world mm from ``params`` (S1's superior endplate centre at 0)."""
    tilts = _scoliosis_tilts(params)
    spinous = dict(zip(VERTEBRAE, (26, 28, 30, 30, 28, 22, 14), strict=True))
    transverse = dict(zip(VERTEBRAE, (8, 15, 20, 25, 20, 18, 0), strict=True))
    canal_hw = dict(zip(VERTEBRAE, (9.0, 10.5, 11.0, 11.5, 12.0, 12.5, 12.5), strict=True))
    s = params.scale
    look = params.look
    shape_rng = np.random.default_rng([params.seed, 0xE9D])  # its own stream: the chain stays the same
    concavity = {n: float(shape_rng.uniform(1.0, 2.0)) * s if look.body_shape else 0.0 for n in VERTEBRAE}
    # Shape variability beyond size: waist, posterior notch and process lengths differ per vertebra, so no
    # two cases share an outline (clinical preset only; drawn after the concavities, keeping them).
    waist = {n: float(shape_rng.uniform(0.03, 0.09)) for n in VERTEBRAE}
    kidney = {n: float(shape_rng.uniform(0.8, 2.2)) for n in VERTEBRAE}
    process = {n: float(np.clip(shape_rng.normal(1.0, 0.12), 0.75, 1.25)) for n in VERTEBRAE}
    if not look.body_shape:
        process = {n: 1.0 for n in VERTEBRAE}

    def make(name: str, sagittal: float, origin: np.ndarray | None) -> Vertebra:
        hp, hm, ha, loss = _heights(params, name)
        rot = rot_y(tilts[name]) @ rot_x(sagittal)
        v = Vertebra(
            name=name, index=VERTEBRAE.index(name), rotation=rot, origin=np.zeros(3),
            a=params.half_width(name), b=params.half_depth(name), hp=hp, hm=hm, ha=ha,
            sagittal=sagittal, coronal=tilts[name], canal_ap=params.canal_diameter,
            canal_hw=canal_hw[name] * s, spinous_len=spinous[name] * s * process[name],
            transverse_len=transverse[name] * s * process[name], height_loss=loss,
            expected_height=params.body_height(name),
            concavity=concavity[name], waist=waist[name] if look.body_shape else 0.0,
            kidney=kidney[name] * s if look.body_shape and name != "S1" else 0.0,
            cortex=1.5, endplate_cortex=0.8 if look.body_shape else 1.5,
            osteophyte=params.osteophytes.get(name, 0.0) if look.posterior_detail else 0.0,
            lysis=look.posterior_detail and name in params.spondylolysis, detail=look.posterior_detail,
            facet_hypertrophy=2.0 * s if look.posterior_detail and name in params.facet_arthrosis else 0.0,
            sacralised=name == "L5" and params.transitional == "sacralised_L5",
        )
        v.origin = origin if origin is not None else -(rot @ np.array([0.0, 0.0, (hp + ha) / 2]))
        return v

    sacrum = make("S1", -params.sacral_slope, None)
    placed = {"S1": sacrum}
    discs: dict[str, Disc] = {}
    lower = sacrum
    for name in reversed(VERTEBRAE[:-1]):  # L5, L4, … T12
        disc_name = f"{name}-{lower.name}"
        wedge = params.disc_wedge[disc_name]
        body_wedge = math.degrees(math.atan2(lower.ha - lower.hp, 2 * lower.b))
        sagittal = lower.sagittal + body_wedge + wedge
        d_lower, n_lower, length = lower.superior_direction()
        dm = params.disc_height_after_degeneration(disc_name)
        b_up = params.half_depth(name)
        dp = max(dm - b_up * math.sin(math.radians(wedge)), 1.0)
        slip_mm = params.slip.get(name, 0.0) / 100.0 * length
        corner = lower.to_world([0.0, -lower.b, lower.hp]) + dp * n_lower + slip_mm * d_lower
        rot = rot_y(tilts[name]) @ rot_x(sagittal)
        upper = make(name, sagittal, corner + b_up * rot[:, 1])
        placed[name] = upper
        discs[disc_name] = Disc(
            name=disc_name, index=DISCS.index(disc_name), upper=upper, lower=lower, height=dm,
            wedge=wedge, pfirrmann=params.pfirrmann[disc_name],
            herniation=params.herniation.get(disc_name, 0.0),
        )
        lower = upper

    vertebrae = {n: placed[n] for n in VERTEBRAE}
    discs = {d: discs[d] for d in DISCS}
    spine = Spine(vertebrae, discs, params, 0.0, 160.0 * s, 110.0 * s, params.fat_thickness)
    # The back's skin lies a muscle layer behind the spinous tips; the body ellipse hangs from it.
    skin_y = spine.posterior_extent() - 12.0 * s - params.fat_thickness
    spine.body_centre_y = skin_y + spine.body_half_ap
    return spine
