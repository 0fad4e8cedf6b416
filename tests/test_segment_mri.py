"""`lumbarlab segment --model mri-spine` and `lumbarlab grade` on sagittal T2 studies written as a user would have
them: the phantom's SPIDER export (.mha, SPIDER label values), a NIfTI in another axis order, a DICOM series
folder; and the refusals (CT, axial series, T1 by header or by contrast) with exit code 2 and nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume, reorient

# A test-split anatomy (never trained on), 1 mm in-plane as a clinical scanner gives, with a degenerated L4/L5 disc
# herniated 8 mm into a 15 mm canal.
SEED = 900_321
PATHOLOGY = {"pfirrmann": {"T12-L1": 1, "L1-L2": 1, "L2-L3": 2, "L3-L4": 3, "L4-L5": 5, "L5-S1": 4},
             "herniation": {"L4-L5": 8.0}, "stenosis": 15.0}


@pytest.fixture(scope="module")
def spider_case(tmp_path_factory):
    """The phantom written in SPIDER's layout by ``lumbarlab.phantom.export`` (images/…_t2.mha, masks/…_t2.mha)."""
    from lumbarlab.phantom import make_case
    from lumbarlab.phantom.export import write_case

    case = make_case(SEED, shape=(120, 220, 240), spacing=1.0, modalities=("t1", "t2"), **PATHOLOGY)
    folder = write_case(case, tmp_path_factory.mktemp("spider"))
    return case, folder


@pytest.fixture(scope="module")
def spider_result(spider_case, tmp_path_factory):
    from lumbarlab.cli import main
    from lumbarlab.io import read_image

    _, folder = spider_case
    src = folder / "mri" / "images" / f"{folder.name}_t2.mha"
    out, report = tmp_path_factory.mktemp("out") / "labels.mha", tmp_path_factory.mktemp("rep") / "report.json"
    assert main(["segment", str(src), "--model", "mri-spine", "--out", str(out), "--report", str(report)]) == 0
    return read_image(src), read_image(out), json.loads(report.read_text())


def _dice_by_value(truth: np.ndarray, pred: np.ndarray, values) -> dict[int, float]:
    from lumbarlab import metrics

    return {int(v): metrics.dice(truth == v, pred == v) for v in values if (truth == v).sum() > 50}


# -- the checks, without a model ---------------------------------------------------------------------------
def test_check_refuses_a_ct_an_axial_stack_a_t1_header_and_a_picture():
    from lumbarlab.segment_mri import check_sagittal_mri

    rng = np.random.default_rng(0)
    sag = Volume(rng.uniform(0, 500, (12, 64, 64)).astype(np.float32), (4.0, 1.0, 1.0))
    check_sagittal_mri(sag)  # a sagittal stack passes
    check_sagittal_mri(reorient(sag, "PIL"))  # in any axis order
    with pytest.raises(LumbarLabError, match="Hounsfield"):
        check_sagittal_mri(sag.with_array(sag.array - 1000.0))
    with pytest.raises(LumbarLabError, match="axial"):
        check_sagittal_mri(Volume(sag.array.transpose(1, 2, 0).copy(), (1.0, 1.0, 4.0)))
    with pytest.raises(LumbarLabError, match="coronal"):
        check_sagittal_mri(Volume(sag.array.transpose(1, 0, 2).copy(), (1.0, 4.0, 1.0)))
    t1 = Volume(sag.array, sag.spacing, meta={"modality": "MR", "series_description": "SAG T1 TSE"})
    with pytest.raises(LumbarLabError, match="T1-weighted by its header"):
        check_sagittal_mri(t1)
    with pytest.raises(LumbarLabError, match="not an MR"):
        check_sagittal_mri(Volume(sag.array, sag.spacing, meta={"modality": "CT"}))
    with pytest.raises(LumbarLabError, match="3 slices"):
        check_sagittal_mri(Volume(sag.array[:1], sag.spacing))
    c, s = np.cos(np.radians(35.0)), np.sin(np.radians(35.0))  # slabs turned 35° about the AP axis
    tilted = Volume(sag.array, sag.spacing, direction=np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]]))
    with pytest.raises(LumbarLabError, match="tilt 35°"):
        check_sagittal_mri(tilted)
    c, s = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))  # 20°: within what a scoliotic plan needs
    check_sagittal_mri(Volume(sag.array, sag.spacing, direction=np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])))


