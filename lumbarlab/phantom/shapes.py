"""Solid primitives in a vertebra's local frame (u right, v anterior, w superior), in mm.

Each primitive answers two questions: ``mask(u, v, w)`` — which points lie inside (used by
the 3D voxelizer) — and ``chord_u(v, w)`` — how long a ray along u travels inside (used by
the fast lateral radiograph, which needs path lengths, not voxels). Keeping both on one
object keeps the 3D volumes and the fast 2D images the same anatomy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarlab.phantom.anatomy import Vertebra

__all__ = ["Box", "EllipticBody", "posterior_boxes", "body_shapes", "canal_shapes"]


@dataclass(frozen=True)
class Box:
    """A box symmetric about u = 0 (``u_lo ≤ |u| ≤ u_hi``), with optional shear and taper.

    ``w_shear`` lowers the w bounds by ``w_shear`` mm per mm posterior of ``v_hi`` (a spinous
    process pointing down); ``u_taper`` narrows ``u_hi`` by that fraction per mm below w = 0
    (the sacrum tapering towards the coccyx).
    """

    u_lo: float
    u_hi: float
    v_lo: float
    v_hi: float
    w_lo: float
    w_hi: float
    w_shear: float = 0.0
    u_taper: float = 0.0

    def _vw_inside(self, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        shift = self.w_shear * (self.v_hi - v) if self.w_shear else 0.0
        return (v >= self.v_lo) & (v <= self.v_hi) & (w >= self.w_lo - shift) & (w <= self.w_hi - shift)

    def _u_hi(self, w: np.ndarray) -> np.ndarray | float:
        if not self.u_taper:
            return self.u_hi
        return self.u_hi * np.clip(1.0 + self.u_taper * np.minimum(w, 0.0), 0.0, 1.0)

    def mask(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        au = np.abs(u)
        return self._vw_inside(v, w) & (au >= self.u_lo) & (au <= self._u_hi(w))

    def chord_u(self, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        width = np.maximum(2.0 * (self._u_hi(w) - self.u_lo), 0.0)
        return np.where(self._vw_inside(v, w), width, 0.0).astype(np.float32)


@dataclass(frozen=True)
class EllipticBody:
    """An elliptic cylinder along w: half-axes (a, b), from ``w_lo`` up to ``top(v) - inset_top``.

    ``centre_v`` shifts the ellipse along v (a canal behind the body); ``top`` is the
    vertebra's superior surface profile, or None for a flat top at ``w_hi``.
    """

    a: float
    b: float
    w_lo: float
    w_hi: float
    centre_v: float = 0.0
    vertebra: Vertebra | None = None
    inset_top: float = 0.0

    def _w_inside(self, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        hi = self.vertebra.top(v) - self.inset_top if self.vertebra is not None else self.w_hi
        return (w >= self.w_lo) & (w <= hi)

    def mask(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        r = (u / self.a) ** 2 + ((v - self.centre_v) / self.b) ** 2
        return (r <= 1.0) & self._w_inside(v, w)

    def chord_u(self, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        q = 1.0 - ((v - self.centre_v) / self.b) ** 2
        chord = 2.0 * self.a * np.sqrt(np.maximum(q, 0.0))
        return np.where(self._w_inside(v, w), chord, 0.0).astype(np.float32)


def body_shapes(vert: Vertebra) -> tuple[EllipticBody, EllipticBody]:
    """The vertebral body (outer, cortical surface) and its trabecular core."""
    c = vert.cortex
    outer = EllipticBody(vert.a, vert.b, 0.0, 0.0, vertebra=vert)
    inner = EllipticBody(vert.a - c, vert.b - c, c, 0.0, vertebra=vert, inset_top=c)
    return outer, inner


def posterior_boxes(vert: Vertebra) -> list[Box]:
    """Simplified posterior elements: a neural-arch ring (pedicles + lamina, the canal is carved
    out later), a spinous process sloping down, transverse processes; for S1 the alae and the
    lower sacrum instead of transverse processes."""
    b, h, cap, chw = vert.b, vert.hp, vert.canal_ap, vert.canal_hw
    arch_back = -b - cap - 7.0
    boxes = [
        Box(0.0, chw + 6.0, arch_back, -b + 1.0, 0.15 * h, 0.85 * h),  # pedicles + lamina
        Box(0.0, 3.0, arch_back - vert.spinous_len, arch_back + 2.0, 0.1 * h, 0.7 * h, w_shear=0.35),
    ]
    if vert.name == "S1":
        boxes.append(Box(0.6 * vert.a, vert.a + 22.0, -b + 2.0, 0.5 * b, 0.1 * h, 0.95 * h))  # alae
        boxes.append(Box(0.0, 0.75 * vert.a, -b - 6.0, 0.55 * b, -50.0, 0.0, u_taper=1 / 70))  # S2–S5
    elif vert.transverse_len > 0:
        boxes.append(Box(chw + 5.0, chw + 5.0 + vert.transverse_len, -b - 12.0, -b - 3.0, 0.45 * h, 0.7 * h))
    return boxes


def canal_shapes(vert: Vertebra, below: float, above: float) -> tuple[EllipticBody, EllipticBody, EllipticBody]:
    """Canal (epidural fat boundary), thecal sac (CSF) and cauda equina behind this vertebra.

    The segment spans from half the disc below to half the disc above (plus 2 mm overlap,
    so neighbouring segments join without a gap).
    """
    cv = vert.canal_ap / 2.0
    centre = -vert.b - cv
    w_lo, w_hi = -below / 2 - 2.0, max(vert.ha, vert.hp) + above / 2 + 2.0
    canal = EllipticBody(vert.canal_hw, cv, w_lo, w_hi, centre_v=centre)
    sac = EllipticBody(0.8 * vert.canal_hw, 0.8 * cv, w_lo, w_hi, centre_v=centre)
    nerve = EllipticBody(0.45 * vert.canal_hw, 0.35 * cv, w_lo, w_hi, centre_v=centre - 0.25 * cv)
    return canal, sac, nerve
