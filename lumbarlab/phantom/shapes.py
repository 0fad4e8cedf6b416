"""Solid primitives in a vertebra's local frame (u right, v anterior, w superior), in mm.

Every primitive is symmetric about the mid-sagittal plane and answers one question,
``u_range(v, w) -> (lo, hi)``: along a line of constant (v, w) it holds the points with
lo ≤ |u| ≤ hi (nothing where hi ≤ lo). From that one answer come ``mask(u, v, w)`` — which
points lie inside (the 3D voxelizer) — ``chord_u(v, w)`` — how long a ray along u travels inside
(the fast lateral radiograph) — and ``chord_slab(v, w, u0, u1)``, the part of that chord within
u0 ≤ u ≤ u1 (the fast radiograph's point-source geometry, where each slab of the patient is
magnified and shifted by its own amount). One answer for all three keeps the 3D volumes and the
fast 2D images the same anatomy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarlab.phantom.anatomy import Vertebra

__all__ = ["Box", "EllipticBody", "VertebralBody", "posterior_boxes", "body_shapes", "canal_shapes", "slab_overlap"]


def slab_overlap(lo: np.ndarray, hi: np.ndarray, u0: float, u1: float) -> np.ndarray:
    """Length (mm) of {lo ≤ |u| ≤ hi} within u0 ≤ u ≤ u1: the two mirrored intervals [lo, hi] and
    [-hi, -lo] clipped to the slab.

    Example:
        >>> float(slab_overlap(np.float32(2.0), np.float32(5.0), -10.0, 3.0))
        4.0
    """
    right = np.maximum(np.minimum(hi, u1) - np.maximum(lo, u0), 0.0)
    left = np.maximum(np.minimum(-lo, u1) - np.maximum(-hi, u0), 0.0)
    return (right + left).astype(np.float32, copy=False)


class _Symmetric:
    """Mask and chords of a primitive from its ``u_range``."""

    def u_range(self, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def mask(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        lo, hi = self.u_range(v, w)
        au = np.abs(u)
        return (au >= lo) & (au <= hi)

    def chord_u(self, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        lo, hi = self.u_range(v, w)
        return (2.0 * np.clip(hi - lo, 0.0, None)).astype(np.float32)

    def chord_slab(self, v: np.ndarray, w: np.ndarray, u0: float, u1: float) -> np.ndarray:
        lo, hi = self.u_range(v, w)
        return slab_overlap(lo, np.maximum(hi, lo), u0, u1)


@dataclass(frozen=True)
class Box(_Symmetric):
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

    def u_range(self, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inside = self._vw_inside(v, w)
        hi = np.where(inside, self._u_hi(w), 0.0).astype(np.float32)
        lo = np.where(inside, np.float32(self.u_lo), np.float32(1.0)).astype(np.float32)
        return lo, hi


@dataclass(frozen=True)
class EllipticBody(_Symmetric):
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

    def u_range(self, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = 1.0 - ((v - self.centre_v) / self.b) ** 2
        inside = self._w_inside(v, w) & (q >= 0.0)
        hi = np.where(inside, self.a * np.sqrt(np.maximum(q, 0.0)), -1.0).astype(np.float32)
        return np.zeros_like(hi), hi


@dataclass(frozen=True)
class VertebralBody(_Symmetric):
    """A vertebral body as real ones are shaped (the clinical preset), or its trabecular core.

    - Axial outline: an ellipse in front, a flatter (superelliptic, exponent 3) posterior wall with a
      shallow central notch of ``kidney`` mm — the kidney shape of the axial section.
    - Waist: the outline shrinks by ``waist`` (a fraction) at mid-height and not at the rims.
    - Endplates: concave, a paraboloid ``concavity · (1 − ρ²)`` deep (ρ the normalised radius), so the
      rim (the ring apophysis) stands above the centre; ``inset_wall`` and ``inset_end`` shrink the
      shape into its trabecular core, the cortex being thinner under the endplates than at the walls.
    - Osteophytes: the anterior rim flares by ``osteophyte`` mm at both endplates.

    :meth:`chords_with_hull` also gives the chord of the flat-endplate hull (the fast radiograph fills the
    difference with disc). The lateral corner landmarks stay at (0, ±b, rim height): the rims are where the
    concavity and the waist vanish.
    """

    vertebra: Vertebra
    inset_wall: float = 0.0
    inset_end: float = 0.0

    def u_range(self, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, lo_concave, hi = self._ranges(v, w)
        return lo_concave, hi

    def chords_with_hull(self, v: np.ndarray, w: np.ndarray, u0: float, u1: float) -> tuple[np.ndarray, np.ndarray]:
        """Chords within the slab u0…u1 of this shape and of its flat-endplate hull, from one evaluation."""
        lo_flat, lo_concave, hi = self._ranges(v, w)
        return (slab_overlap(lo_concave, np.maximum(hi, lo_concave), u0, u1),
                slab_overlap(lo_flat, np.maximum(hi, lo_flat), u0, u1))

    def _ranges(self, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        vt = self.vertebra
        top = vt.top(v)
        t = np.clip(w / np.maximum(top, 1e-3), 0.0, 1.0)
        g = 1.0 - vt.waist * 4.0 * t * (1.0 - t)
        a = (vt.a - self.inset_wall) * g
        b = (vt.b - self.inset_wall) * g
        if vt.osteophyte > 0:  # anterior lip, tapering away from each endplate over 2.5× its length
            rim = np.minimum(w, top - w)
            b_front = b + vt.osteophyte * np.clip(1.0 - rim / (2.5 * vt.osteophyte), 0.0, 1.0)
        else:
            b_front = b
        ant = np.maximum(v / b_front, 0.0)
        post = np.maximum(-v / b, 0.0)
        hi = np.where(v >= 0, a * np.sqrt(np.maximum(1.0 - ant**2, 0.0)), a * np.cbrt(np.maximum(1.0 - post**3, 0.0)))
        inside = (w >= self.inset_end) & (w <= top - self.inset_end) & (ant <= 1.0) & (post <= 1.0)
        lo = np.zeros_like(hi)
        if vt.kidney > 0:
            depth = (v + b) / vt.kidney
            lo = np.maximum(lo, 0.4 * vt.a * np.sqrt(np.clip(1.0 - depth, 0.0, 1.0)))
        lo_concave = lo
        if vt.concavity > 0:
            rho2 = (v / vt.b) ** 2
            below = 1.0 - rho2 - (w - self.inset_end) / vt.concavity
            above = 1.0 - rho2 - (top - self.inset_end - w) / vt.concavity
            lo_concave = np.maximum(lo, vt.a * np.sqrt(np.maximum(np.maximum(below, above), 0.0)))
        hi = np.where(inside, hi, -1.0).astype(np.float32)
        return lo.astype(np.float32), lo_concave.astype(np.float32), hi


def body_shapes(vert: Vertebra) -> tuple[_Symmetric, _Symmetric]:
    """The vertebral body (outer, cortical surface) and its trabecular core: elliptic cylinders in the
    teaching preset, :class:`VertebralBody` shapes when the vertebra carries clinical realism."""
    c = vert.cortex
    if vert.concavity > 0 or vert.waist > 0 or vert.kidney > 0 or vert.osteophyte > 0:
        return VertebralBody(vert), VertebralBody(vert, inset_wall=c, inset_end=vert.endplate_cortex)
    outer = EllipticBody(vert.a, vert.b, 0.0, 0.0, vertebra=vert)
    inner = EllipticBody(vert.a - c, vert.b - c, c, 0.0, vertebra=vert, inset_top=c)
    return outer, inner


def posterior_boxes(vert: Vertebra) -> list[Box]:
    """Posterior elements. The first box is always the neural arch the canal is carved from.

    Teaching: a neural-arch ring (pedicles + lamina), a spinous process sloping down, transverse
    processes; for S1 the alae and the lower sacrum instead of transverse processes.

    Clinical (``vert.detail``): the arch starts higher (pedicles leave the upper half of the body),
    superior articular processes rise above it and inferior articular processes hang below it, lateral
    to the canal, so that each inferior process meets the superior process of the vertebra below as a
    facet joint; the pars interarticularis joins the inferior process to the arch and a spondylolysis
    (``vert.lysis``) is a 2 mm gap there.
    """
    b, h, cap, chw = vert.b, vert.hp, vert.canal_ap, vert.canal_hw
    arch_back = -b - cap - 7.0
    arch_lo = 0.3 * h if vert.detail else 0.15 * h
    boxes = [
        Box(0.0, chw + 6.0, arch_back, -b + 1.0, arch_lo, 0.85 * h),  # pedicles + lamina
        Box(0.0, 3.0, arch_back - vert.spinous_len, arch_back + 2.0, 0.1 * h, 0.7 * h, w_shear=0.35),
    ]
    if vert.name == "S1":
        boxes.append(Box(0.6 * vert.a, vert.a + 22.0, -b + 2.0, 0.5 * b, 0.1 * h, 0.95 * h))  # alae
        if vert.detail:  # S2–S3, then S4–S5 thinner and further forward: the sacrum's kyphotic curve
            boxes.append(Box(0.0, 0.75 * vert.a, -b - 6.0, 0.55 * b, -30.0, 0.0, u_taper=1 / 70))
            boxes.append(Box(0.0, 0.5 * vert.a, -b + 4.0, 0.55 * b + 6.0, -52.0, -30.0, u_taper=1 / 90))
        else:
            boxes.append(Box(0.0, 0.75 * vert.a, -b - 6.0, 0.55 * b, -50.0, 0.0, u_taper=1 / 70))  # S2–S5
    elif vert.sacralised:  # broad transverse processes reaching down to the sacral ala (Castellvi II/III)
        boxes.append(Box(chw + 5.0, chw + 5.0 + vert.transverse_len + 10.0, -b - 12.0, -b + 6.0, -12.0, 0.7 * h))
    elif vert.transverse_len > 0:
        boxes.append(Box(chw + 5.0, chw + 5.0 + vert.transverse_len, -b - 12.0, -b - 3.0, 0.45 * h, 0.7 * h))
    if vert.detail:
        facet_v = -b - cap - 3.0  # the facet joints lie at the back of the canal's lateral recess
        g = vert.facet_hypertrophy  # facet arthrosis: bulkier processes, bony overgrowth around the joint
        # superior articular processes: up to the middle of the disc space above
        boxes.append(Box(chw + 1.0, chw + 8.0 + g, facet_v - 3.0 - g, facet_v + 4.0 + g, 0.6 * h, h + 5.0 + g))
        if vert.name != "S1":
            pars_top = arch_lo + (0.2 * h if not vert.lysis else -2.0)
            # inferior articular processes, medial to the lower vertebra's superior ones
            boxes.append(Box(chw - 3.0 - g / 2, chw + 1.0, facet_v - 5.0 - g, facet_v + 2.0 + g, -6.0 - g, pars_top))
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
