"""`lumbarlab segment` and the label clean-up under it: known answers on phantom CTs written as a user would
have them (NIfTI, MHA, a DICOM series; RAS, LPS, PIR; isotropic and thick-slice), refusals of what is not a CT,
and nothing written when it fails."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lumbarlab.errors import LumbarLabError
from lumbarlab.postprocess import clean_vertebra_labels, name_in_order, vertebra_instances
from lumbarlab.volume import Volume, reorient, resample

ORDER = (19, 20, 21, 22, 23, 24, 26)  # T12, L1–L5, sacrum: head to feet


@pytest.fixture(scope="module")
def truth_labels():
    from lumbarlab.phantom import make_case

    return make_case(900_123, shape=(80, 72, 96), spacing=2.5, modalities=()).labels


# -- the clean-up, on ground truth with known damage -----------------------------------------------------
def _damaged(labels: Volume) -> np.ndarray:
    a = np.array(labels.array, copy=True)
    l3, l4 = a == 22, a == 23
    a[l3], a[l4] = 23, 22  # L3 and L4 swapped, as a network that cannot count would paint them
    idx = np.argwhere(a == 21)[:1] + 4  # a speck of L5 inside L2 (under 1 cm³)
    a[tuple(idx[0] + np.array([0, 0, 0]))] = 24
    return a


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "PIR"])
def test_clean_up_restores_swapped_levels_and_specks_in_every_orientation(truth_labels, orientation):
    labels = reorient(truth_labels, orientation)
    damaged = labels.with_array(_damaged(labels))
    fixed = clean_vertebra_labels(damaged, ORDER)
    # the same as cleaning the undamaged map (which only drops the ground truth's own specks, < 0.1 %)
    expected = clean_vertebra_labels(labels, ORDER).array
    wrong = {v: int(np.sum((fixed.array == v) != (expected == v))) for v in ORDER}
    assert wrong == {v: 0 for v in ORDER}, wrong
    untouched = np.isin(labels.array, (200, 119, 120, 121, 122, 123, 124))
    assert np.array_equal(fixed.array[untouched], labels.array[untouched])  # discs and canal are left alone


def test_clean_up_leaves_ground_truth_alone_and_merges_pieces_of_one_vertebra(truth_labels):
    same = clean_vertebra_labels(truth_labels, ORDER)
    vert = np.isin(truth_labels.array, ORDER)
    assert np.mean(same.array[vert] == truth_labels.array[vert]) > 0.999
    a = np.array(truth_labels.array, copy=True)
    body = np.argwhere(a == 22)
    upper = body[body[:, 2] > np.median(body[:, 2])]
    a[tuple(upper.T)] = 21  # the top half of L3 painted L2: one vertebra in two labels
    _, instances = vertebra_instances(truth_labels.with_array(a), ORDER)
    assert len(instances) == len([v for v in ORDER if (truth_labels.array == v).any()])


def test_name_in_order_follows_the_votes_and_the_geometry():
    from lumbarlab.postprocess import Instance

    z = [90.0, 60.0, 30.0, 0.0]
    votes = [{21: 50}, {22: 5, 23: 45}, {22: 40}, {24: 30, 26: 1}]  # L3 and L4 swapped
    insts = [Instance(np.arange(1), v, np.array([0, 0, zz])) for v, zz in zip(votes, z, strict=True)]
    assert name_in_order(insts, ORDER) == [21, 22, 23, 24]
    assert name_in_order([], ORDER) == []


# -- what is not a CT ---------------------------------------------------------------------------------------
def test_check_ct_refuses_mr_2d_empty_and_dicom_mr():
    from lumbarlab.phantom import make_case
    from lumbarlab.segment import check_ct

    case = make_case(7, shape=(48, 48, 56), spacing=3.0, modalities=("ct", "t2"))
    check_ct(case.ct)  # a CT passes
    with pytest.raises(LumbarLabError, match="does not look like a CT"):
        check_ct(case.t2)
    with pytest.raises(LumbarLabError, match="2D image"):
        check_ct(Volume(case.ct.array[:, :, :1], case.ct.spacing))
    with pytest.raises(LumbarLabError, match="empty"):
        check_ct(case.ct.with_array(np.full(case.ct.shape, -1000.0, np.float32)))
    with pytest.raises(LumbarLabError, match="DICOM MR"):
        check_ct(Volume(case.ct.array, case.ct.spacing, meta={"modality": "MR"}))


def test_segment_cli_refuses_an_mr_with_exit_code_2_and_writes_nothing(tmp_path, capsys):
    from lumbarlab.cli import main
    from lumbarlab.io import write_image
    from lumbarlab.phantom import make_case

    t1 = make_case(7, shape=(48, 48, 56), spacing=3.0, modalities=("t1",)).t1
    src = write_image(t1, tmp_path / "t1.nii.gz")
    out, report = tmp_path / "labels.nii.gz", tmp_path / "report.json"
    assert main(["segment", str(src), "--out", str(out), "--report", str(report), "--quiet"]) == 2
    assert "not look like a CT" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t1.nii.gz"]
    flat = write_image(Volume(np.zeros((64, 64, 1), np.float32), (0.5, 0.5, 1.0)), tmp_path / "xray.nii.gz")
    assert main(["segment", str(flat), "--out", str(out), "--quiet"]) == 2
    assert "2D image" in capsys.readouterr().err and not out.exists()
    assert main(["segment", str(src), "--out", str(out), "--model", "xray-vertebrae", "--quiet"]) == 2
    assert "3D CT segmentation model" in capsys.readouterr().err and not out.exists()


def test_labels_to_grid_round_trips_a_label_map_through_a_coarser_grid(truth_labels):
    from lumbarlab.segment import labels_to_grid, model_grid

    labels = reorient(truth_labels, "LPS")
    grid = model_grid(labels, 4.0)
    coarse = resample(labels, grid.shape, grid.spacing, grid.origin, grid.direction, order=0)
    back = labels_to_grid(coarse, labels, ORDER)
    assert back.shape == labels.shape and np.allclose(back.affine, labels.affine)
    from lumbarlab import metrics

    for v in (20, 21, 22, 23, 24):
        assert metrics.dice(labels.array == v, back.array == v) > 0.8, v


# -- the shipped model on phantom CTs a user could have -------------------------------------------------------
@pytest.fixture(scope="module")
def patient():
    """A test-split anatomy (never trained on) with an L1 fracture of 35 %, 1 mm voxels, a body-wide field."""
    from lumbarlab.phantom import make_case

    return make_case(900_321, shape=(300, 220, 240), spacing=1.0, modalities=("ct",), fracture={"L1": 35})


def _vertebra_dice(truth: np.ndarray, pred: np.ndarray) -> dict[int, float]:
    from lumbarlab import metrics

    return {v: metrics.dice(truth == v, pred == v) for v in ORDER if (truth == v).sum() > 2000}


def _as_user_file(ct: Volume, folder, form: str):
    """``ct`` written as a user would have it: ``form`` is ORIENTATION.suffix, or ORIENTATION-dicom."""
    from lumbarlab.io import write_image

    orientation = form.split(".")[0].split("-")[0]
    ct = reorient(ct.with_array(np.round(ct.array).astype(np.int16)), orientation)
    src = folder / ("ct_dicom" if form.endswith("dicom") else f"ct.{form.split('.', 1)[1]}")
    write_image(ct, src, modality="CT")
    return src


@pytest.fixture(scope="module")
def ras_result(patient, tmp_path_factory):
    from lumbarlab.cli import main
    from lumbarlab.io import read_image

    folder = tmp_path_factory.mktemp("ras")
    src = _as_user_file(patient.ct, folder, "RAS.nii.gz")
    out, report = folder / "labels.nii.gz", folder / "report.json"
    assert main(["segment", str(src), "--out", str(out), "--report", str(report), "--quiet"]) == 0
    return read_image(out), json.loads(report.read_text())


@pytest.mark.slow
def test_segment_a_phantom_ct_labels_measures_and_reports(patient, ras_result):
    labels, rep = ras_result
    assert labels.shape == patient.ct.shape and np.allclose(labels.affine, patient.ct.affine, atol=1e-3)
    dice = _vertebra_dice(patient.labels.array, labels.array)
    assert np.mean(list(dice.values())) >= 0.90, dice
    assert rep["levels_found"] == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert rep["vertebrae"]["T12"]["truncated"] is True  # the field cuts T12: no heights, no reference for L1
    assert "anterior_height_mm" not in rep["vertebrae"]["T12"]
    losses = {k: v["height_loss_percent"] for k, v in rep["vertebrae"].items() if "height_loss_percent" in v}
    # the fractured L1 (35 %) is the most deformed level; the 2 mm model smooths its wedge, so the loss it
    # measures is lower than the truth's (a known gap: Genant from predicted masks under-grades)
    assert max(losses, key=losses.get) == "L1" and losses["L1"] >= 10.0, losses
    assert all(v < 10.0 for k, v in losses.items() if k != "L1"), losses
    hu = [v["trabecular_hu"] for v in rep["vertebrae"].values() if "trabecular_hu" in v]
    assert abs(np.median(hu) - patient.truth["bone_density"]["trabecular_hu"]) < 25.0, hu


@pytest.mark.slow
@pytest.mark.parametrize("form", ["LPS.mha", "PIR.nrrd", "LPS-dicom"])
def test_segment_gives_the_same_labels_in_every_orientation_and_format(patient, ras_result, form, tmp_path):
    """The same CT stored in another axis order or format: the same labels, voxel for voxel (the model grid is
    axis-aligned in world space whatever the file's order)."""
    from lumbarlab.cli import main
    from lumbarlab.io import read_image

    src = _as_user_file(patient.ct, tmp_path, form)
    out = tmp_path / "labels.nii.gz"
    assert main(["segment", str(src), "--out", str(out), "--quiet"]) == 0
    pred = read_image(out)
    assert pred.shape == read_image(src).shape and np.allclose(pred.affine, read_image(src).affine, atol=1e-3)
    back = reorient(pred, "RAS").array
    ras = ras_result[0].array
    vertebra = (ras > 0) | (back > 0)
    assert np.mean(back[vertebra] == ras[vertebra]) > 0.99


@pytest.mark.slow
def test_segment_a_thick_slice_ct(patient, tmp_path):
    """0.8 mm in plane, 2.5 mm slices, stored PIR: the labels on that grid still match its truth."""
    from lumbarlab.segment import segment_volume

    grid = Volume(np.zeros((375, 275, 96), np.uint8), (0.8, 0.8, 2.5), patient.ct.origin)
    ct = resample(patient.ct, grid.shape, grid.spacing, grid.origin, order=1)
    truth = resample(patient.labels, grid.shape, grid.spacing, grid.origin, order=0)
    result = segment_volume(reorient(ct, "PIR"), measure=False)
    dice = _vertebra_dice(reorient(truth, "PIR").array, result.labels.array)
    assert np.mean(list(dice.values())) >= 0.88, dice


@pytest.mark.slow
def test_segment_a_short_field_of_view_names_the_levels_it_holds(patient):
    """Only L3 to the sacrum in the field (a pelvic CT): the names come from the sacrum up, and the report says
    the field cuts the spine."""
    from lumbarlab.segment import segment_volume

    z = np.argwhere(patient.labels.array == 22)[:, 2]
    cut = (slice(None), slice(None), slice(0, int(z.mean())))  # from the feet to the middle of L3
    ct, labels = patient.ct.crop(cut), patient.labels.crop(cut)
    result = segment_volume(ct, measure=False)
    dice = _vertebra_dice(labels.array, result.labels.array)
    assert set(dice) >= {23, 24, 26} and np.mean([dice[v] for v in (23, 24, 26)]) >= 0.88, dice
    assert result.report["truncated"] is True
    assert not {"T12", "L1"} & set(result.report["levels_found"])
