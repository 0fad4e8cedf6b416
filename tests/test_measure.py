"""Measurements on hand-built corner sets with answers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lumbarlab.errors import LumbarLabError
from lumbarlab.measure import (
    bone_density_category,
    cobb_angle,
    endplate_angle,
    genant_grade,
    lordosis_angle,
    meyerding_grade,
    meyerding_slip,
    vertebral_heights,
)


def box(x0, y0, width=40.0, height=25.0, tilt_deg=0.0):
    """Corners of a vertebra in image coords (y down), anterior on the left: sup-ant, sup-post, inf-post, inf-ant."""
    pts = np.array([[x0, y0], [x0 + width, y0], [x0 + width, y0 + height], [x0, y0 + height]], dtype=float)
    c = pts.mean(axis=0)
    t = math.radians(tilt_deg)
    rot = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])  # counter-clockwise on screen
    return (pts - c) @ rot.T + c


@pytest.mark.parametrize("shift,expected", [(0.0, 0.0), (10.0, 25.0), (-4.0, -10.0), (20.0, 50.0)])
def test_meyerding_slip_hand_computed(shift, expected):
    lower = box(0, 40)  # superior endplate from (0,40) (anterior) to (40,40) (posterior): length 40
    upper = box(-shift, 5)  # moved anteriorly (to the left) by `shift`
    assert meyerding_slip(upper, lower) == pytest.approx(expected)


def test_meyerding_slip_uses_spacing():
    lower, upper = box(0, 40), box(-10, 5)
    # anisotropic pixels: x counts double, so both the shift and the endplate double → same percent
    assert meyerding_slip(upper, lower, spacing=(1.0, 2.0)) == pytest.approx(25.0)


@pytest.mark.parametrize("slip,grade", [(0, 0), (4.9, 0), (5, 1), (25, 1), (25.1, 2), (50, 2), (74, 3), (99, 4), (130, 5)])
def test_meyerding_grades(slip, grade):
    assert meyerding_grade(slip) == grade


def test_endplate_angle_counter_clockwise_positive():
    assert endplate_angle([0, 0], [10, -10]) == pytest.approx(45.0)
    assert endplate_angle([0, 0], [10, 10]) == pytest.approx(-45.0)


def test_lordosis_of_two_tilted_vertebrae():
    l1 = box(0, 0, tilt_deg=0.0)
    s1 = box(10, 150, tilt_deg=-40.0)
    assert abs(lordosis_angle(l1, s1)) == pytest.approx(40.0)


def test_cobb_angle_names_end_vertebrae():
    tilts = {"L1": 10.0, "L2": 4.0, "L3": 0.0, "L4": -6.0, "L5": -12.0}
    corners = {n: box(0, 30 * i, tilt_deg=t) for i, (n, t) in enumerate(tilts.items())}
    angle, upper, lower = cobb_angle(corners)
    assert angle == pytest.approx(22.0)
    assert (upper, lower) == ("L1", "L5")


def test_heights_and_genant():
    c = np.array([[0, 0], [40, 0], [40, 30], [0, 20]], dtype=float)  # anterior wall 20, posterior 30
    h = vertebral_heights(c)
    assert h["anterior"] == pytest.approx(20) and h["posterior"] == pytest.approx(30)
    assert h["middle"] == pytest.approx(25)
    loss = 100 * (1 - h["anterior"] / h["posterior"])
    assert genant_grade(loss) == 2
    assert [genant_grade(x) for x in (10, 20, 24.9, 25, 40, 41)] == [0, 1, 1, 2, 2, 3]


def test_bone_density_categories():
    assert [bone_density_category(x) for x in (90, 110, 111, 160, 161)] == [
        "osteoporosis", "osteoporosis", "osteopenia", "osteopenia", "normal"]


def test_degenerate_corners_raise():
    with pytest.raises(LumbarLabError):
        meyerding_slip(np.zeros((3, 2)), box(0, 0))
    with pytest.raises(LumbarLabError):
        meyerding_slip(box(0, 0), np.zeros((4, 2)))
    with pytest.raises(LumbarLabError):
        cobb_angle({"L1": box(0, 0)})


def test_s1_with_only_its_superior_endplate_measures_the_same():
    """A lateral annotation has no S1 inferior endplate (BUU-LSPINE): NaN there changes nothing that uses S1."""
    from lumbarlab.measure import measure_lateral

    corners = {"L4": box(0, 0), "L5": box(8, 30), "S1": box(14, 60, tilt_deg=-35)}
    partial = {**corners, "S1": np.vstack([corners["S1"][:2], np.full((2, 2), np.nan)])}
    full, half = measure_lateral(corners), measure_lateral(partial)
    assert half.slips["L5"]["slip_percent"] == pytest.approx(full.slips["L5"]["slip_percent"])
    assert half.lumbosacral_angle == pytest.approx(full.lumbosacral_angle)
    assert half.sacral_slope == pytest.approx(35.0) and half.discs["L5-S1"] == pytest.approx(full.discs["L5-S1"])
    with pytest.raises(LumbarLabError, match="finite"):  # only S1 may lack its inferior corners, only as a pair
        meyerding_slip(np.vstack([corners["L5"][:2], np.full((2, 2), np.nan)]), corners["S1"])
