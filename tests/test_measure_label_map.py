"""Measurements on 3D label maps as real files hold them: any axis order (RAS, LPS, PIR) and oblique grids,
0.7 × 0.7 × 2.5 mm slices, whole-vertebra masks, 60° of lordosis, a vertebra cut by the field of view,
TotalSegmentator's label values — each against the phantom's exact truth. The phantom is drawn with the
``teaching`` preset here: flat endplates make the rim heights the heights a label map holds, so what is tested
is the measurement's invariance to the file's geometry (the clinical preset's concave endplates, which a label
map measures lower by up to their depth, are tested in test_measure_phantom.py).

Tolerances: 1.5 mm for a height (the issue's), 10 HU for trabecular bone. On thick slices an endplate that
lies along the slices is only placed within about half a slice by its voxels, whatever the method; the
report gives, per vertebra, how far the voxels leave its heights free (``height_uncertainty_mm``), and such a
height is held to that bound (+ 0.25 mm for nearest-neighbour resampling) instead — while the heights of a
scan taken together must still be within 1.5 mm nine times in ten, with a mean error under 0.6 mm. The
measured spread of every geometry is in benchmarks/bench_label_map.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import TOTALSEGMENTATOR_V2_TO_VERSE, detect_convention
from lumbarlab.measure import measure_label_map, mid_sagittal_slice, trabecular_hu
from lumbarlab.measure.label_map import canal_ap_diameter, heights_from_label_map
from lumbarlab.phantom import make_case
from lumbarlab.phantom.acquisition import acquire
from lumbarlab.volume import Volume, axcodes, reorient

HEIGHT_MM, HU = 1.5, 10.0


def _check_heights(report, case, levels=None) -> int:
    """Every measured height against the truth, one by one and together; returns how many were checked."""
    errors = []
    for level, entry in report.vertebrae.items():
        if levels is not None and level not in levels:
            continue
        assert "error" not in entry, (level, entry)
        if entry["truncated"]:
            continue
        v = case.spine.vertebrae[level]
        bound = max(HEIGHT_MM, entry["height_uncertainty_mm"] + 0.25)
        for kind, truth in (("anterior", v.ha), ("middle", v.hm), ("posterior", v.hp)):
            got = entry[f"{kind}_height_mm"]
            assert abs(got - truth) <= bound, f"{level} {kind}: {got:.2f} vs truth {truth:.2f} (bound {bound:.2f} mm)"
            errors.append(abs(got - truth))
    if errors:
        assert np.mean(np.array(errors) <= HEIGHT_MM) >= 0.9 and np.mean(errors) <= 0.6, np.round(errors, 2)
    return len(errors)


@pytest.fixture(scope="module")
def lordotic():
    """A 60° lordosis at 1 mm with a low bone density: whole-vertebra labels (body, pedicles, laminae, processes)."""
    return make_case(5, realism="teaching", modalities=("ct",), lordosis=60, bmd=105)


@pytest.mark.parametrize("codes", ["RAS", "LPS", "PIR", "ILA"])
def test_any_axis_order_gives_the_same_heights_in_world_mm(lordotic, codes):
    labels, ct = reorient(lordotic.labels, codes), reorient(lordotic.ct, codes)
    assert axcodes(labels) == codes
    report = measure_label_map(labels, ct)
    assert report.orientation == codes and report.label_convention == "verse"
    assert _check_heights(report, lordotic) >= 12
    assert report.vertebrae["L1"]["trabecular_hu"] == pytest.approx(105.0, abs=HU)
    assert report.vertebrae["L1"]["bone_density"] == "osteoporosis"  # ≤ 110 HU (Pickhardt)
    ras = measure_label_map(lordotic.labels)
    for level, entry in report.vertebrae.items():  # the same anatomy at the same millimetre, whatever the order
        assert entry["centroid_mm"] == pytest.approx(ras.vertebrae[level]["centroid_mm"], abs=1e-3)
        for kind in ("anterior", "middle", "posterior"):
            if f"{kind}_height_mm" in entry:
                assert entry[f"{kind}_height_mm"] == pytest.approx(ras.vertebrae[level][f"{kind}_height_mm"], abs=0.05)


@pytest.mark.parametrize("seed,codes", [(4, "PIR"), (6, "LPS")])
def test_thick_axial_slices_with_60_degrees_of_lordosis(seed, codes):
    """0.7 × 0.7 × 2.5 mm, as abdominal CT is often stored, every voxel labelled by its centre."""
    case = make_case(seed, realism="teaching", modalities=("ct",), lordosis=60, bmd=150, spacing=(0.7, 0.7, 2.5), shape=(229, 229, 80))
    assert case.truth["lordosis_L1_S1_deg"] == pytest.approx(60.0, abs=0.01)
    report = measure_label_map(reorient(case.labels, codes), reorient(case.ct, codes))
    assert sorted(report.spacing_mm) == [0.7, 0.7, 2.5]
    assert _check_heights(report, case) >= 9
    measured = [e for e in report.vertebrae.values() if "trabecular_hu" in e]
    assert measured and all(e["trabecular_hu"] == pytest.approx(150.0, abs=HU) for e in measured)


def test_oblique_thick_slices_from_a_fine_rendering():
    """A grid turned about all three axes (an oblique series), 0.7 × 0.7 × 2.5 mm, resampled by nearest
    neighbour from a 0.5 mm rendering, stored LPS."""
    fine = make_case(2, realism="teaching", modalities=("ct",), lordosis=60, bmd=170, spacing=0.5, shape=(300, 280, 520))
    labels = acquire(fine.labels, (0.7, 0.7, 2.5), rotation=(12.0, -8.0, 15.0), orientation="LPS")
    ct = acquire(fine.ct, (0.7, 0.7, 2.5), rotation=(12.0, -8.0, 15.0), orientation="LPS")
    assert not np.allclose(np.abs(labels.direction), np.eye(3)[[0, 1, 2]], atol=0.05)  # really oblique
    report = measure_label_map(labels, ct)
    assert _check_heights(report, fine) >= 15
    assert all(e["trabecular_hu"] == pytest.approx(170.0, abs=HU) for e in report.vertebrae.values()
               if "trabecular_hu" in e)


def test_a_vertebra_cut_by_the_field_of_view_is_reported_without_heights():
    """The grid ends inside L5: L5 is truncated with no heights and no error, the rest is still measured."""
    from lumbarlab.phantom.voxelize import Grid

    base = make_case(3, realism="teaching", modalities=())
    l5 = base.spine.vertebrae["L5"]
    z_cut = float(l5.body_centre()[2])
    g = base.grid
    top = g.origin[2] + (g.shape[2] - 1) * g.spacing[2]
    nz = int((top - z_cut) / g.spacing[2]) + 1
    grid = Grid((g.shape[0], g.shape[1], nz), g.spacing, (g.origin[0], g.origin[1], top - (nz - 1) * g.spacing[2]))
    case = make_case(3, realism="teaching", modalities=("ct",), grid=grid)
    report = measure_label_map(reorient(case.labels, "PIR"), reorient(case.ct, "PIR"))
    l5_entry = report.vertebrae["L5"]
    assert l5_entry["truncated"] is True and "anterior_height_mm" not in l5_entry and "error" not in l5_entry
    assert _check_heights(report, case, levels=("L1", "L2", "L3", "L4")) == 12


def test_totalsegmentator_v2_values_with_organs_around(lordotic):
    verse_to_ts = {v: k for k, v in TOTALSEGMENTATOR_V2_TO_VERSE.items() if k != 25}
    ts = np.zeros(lordotic.labels.shape, np.uint8)
    for verse, value in verse_to_ts.items():
        ts[lordotic.labels.array == verse] = value
    ts[:20, :20, :20] = 5  # liver
    ts[-20:, :15, :30] = 21  # urinary bladder: 21 is L2 in VerSe's numbering
    ts[-10:, -10:, -10:] = 79  # spinal cord
    labels = lordotic.labels.with_array(ts)
    assert detect_convention(ts) == "totalsegmentator"
    report = measure_label_map(labels)
    assert report.label_convention == "totalsegmentator"
    ref = measure_label_map(lordotic.labels)
    for level in ("L1", "L2", "L3", "L4", "L5"):
        assert report.vertebrae[level]["posterior_height_mm"] == pytest.approx(ref.vertebrae[level]["posterior_height_mm"])
    with pytest.raises(LumbarLabError, match="convention"):
        measure_label_map(labels.with_array(np.where(ts >= 29, 0, ts)), convention="auto")  # L4/L5/S1 + organs
    assert "L5" in measure_label_map(labels, convention="totalsegmentator").vertebrae


def test_body_only_masks_measure_the_same(lordotic):
    """Masks of the body alone (no posterior elements) — a model's output, TotalSegmentator's vertebrae_body."""
    from lumbarlab.phantom.labels import Material

    mat = lordotic.material.array
    body = (mat == Material.CORTICAL) | ((mat >= Material.TRABECULAR0) & (mat < Material.TRABECULAR0 + 7))
    labels = lordotic.labels.with_array(np.where(body, lordotic.labels.array, 0).astype(np.uint8))
    report = measure_label_map(labels)
    assert _check_heights(report, lordotic, levels=("L1", "L2", "L3", "L4", "L5")) == 15


def test_fractures_grade_and_canal_from_the_label_or_the_bone():
    case = make_case(7, realism="teaching", modalities=("ct",), fracture={"L2": 35.0}, fracture_type="biconcave", stenosis=9.0, bmd=100.0)
    report = measure_label_map(case.labels, case.ct)
    assert report.vertebrae["L2"]["genant_grade"] == 2  # 35 % middle-height loss: moderate (25–40 %)
    assert report.vertebrae["L2"]["middle_height_mm"] == pytest.approx(case.spine.vertebrae["L2"].hm, abs=HEIGHT_MM)
    for level in ("L1", "L3", "L4"):
        assert report.vertebrae[level]["genant_grade"] == 0
        assert report.vertebrae[level]["canal_ap_mm"] == pytest.approx(9.0, abs=1.0)
        assert report.vertebrae[level]["canal_source"] == "canal label"
    vertebrae_only = case.labels.with_array(np.where(case.labels.array < 100, case.labels.array, 0).astype(np.uint8))
    assert canal_ap_diameter(vertebrae_only, "L3") == pytest.approx(9.0, abs=1.0)  # the bony canal
    assert trabecular_hu(case.ct, case.labels, "L1") == pytest.approx(100.0, abs=HU)
    h = heights_from_label_map(case.labels, "L4")
    assert h["anterior"] == pytest.approx(case.spine.vertebrae["L4"].ha, abs=HEIGHT_MM)
    plane, spacing = mid_sagittal_slice(case.labels, "L3")
    assert spacing == (0.5, 0.5) and np.any(plane == 22) and np.any(plane == 200)


def test_a_broken_label_is_reported_and_the_rest_still_comes_out(lordotic):
    arr = lordotic.labels.array.copy()
    arr[arr == 22] = 0
    cx, cy, cz = (np.array(arr.shape) // 2).tolist()
    arr[cx - 3 : cx + 3, cy - 3 : cy + 3, cz - 3 : cz + 3] = 22  # "L3" is a 6 mm cube: no body to measure
    report = measure_label_map(lordotic.labels.with_array(arr))
    assert "error" in report.vertebrae["L3"] and "L3" in report.vertebrae["L3"]["error"]
    assert "posterior_height_mm" in report.vertebrae["L2"] and "posterior_height_mm" in report.vertebrae["L4"]
    assert "error" in str(report) or "L3" in str(report)
    with pytest.raises(LumbarLabError, match="no vertebra"):
        measure_label_map(lordotic.labels.with_array(np.zeros_like(arr)), convention="verse")
    with pytest.raises(LumbarLabError, match="not on one grid"):
        measure_label_map(lordotic.labels, Volume(np.zeros((4, 4, 4)), (1, 1, 1)))


def test_measure_cli_on_a_pir_anisotropic_whole_vertebra_export(tmp_path):
    """The issue's acceptance: `lumbarlab measure --mask M --ct C` on a PIR, 0.7 × 0.7 × 2.5 mm export."""
    run = [sys.executable, "-m", "lumbarlab"]
    res = subprocess.run([*run, "phantom", "--out", str(tmp_path), "--seed", "4", "--lordosis", "60", "--bmd", "140",
                          "--spacing", "0.7", "0.7", "2.5", "--shape", "229", "229", "80", "--orientation", "PIR",
                          "--realism", "teaching"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    folder = tmp_path / "phantom0004"
    ct = folder / "ct" / "sub-phantom0004_ct.nii.gz"
    mask = folder / "ct" / "sub-phantom0004_seg-vert_msk.nii.gz"
    ctd = json.loads((folder / "ct" / "sub-phantom0004_seg-vb_ctd.json").read_text())
    assert ctd[0] == {"direction": ["P", "I", "R"]}
    res = subprocess.run([*run, "measure", "--mask", str(mask), "--ct", str(ct)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    truth = json.loads((folder / "truth.json").read_text())
    assert out["orientation"] == "PIR" and sorted(out["spacing_mm"]) == [0.7, 0.7, 2.5]
    errors = []
    for level, entry in out["vertebrae"].items():
        if entry["truncated"]:
            continue
        bound = max(HEIGHT_MM, entry["height_uncertainty_mm"])
        for kind, value in truth["vertebrae"][level]["heights_mm"].items():
            assert abs(entry[f"{kind}_height_mm"] - value) <= bound, (level, kind)
            errors.append(abs(entry[f"{kind}_height_mm"] - value))
        assert entry["trabecular_hu"] == pytest.approx(140.0, abs=HU)
    assert len(errors) >= 9 and np.mean(np.array(errors) <= HEIGHT_MM) >= 0.9 and np.mean(errors) <= 0.6