def test_sequence_from_the_header():
    from lumbarlab.segment_mri import sequence_from_meta

    assert sequence_from_meta({"series_description": "Sag T2 FSE"}) == "T2"
    assert sequence_from_meta({"series_description": "SAG STIR"}) == "T2"
    assert sequence_from_meta({"echo_time_ms": 12.0, "repetition_time_ms": 600.0}) == "T1"
    assert sequence_from_meta({"echo_time_ms": 110.0, "repetition_time_ms": 3500.0}) == "T2"
    assert sequence_from_meta({"echo_time_ms": 12.0, "repetition_time_ms": 3000.0}) is None  # proton density
    assert sequence_from_meta({}) is None


def test_a_thin_slice_3d_sequence_becomes_slabs_of_the_models_thickness():
    from lumbarlab.segment_mri import SLAB_MM, mri_model_grid, to_mri_grid

    x = np.arange(120, dtype=np.float32)[:, None, None] * np.ones((1, 40, 40), np.float32)
    mri = Volume(x, (1.0, 1.0, 1.0))
    grid = mri_model_grid(mri, 1.25)
    assert grid.spacing == (SLAB_MM, 1.25, 1.25) and grid.shape[0] == 32
    on = to_mri_grid(mri, grid)
    # a linear ramp along x: a slab's mean is the value at its centre, away from the ends
    assert np.allclose(on.array[5:-5, 10, 10], np.arange(5, 27) * SLAB_MM, atol=1e-3)


def test_segment_cli_refuses_with_exit_code_2_and_writes_nothing(tmp_path, capsys):
    from lumbarlab.cli import main
    from lumbarlab.io import write_image

    rng = np.random.default_rng(1)
    axial = Volume(rng.uniform(0, 500, (64, 64, 12)).astype(np.float32), (1.0, 1.0, 4.0))
    src = write_image(axial, tmp_path / "axial_t2.nii.gz")
    out, report = tmp_path / "labels.nii.gz", tmp_path / "report.json"
    assert main(["segment", str(src), "--model", "mri-spine", "--out", str(out), "--report", str(report)]) == 2
    assert "axial" in capsys.readouterr().err
    assert main(["grade", str(src), "--report", str(report)]) == 2
    ct = write_image(Volume(rng.uniform(-1000, 1000, (40, 40, 40)).astype(np.float32), (1.0, 1.0, 1.0)),
                     tmp_path / "ct.nii.gz")
    assert main(["segment", str(ct), "--model", "mri-spine", "--out", str(out)]) == 2
    assert main(["segment", str(ct), "--out", str(out), "--labels", "spider", "--quiet"]) == 2
    assert not out.exists() and not report.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["axial_t2.nii.gz", "ct.nii.gz"]


# -- the shipped models on phantom studies -------------------------------------------------------------------
@pytest.mark.slow
def test_segment_a_spider_mha_writes_spider_values_that_match_its_mask(spider_case, spider_result):
    from lumbarlab.io import read_image

    case, folder = spider_case
    image, labels, rep = spider_result
    truth = read_image(folder / "mri" / "masks" / f"{folder.name}_t2.mha")
    assert labels.shape == image.shape and np.allclose(labels.affine, image.affine, atol=1e-3)
    assert rep["label_convention"] == "spider"
    values = set(np.unique(labels.array).tolist()) - {0}
    assert values <= set(range(1, 7)) | {100} | set(range(201, 207)), values  # L5 = 1 … T12 = 6, canal, discs
    dice = _dice_by_value(truth.array, labels.array, sorted(set(np.unique(truth.array).tolist()) - {0}))
    vertebrae = [d for v, d in dice.items() if v < 100]
    discs = [d for v, d in dice.items() if v > 200]
    # the phantom's own test split, at the input's 1 mm pixels and SPIDER's values
    assert np.mean(vertebrae) >= 0.85 and np.mean(discs) >= 0.80 and dice[100] >= 0.80, dice
    assert rep["levels_found"][-6:] == ["L1", "L2", "L3", "L4", "L5", "S1"]
    assert rep["t2_contrast"]["csf_to_bone"] > 1.5


