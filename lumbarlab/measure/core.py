"""Clinical measurements from vertebral corner landmarks (2D image coordinates).

Corners of one vertebra are a (4, 2) array of (x, y) points ordered superior-first,
superior-second, inferior-second, inferior-first, where "first" is anterior on a lateral
view and the image-left side on an AP view (see :class:`lumbarlab.volume.Radiograph`).
``spacing`` converts pixels to millimetres as (row_mm, col_mm); angles are in degrees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = [
    "meyerding_slip", "meyerding_grade", "endplate_angle", "lordosis_angle", "cobb_angle",
    "vertebral_heights", "genant_grade", "bone_density_category", "segmental_angle", "sacral_slope",
    "lumbosacral_angle", "disc_heights", "height_loss",
]


def _to_mm(points: np.ndarray, spacing: tuple[float, float], superior_only: bool = False) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    checked = pts[:2] if superior_only else pts
    if pts.shape[-1] != 2 or not np.all(np.isfinite(checked)):
        raise LumbarLabError(f"corners must be finite (x, y) pairs, got shape {pts.shape}.")
    return pts * np.array([spacing[1], spacing[0]])


def _corners(c: np.ndarray, name: str, superior_only: bool = False) -> np.ndarray:
    """Validated (4, 2) corners. ``superior_only``: the caller uses just the superior endplate (corners 0, 1), so
    the inferior ones may be missing (NaN) — S1 on a lateral annotation has no inferior endplate."""
    c = np.asarray(c, dtype=float)
    if superior_only and c.shape == (4, 2) and np.isnan(c[2:]).all():
        if not np.all(np.isfinite(c[:2])) or np.linalg.norm(c[0] - c[1]) == 0:
            raise LumbarLabError(f"{name}: the superior endplate needs two distinct finite corners.")
        return c
    if c.shape != (4, 2) or not np.all(np.isfinite(c)):
        raise LumbarLabError(f"{name}: expected 4 finite corners (4, 2), got shape {c.shape}.")
    # three collinear corners (or two coinciding) leave no body outline to measure
    area = 0.5 * abs(np.dot(c[:, 0], np.roll(c[:, 1], 1)) - np.dot(c[:, 1], np.roll(c[:, 0], 1)))
    span = max(np.ptp(c[:, 0]), np.ptp(c[:, 1]))
    if span == 0 or area < 0.05 * span**2:
        raise LumbarLabError(f"{name}: the four corners are (nearly) collinear or coincide; check the landmarks.")
    return c


def meyerding_slip(upper: np.ndarray, lower: np.ndarray, spacing=(1.0, 1.0), names=("upper", "lower")) -> float:
    """Anterior slip of ``upper`` on ``lower`` in percent (Meyerding 1932).

    The posterior-inferior corner of the upper vertebra is projected on the superior endplate
    of the lower one (posterior → anterior); its distance from the lower posterior-superior
    corner, divided by the endplate's length, is the slip. Negative = retrolisthesis.
    """
    up = _to_mm(_corners(upper, names[0]), spacing)
    lo = _to_mm(_corners(lower, names[1], superior_only=True), spacing, superior_only=True)
    endplate = lo[0] - lo[1]  # posterior-superior → anterior-superior
    length = float(np.linalg.norm(endplate))
    if length < 1e-6:
        raise LumbarLabError(f"{names[1]}: the superior endplate has zero length; check its corners.")
    return float(100.0 * np.dot(up[2] - lo[1], endplate) / length**2)


def meyerding_grade(slip_percent: float) -> int:
    """Meyerding grade: 0 (< 5 %, lumbarlab's cut-off for no listhesis), I ≤ 25 %, II ≤ 50 %,
    III ≤ 75 %, IV ≤ 100 %, V > 100 % (spondyloptosis)."""
    s = abs(float(slip_percent))
    if s < 5.0:
        return 0
    for grade, limit in enumerate((25.0, 50.0, 75.0, 100.0), start=1):
        if s <= limit:
            return grade
    return 5


def endplate_angle(p_first: np.ndarray, p_second: np.ndarray, spacing=(1.0, 1.0)) -> float:
    """Angle (degrees) of the line first → second against the image horizontal, counter-clockwise
    positive as seen on screen (image y grows downwards)."""
    a, b = _to_mm(np.asarray([p_first, p_second]), spacing)
    d = b - a
    if np.hypot(*d) < 1e-6:
        raise LumbarLabError("an endplate's two corners coincide; its angle is undefined.")
    return math.degrees(math.atan2(-d[1], d[0]))


def _line_angle_deg(first: np.ndarray, second: np.ndarray, spacing) -> float:
    ang = endplate_angle(first, second, spacing)
    # an endplate has no direction: fold into (-90, 90]
    return (ang + 90.0) % 180.0 - 90.0


def lordosis_angle(l1: np.ndarray, s1: np.ndarray, spacing=(1.0, 1.0)) -> float:
    """Lumbar lordosis: the angle between the superior endplates of L1 and S1 (Cobb method),
    degrees, positive for lordosis on a lateral view (anterior on the image left or right)."""
    l1, s1 = _corners(l1, "L1", superior_only=True), _corners(s1, "S1", superior_only=True)
    a = _line_angle_deg(l1[1], l1[0], spacing)  # posterior → anterior
    b = _line_angle_deg(s1[1], s1[0], spacing)
    diff = (a - b + 90.0) % 180.0 - 90.0
    anterior_right = l1[0][0] > l1[1][0]
    return float(diff if anterior_right else -diff)


def cobb_angle(corners: Mapping[str, np.ndarray], spacing=(1.0, 1.0)) -> tuple[float, str, str]:
    """Cobb angle on an AP view: the largest tilt difference between any two endplates.

    Returns (angle in degrees, upper end vertebra, lower end vertebra); the upper end
    vertebra contributes its superior endplate and the lower one its inferior endplate
    (Cobb 1948).
    """
    names = list(corners)
    if len(names) < 2:
        raise LumbarLabError("the Cobb angle needs corners of at least two vertebrae.")
    sup = {n: _line_angle_deg(_corners(corners[n], n)[0], corners[n][1], spacing) for n in names}
    inf = {n: _line_angle_deg(corners[n][3], corners[n][2], spacing) for n in names}
    best = (0.0, names[0], names[-1])
    for i, upper in enumerate(names):
        for lower in names[i:]:
            ang = abs(sup[upper] - inf[lower])
            if ang > best[0]:
                best = (ang, upper, lower)
    return best


def vertebral_heights(corners: np.ndarray, spacing=(1.0, 1.0), name: str = "vertebra") -> dict[str, float]:
    """Anterior, posterior and middle body heights (mm) from four corners; middle joins the
    endplates' midpoints (so a central depression needs a mask, not corners, to show)."""
    c = _to_mm(_corners(corners, name), spacing)
    ant = float(np.linalg.norm(c[0] - c[3]))
    post = float(np.linalg.norm(c[1] - c[2]))
    mid = float(np.linalg.norm((c[0] + c[1]) / 2 - (c[2] + c[3]) / 2))
    return {"anterior": ant, "middle": mid, "posterior": post}


def genant_grade(height_loss_percent: float) -> int:
    """Genant semiquantitative grade from the largest height reduction: 0 (< 20 %),
    1 mild (20–25 %), 2 moderate (25–40 %), 3 severe (> 40 %) (Genant et al., JBMR 1993)."""
    loss = float(height_loss_percent)
    if loss < 20.0:
        return 0
    if loss < 25.0:
        return 1
    if loss <= 40.0:
        return 2
    return 3


def bone_density_category(trabecular_hu: float) -> str:
    """Opportunistic CT screening at L1 (Pickhardt et al., Ann Intern Med 2013): ≤ 110 HU
    "osteoporosis" (specific), ≤ 160 HU "osteopenia" (sensitive threshold), else "normal"."""
    hu = float(trabecular_hu)
    if hu <= 110.0:
        return "osteoporosis"
    if hu <= 160.0:
        return "osteopenia"
    return "normal"


def segmental_angle(upper: np.ndarray, lower: np.ndarray, spacing=(1.0, 1.0), names=("upper", "lower")) -> float:
    """Angle (degrees) between the inferior endplate of ``upper`` and the superior endplate of
    ``lower`` — one disc's contribution to lordosis (positive = lordotic, wider anteriorly)."""
    up, lo = _corners(upper, names[0]), _corners(lower, names[1], superior_only=True)
    a = _line_angle_deg(up[2], up[3], spacing)  # inferior endplate, posterior → anterior
    b = _line_angle_deg(lo[1], lo[0], spacing)  # superior endplate, posterior → anterior
    diff = (a - b + 90.0) % 180.0 - 90.0
    anterior_right = lo[0][0] > lo[1][0]
    return float(diff if anterior_right else -diff)


def lumbosacral_angle(l5: np.ndarray, s1: np.ndarray, spacing=(1.0, 1.0)) -> float:
    """The lumbosacral disc angle: between L5's inferior and S1's superior endplate (degrees)."""
    return segmental_angle(l5, s1, spacing, ("L5", "S1"))


def sacral_slope(s1: np.ndarray, spacing=(1.0, 1.0)) -> float:
    """Angle (degrees) between S1's superior endplate and the image horizontal (Legaye et al.,
    Eur Spine J 1998); assumes an upright radiograph."""
    c = _corners(s1, "S1", superior_only=True)
    return float(abs(_line_angle_deg(c[1], c[0], spacing)))


def disc_heights(upper: np.ndarray, lower: np.ndarray, spacing=(1.0, 1.0), names=("upper", "lower")) -> dict[str, float]:
    """Anterior, middle and posterior height (mm) of the disc between two vertebrae, and the disc
    height index of Farfan et al. (J Bone Joint Surg 1972): (anterior + posterior) / AP depth of the
    lower endplate."""
    up = _to_mm(_corners(upper, names[0]), spacing)
    lo = _to_mm(_corners(lower, names[1], superior_only=True), spacing, superior_only=True)
    ant = float(np.linalg.norm(up[3] - lo[0]))
    post = float(np.linalg.norm(up[2] - lo[1]))
    mid = float(np.linalg.norm((up[2] + up[3]) / 2 - (lo[0] + lo[1]) / 2))
    depth = float(np.linalg.norm(lo[0] - lo[1]))
    return {"anterior": ant, "middle": mid, "posterior": post, "index": (ant + post) / depth}


def height_loss(heights: dict[str, float], reference_posterior: float | None = None) -> float:
    """Vertebral height loss (%) for Genant grading: the largest of 1 − anterior/posterior (wedge),
    1 − middle/posterior (biconcave) and, given neighbours' mean posterior height, 1 − posterior/that
    (crush)."""
    ha, hm, hp = heights["anterior"], heights["middle"], heights["posterior"]
    if hp <= 0:
        raise LumbarLabError("posterior height must be positive to grade height loss.")
    losses = [1 - ha / hp, 1 - hm / hp]
    if reference_posterior:
        losses.append(1 - hp / reference_posterior)
    return float(100.0 * max(0.0, *losses))
