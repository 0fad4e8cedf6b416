"""Measurements on phantom images across the parameter ranges, against the phantom's truth.

Tolerances (issue #5): slip ± 2 %, angles ± 1.5°, heights ± 1 mm; corners → mask → corners ≤ 1 px.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumbarlab.errors import LumbarLabError
from lumbarlab.measure import (
    canal_ap_diameter,
    corners_from_label_image,
    corners_from_mask,
    corners_to_mask,
    heights_from_label_map,
    measure_ap,
    measure_label_map,
    measure_lateral,
    trabecular_hu,
)
from lumbarlab.phantom import LUMBAR, VERSE_LABEL, Material, make_case, sample_params
from lumbarlab.phantom.fast2d import lateral_radiograph
from lumbarlab.phantom.render import ct_table

CASES = [  # (seed, pathology)
    (0, {}),
    (1, {"slip": {"L4": 18.0}}),
    (2, {"slip": {"L5": 42.0}, "fracture": {"L1": 30.0}}),
    (3, {"slip": {"L3": 60.0}, "fracture": {"L2": 45.0}}),
    (4, {"fracture": {"L3": 22.0}, "pfirrmann": {"L4-L5": 5}}),
    (5, {"slip": {"L4": 33.0}, "fracture": {"L4": 35.0}}),
]
BODIES = {VERSE_LABEL[n]: n for n in ("L1", "L2", "L3", "L4", "L5")}


def _check_lateral(report, case_params, spine):
    for level in ("L1", "L2", "L3", "L4"):
        assert report.slips[level]["slip_percent"] == pytest.approx(case_params.slip.get(level, 0.0), abs=2.0), level
    for level in LUMBAR:
        v = spine.vertebrae[level]
        h = report.vertebrae[level]
        assert h["anterior"] == pytest.approx(v.ha, abs=1.0) and h["posterior"] == pytest.approx(v.hp, abs=1.0)
        loss = case_params.fracture.get(level, 0.0)
        if loss >= 20:
            assert h["height_loss_percent"] == pytest.approx(loss, abs=3.0), level


@pytest.mark.parametrize("seed,pathology", CASES)
def test_lateral_report_from_annotated_corners(seed, pathology):
    params = sample_params(seed, **pathology)
    rad = lateral_radiograph(params, size=256, noise=False)
    report = measure_lateral(rad.corners, rad.spacing)
    case = make_case(params, shape=(48, 48, 64), spacing=4.0, noise=False, modalities=("ct",))
    _check_lateral(report, params, case.spine)
    assert report.lordosis_L1_S1 == pytest.approx(case.truth["lordosis_L1_S1_deg"], abs=1.5)
    assert report.sacral_slope == pytest.approx(params.sacral_slope, abs=1.5)
    for disc, d in report.discs.items():
        if disc.split("-")[0] in params.slip:
            continue  # a slipped disc's middle height spans the shift
        truth = case.truth["discs"][disc]
        assert d["anterior"] == pytest.approx(truth["height_anterior_mm"], abs=1.0)
        assert d["posterior"] == pytest.approx(truth["height_posterior_mm"], abs=1.0)


@pytest.mark.parametrize("seed,pathology", CASES)
def test_lateral_report_from_a_predicted_mask(seed, pathology):
    """Measurements survive the trip through a segmentation: corners recovered from the body mask (the
    teaching preset's parallel beam, where the silhouette's corners are the landmarks exactly)."""
    params = sample_params(seed, realism="teaching", **pathology)
    rad = lateral_radiograph(params, size=512, noise=False)
    corners = corners_from_label_image(rad.body_labels, BODIES)
    for name, c in corners.items():  # projected (not rasterised) masks: within 1.5 px of the truth
        assert np.linalg.norm(c - rad.corners[name], axis=1).max() <= 1.5, name
    s1 = rad.corners["S1"]  # only S1's superior endplate is in view; take it from the annotation
    report = measure_lateral({**corners, "S1": s1}, rad.spacing)
    case = make_case(params, shape=(48, 48, 64), spacing=4.0, noise=False, modalities=("ct",))
    _check_lateral(report, params, case.spine)


@pytest.mark.parametrize("cobb", [0.0, 12.0, 25.0, 40.0])
def test_ap_report_cobb(cobb):
    case = make_case(sample_params(6, cobb=cobb, scoliosis_side="right"), shape=(64, 64, 96), spacing=2.5, noise=False)
    report = measure_ap(case.ap.corners, case.ap.spacing)
    assert report.cobb == pytest.approx(cobb, abs=1.5)
    assert "Cobb angle" in str(report)


@settings(max_examples=40, deadline=None)
@given(x=st.floats(40, 120), y=st.floats(40, 120), w=st.floats(25, 60), h=st.floats(18, 40),
       tilt=st.floats(-25, 25), wedge=st.floats(0, 0.4))
def test_corners_mask_corners_round_trip(x, y, w, h, tilt, wedge):
    """A quadrilateral body (tilted, wedged) → raster mask → corners: within 1 pixel."""
    t = np.radians(tilt)
    local = np.array([[-w / 2, -h / 2 * (1 - wedge)], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    corners = local @ rot.T + [x, y]
    mask = corners_to_mask(corners, (180, 180))
    back = corners_from_mask(mask)
    assert np.abs(back - corners).max() <= 1.0


def test_clinical_silhouette_corners_are_off_by_the_doubled_contours():
    """On a point-source radiograph of a turned patient, the two sides of each body project apart, so the
    silhouette's corners leave the mid-sagittal landmarks by up to ~2 mm — what a mask-based measurement
    of a real radiograph inherits; with the rotation and tilt set to zero they are back within 1.5 px."""
    params = sample_params(3, slip={"L4": 25.0}, osteophytes={})  # no rim spurs: the geometry alone
    errors = {}
    for label, acq in (("turned", {"xray_rotation_deg": 6.0, "xray_tilt_deg": 4.0}),
                       ("straight", {"xray_rotation_deg": 0.0, "xray_tilt_deg": 0.0})):
        p = params.replace(acquisition={**params.acquisition, **acq})
        rad = lateral_radiograph(p, size=512, noise=False)
        corners = corners_from_label_image(rad.body_labels, BODIES)
        errors[label] = max(float(np.linalg.norm(c - rad.corners[n], axis=1).max()) for n, c in corners.items())
    # px of 0.45 mm; even straight, the divergent beam magnifies the near and far halves of a body by ±1 %
    assert errors["straight"] <= 3.5 and errors["straight"] + 1.0 < errors["turned"] <= 8.0, errors


@pytest.mark.parametrize("realism", ["teaching", "clinical"])
def test_label_map_measurements_against_truth(realism):
    """Heights from a label map equal the rim heights on the teaching preset; on concave (clinical) endplates
    the mid-sagittal outline dips by up to the concavity at each end, and the middle height by exactly it."""
    params = sample_params(7, fracture={"L2": 35.0}, fracture_type="biconcave", stenosis=9.0, bmd=90.0,
                           realism=realism)
    case = make_case(params, noise=True, modalities=("ct",))
    for level in ("L1", "L2", "L3", "L4"):
        v = case.spine.vertebrae[level]
        c = v.concavity
        h = heights_from_label_map(case.labels, level)
        assert v.ha - 2 * c - 1.0 <= h["anterior"] <= v.ha + 1.0, level
        assert v.hp - 2 * c - 1.0 <= h["posterior"] <= v.hp + 1.0, level
        assert h["middle"] == pytest.approx(v.hm - 2 * c, abs=1.0), level  # the central depression shows
        assert canal_ap_diameter(case.labels, level) == pytest.approx(9.0, abs=1.0)
    # the scanner's HU: the density parameter, shifted by contrast phase and kVp on a clinical case
    expected = float(ct_table(params)[Material.TRABECULAR0 + 1])
    assert (expected == 90.0) == (realism == "teaching")
    assert trabecular_hu(case.ct, case.labels, "L1") == pytest.approx(expected, abs=10.0)
    report = measure_label_map(case.labels, case.ct)
    # 35 % central loss is Genant 2; the concave endplates deepen the apparent loss on a clinical case
    assert report.vertebrae["L2"]["genant_grade"] == (2 if realism == "teaching" else 3)
    assert report.vertebrae["L1"]["bone_density"] == "osteoporosis"
    assert report.vertebrae["T12"]["truncated"] is True


@pytest.mark.parametrize("bad,message", [
    ({"L1": np.zeros((4, 2)), "L2": np.eye(4, 2) * 30}, "L1"),
    ({"L1": [[0, 0], [10, 0], [20, 0], [30, 0]], "L2": [[0, 40], [40, 40], [40, 70], [0, 70]]}, "collinear"),
    ({"L1": [[0, 0], [40, 0], [40, 30], [0, 30]], "L3": [[0, 80], [40, 80], [40, 110], [0, 110]]}, "L2"),
    ({"L1": [[0, 0], [40, 0], [40, 30], [0, 30]]}, "at least two"),
    ({"L9": [[0, 0], [40, 0], [40, 30], [0, 30]], "L1": [[0, 0], [40, 0], [40, 30], [0, 30]]}, "L9"),
])
def test_degenerate_input_names_the_level(bad, message):
    with pytest.raises(LumbarLabError, match=message):
        measure_lateral({k: np.asarray(v, float) for k, v in bad.items()})


def test_empty_mask_names_the_level():
    with pytest.raises(LumbarLabError, match="L4: the mask is empty"):
        corners_from_mask(np.zeros((20, 20)), name="L4")


def test_measure_cli_corners_and_mask(tmp_path):
    run = [sys.executable, "-m", "lumbarlab"]
    subprocess.run([*run, "phantom", "--out", str(tmp_path), "--seed", "2", "--slip", "L4:25", "--fracture", "L1:30"],
                   check=True, capture_output=True)
    case = tmp_path / "phantom0002"
    res = subprocess.run([*run, "measure", "--corners", str(case / "xray/phantom0002_lateral.csv"), "--view", "lateral",
                          "--spacing", "1.0"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["slips"]["L4"]["slip_percent"] == pytest.approx(25.0, abs=2.0)
    assert out["vertebrae"]["L1"]["genant_grade"] == 2
    res = subprocess.run([*run, "measure", "--mask", str(case / "ct/sub-phantom0002_seg-vert_msk.nii.gz"),
                          "--ct", str(case / "ct/sub-phantom0002_ct.nii.gz")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["vertebrae"]["L1"]["height_loss_percent"] == pytest.approx(30.0, abs=4.0)
    res = subprocess.run([*run, "measure", "--corners", str(tmp_path / "missing.csv")], capture_output=True, text=True)
    assert res.returncode == 2 and "missing.csv" in res.stderr


def test_slips_from_class_masks_name_s1_by_its_neighbour():
    """L4 and L5 slips measured from the class masks a segmenter learns (bodies, sacrum) match the phantom's truth in
    both image orientations. Before the sacrum's superior side was chosen by facing L5, a tilted sacrum (slope 40–50°)
    gave the wrong side in about half the images: L5 slips off by 25 points on average, up to 120."""
    from lumbarlab.datasets import corners_to_dict, phantom_xrays
    from lumbarlab.measure import corners_from_lateral_mask

    split = phantom_xrays(24, seed=880_000, size=256)
    errors = {"L4": [], "L5": []}
    for i in range(len(split)):
        truth = corners_to_dict(split.corners[i])
        expected = measure_lateral(truth, split.spacing)
        for mirrored in (False, True):  # anterior on the left (the phantom's view) and on the right
            mask = split.masks[i][:, ::-1] if mirrored else split.masks[i]
            corners = corners_from_lateral_mask(mask, first_side="right" if mirrored else "left")
            if mirrored:  # back to the phantom's frame to compare corner by corner
                corners = {k: np.stack([mask.shape[1] - 1 - c[:, 0], c[:, 1]], axis=1) for k, c in corners.items()}
            assert np.abs(corners["S1"][:2] - truth["S1"][:2]).max() <= 3.5, (i, mirrored)  # px; 0.9 mm pixels
            report = measure_lateral(corners, split.spacing)
            for level in errors:
                errors[level].append(report.slips[level]["slip_percent"] - expected.slips[level]["slip_percent"])
    for level, e in errors.items():  # a rasterised mask moves each corner by up to a pixel: a few slip points
        assert np.abs(e).mean() <= 2.0 and np.abs(e).max() <= 8.0, (level, np.abs(e).mean(), np.abs(e).max())


def test_lateral_mask_without_sacrum_or_bodies_says_what_is_missing():
    from lumbarlab.measure import corners_from_lateral_mask

    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 10:40] = 1
    with pytest.raises(LumbarLabError, match="no sacrum"):
        corners_from_lateral_mask(mask)
    mask[:] = 0
    mask[40:60, 10:40] = 2
    with pytest.raises(LumbarLabError, match="no vertebral body"):
        corners_from_lateral_mask(mask)