@pytest.mark.slow
@pytest.mark.parametrize("form", ["LPS.nii.gz", "PIL-dicom"])
def test_segment_gives_the_same_labels_in_another_axis_order_and_format(spider_case, spider_result, form, tmp_path):
    """The same study as a NIfTI in LPS order, or as a DICOM series of sagittal slices (slices along the file's
    third axis, as a scanner writes them): lumbarlab's values, the same structures at the same world points."""
    from lumbarlab.cli import main
    from lumbarlab.io import read_image, write_image
    from lumbarlab.labels import spider_to_verse
    from lumbarlab.volume import resample

    image, spider_labels, _ = spider_result
    orientation = form.split(".")[0].split("-")[0]
    moved = reorient(image, orientation)
    src = tmp_path / ("t2_dicom" if form.endswith("dicom") else "t2.nii.gz")
    write_image(moved, src, modality="MR")
    out = tmp_path / "labels.nii.gz"
    assert main(["segment", str(src), "--model", "mri-spine", "--out", str(out)]) == 0
    pred = read_image(out)
    assert pred.shape == read_image(src).shape
    back = resample(pred, image.shape, image.spacing, image.origin, image.direction, order=0).array
    ref = spider_to_verse(spider_labels.array)
    assert (back == 26).sum() > 1000  # lumbarlab's values keep the sacrum, which SPIDER's drop
    back = np.where(back == 26, 0, back)
    spine = (ref > 0) | (back > 0)
    assert np.mean(back[spine] == ref[spine]) > 0.95
    assert set(np.unique(back).tolist()) >= {20, 21, 22, 23, 24, 123, 124, 200}  # lumbarlab's values


@pytest.mark.slow
def test_a_t1_stack_without_a_header_is_refused_by_its_contrast(spider_case, tmp_path, capsys):
    from lumbarlab.cli import main

    _, folder = spider_case
    src = folder / "mri" / "images" / f"{folder.name}_t1.mha"
    out = tmp_path / "labels.mha"
    assert main(["segment", str(src), "--model", "mri-spine", "--out", str(out)]) == 2
    assert "T1-weighted" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_grade_a_spider_study_finds_the_degenerated_herniated_disc(spider_case, tmp_path):
    from lumbarlab.cli import main

    _, folder = spider_case
    src = folder / "mri" / "images" / f"{folder.name}_t2.mha"
    report_path = tmp_path / "grades.json"
    assert main(["grade", str(src), "--report", str(report_path)]) == 0
    rep = json.loads(report_path.read_text())
    discs = rep["discs"]
    assert list(discs) == ["T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    truth = PATHOLOGY["pfirrmann"]
    assert all(abs(discs[d]["pfirrmann"] - truth[d]) <= 1 for d in discs), {d: g["pfirrmann"] for d, g in discs.items()}
    assert discs["L4-L5"]["herniation"] and discs["L4-L5"]["pfirrmann"] >= 4
    assert not any(discs[d]["herniation"] for d in discs if d != "L4-L5")
    # the true grade: Verbiest's cut-offs on the canal measured behind each disc on the true SPIDER mask
    from lumbarlab.datasets.mri_discs import STENOSIS_GRADES, stenosis_grade
    from lumbarlab.io import read_image
    from lumbarlab.labels import spider_to_verse
    from lumbarlab.measure.sagittal import sagittal_disc_measurements

    mask = read_image(folder / "mri" / "masks" / f"{folder.name}_t2.mha")
    canal = {d: m["canal_ap_mm"] for d, m in sagittal_disc_measurements(mask.with_array(spider_to_verse(mask.array))).items()}
    truth_grade = {d: STENOSIS_GRADES[stenosis_grade(v)] for d, v in canal.items()}
    assert truth_grade["L4-L5"] != "normal/mild", canal  # the herniation narrows the 15 mm canal
    # Known gap (closing note of issue #17): the 8 mm herniation of a collapsed (grade V) disc leaves a 6.4 mm canal,
    # severe by Verbiest, but it is a thin sliver on 4 mm slabs and mri-discs calls it moderate. What must hold: the
    # narrowed level is the one graded worse than normal/mild, with the most "severe" probability of all discs.
    assert discs["L4-L5"]["stenosis"] in ("moderate", "severe"), discs["L4-L5"]
    severe = {d: g["stenosis_probabilities"]["severe"] for d, g in discs.items()}
    assert max(severe, key=severe.get) == "L4-L5", severe
    assert all(discs[d]["stenosis"] == truth_grade[d] for d in discs if d != "L4-L5"), (canal, discs)
    for g in discs.values():
        assert sum(g["pfirrmann_probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert sum(g["stenosis_probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.slow
def test_grade_refuses_a_dicom_series_whose_header_says_t1(spider_case, tmp_path, capsys):
    from lumbarlab.cli import main
    from lumbarlab.dicom import write_dicom_series
    from lumbarlab.io import read_image

    _, folder = spider_case
    image = read_image(folder / "mri" / "images" / f"{folder.name}_t2.mha")
    src = write_dicom_series(reorient(image, "PIL"), tmp_path / "series", modality="MR", description="SAG T1 TSE")
    report = tmp_path / "grades.json"
    assert main(["grade", str(src), "--report", str(report)]) == 2
    assert "T1-weighted by its header" in capsys.readouterr().err and not report.exists()
