"""Whole-radiograph measurement reports: every clinical number of a lateral or AP view at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.measure.core import (
    cobb_angle,
    disc_heights,
    genant_grade,
    height_loss,
    lordosis_angle,
    lumbosacral_angle,
    meyerding_grade,
    meyerding_slip,
    sacral_slope,
    segmental_angle,
    vertebral_heights,
)
from lumbarlab.measure.records import Record

__all__ = ["LateralReport", "APReport", "measure_lateral", "measure_ap", "ORDER"]

#: Vertebrae from top to bottom, as the reports walk them.
ORDER = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")


def _ordered(corners: Mapping[str, np.ndarray]) -> list[str]:
    """Level names top to bottom; the levels must be consecutive (a gap is a missing level)."""
    unknown = set(corners) - set(ORDER)
    if unknown:
        raise LumbarLabError(f"unknown vertebra name(s) {sorted(unknown)}; use {', '.join(ORDER)}.")
    names = [n for n in ORDER if n in corners]
    if names:
        span = ORDER[ORDER.index(names[0]) : ORDER.index(names[-1]) + 1]
        missing = [n for n in span if n not in corners]
        if missing:
            raise LumbarLabError(f"corners of {', '.join(missing)} are missing between {names[0]} and {names[-1]}; "
                                 "annotate every level in between.")
    return names


@dataclass
class LateralReport(Record):
    """Lateral-view measurements; lengths in ``length_unit`` ("mm", or "px" when the pixel spacing is
    unknown), angles in degrees."""

    slips: dict[str, dict] = field(default_factory=dict)  # upper level → slip %, Meyerding grade
    vertebrae: dict[str, dict] = field(default_factory=dict)  # heights, loss %, Genant grade
    discs: dict[str, dict] = field(default_factory=dict)  # heights, index, segmental angle
    lordosis_L1_S1: float | None = None
    lumbosacral_angle: float | None = None
    sacral_slope: float | None = None
    length_unit: str = "mm"

    def rows(self) -> list[dict]:
        rows = [{"item": f"slip {k}", "value": v["slip_percent"], "grade": f"Meyerding {v['meyerding_grade']}"}
                for k, v in self.slips.items()]
        rows += [{"item": f"height loss {k}", "value": v["height_loss_percent"], "grade": f"Genant {v['genant_grade']}"}
                 for k, v in self.vertebrae.items()]
        rows += [{"item": f"disc {k} middle height", "value": v["middle"], "grade": ""} for k, v in self.discs.items()]
        for name in ("lordosis_L1_S1", "lumbosacral_angle", "sacral_slope"):
            if getattr(self, name) is not None:
                rows.append({"item": name.replace("_", " "), "value": getattr(self, name), "grade": ""})
        return rows


@dataclass
class APReport(Record):
    """AP-view measurements: the Cobb angle with its end vertebrae, and each endplate's tilt."""

    cobb: float
    upper_end: str
    lower_end: str
    tilts: dict[str, dict] = field(default_factory=dict)
    length_unit: str = "mm"

    def rows(self) -> list[dict]:
        return [{"item": "Cobb angle", "value": self.cobb, "detail": f"{self.upper_end}–{self.lower_end}"}] + [
            {"item": f"tilt {k}", "value": v["superior"], "detail": f"inferior {v['inferior']:.1f}"}
            for k, v in self.tilts.items()]


def _spacing(spacing) -> tuple[tuple[float, float], str]:
    """(row_mm, col_mm) and the unit of lengths: a known spacing gives mm; None gives pixels."""
    if spacing is None:
        return (1.0, 1.0), "px"
    sp = tuple(float(s) for s in spacing)
    if len(sp) != 2 or not all(np.isfinite(s) and s > 0 for s in sp):
        raise LumbarLabError(f"spacing must be two positive pixel sizes in mm (row, column), got {spacing!r}.")
    return sp, "mm"  # type: ignore[return-value]


def measure_lateral(corners: Mapping[str, np.ndarray], spacing=None) -> LateralReport:
    """Every lateral measurement the corners allow (a missing level skips what needs it).

    Heights and slips need consecutive levels; a vertebra's height loss uses its neighbours'
    posterior heights as the crush reference when both are there (Genant et al., JBMR 1993).

    Args:
        corners: level → (4, 2) corners in pixels.
        spacing: (row_mm, col_mm) of the image, e.g. :func:`lumbarlab.io.pixel_spacing`; None when it is
            unknown, and lengths are then reported in pixels (``length_unit == "px"``). Ratios (slip %, height
            loss, disc height index) and angles do not need it, as long as pixels are square.

    Example:
        >>> body = lambda y: np.array([[0, y], [40, y], [40, y + 30], [0, y + 30]], float)
        >>> rep = measure_lateral({"L4": body(0), "L5": body(40)}, spacing=None)
        >>> rep.length_unit, rep.vertebrae["L4"]["anterior"]
        ('px', 30.0)
        >>> measure_lateral({"L4": body(0), "L5": body(40)}, spacing=(0.2, 0.2)).vertebrae["L4"]["anterior"]
        6.0
    """
    spacing, unit = _spacing(spacing)
    names = _ordered(corners)
    if len(names) < 2:
        raise LumbarLabError("a lateral report needs the corners of at least two vertebrae.")
    rep = LateralReport(length_unit=unit)
    heights = {n: vertebral_heights(corners[n], spacing, n) for n in names if n != "S1"}
    for n, h in heights.items():
        i = ORDER.index(n)
        refs = [heights[m]["posterior"] for m in (ORDER[i - 1] if i else None, ORDER[i + 1]) if m in heights]
        ref = float(np.mean(refs)) if len(refs) == 2 else None
        loss = height_loss(h, ref)
        rep.vertebrae[n] = {**h, "height_loss_percent": loss, "genant_grade": genant_grade(loss)}
    for upper, lower in zip(ORDER[:-1], ORDER[1:], strict=True):
        if upper in corners and lower in corners:
            s = meyerding_slip(corners[upper], corners[lower], spacing, (upper, lower))
            rep.slips[upper] = {"slip_percent": s, "meyerding_grade": meyerding_grade(s)}
            d = disc_heights(corners[upper], corners[lower], spacing, (upper, lower))
            d["segmental_angle"] = segmental_angle(corners[upper], corners[lower], spacing, (upper, lower))
            rep.discs[f"{upper}-{lower}"] = d
    if "L1" in corners and "S1" in corners:
        rep.lordosis_L1_S1 = lordosis_angle(corners["L1"], corners["S1"], spacing)
    if "L5" in corners and "S1" in corners:
        rep.lumbosacral_angle = lumbosacral_angle(corners["L5"], corners["S1"], spacing)
    if "S1" in corners:
        rep.sacral_slope = sacral_slope(corners["S1"], spacing)
    return rep


def measure_ap(corners: Mapping[str, np.ndarray], spacing=None) -> APReport:
    """Cobb angle and endplate tilts on an AP view (the sacrum is left out of the Cobb search); ``spacing`` as in
    :func:`measure_lateral` (angles need it only when pixels are not square)."""
    from lumbarlab.measure.core import _line_angle_deg

    spacing, unit = _spacing(spacing)
    names = [n for n in _ordered(corners) if n != "S1"]
    angle, upper, lower = cobb_angle({n: corners[n] for n in names}, spacing)
    tilts = {n: {"superior": _line_angle_deg(corners[n][0], corners[n][1], spacing),
                 "inferior": _line_angle_deg(corners[n][3], corners[n][2], spacing)} for n in names}
    return APReport(angle, upper, lower, tilts, unit)
