"""Writers: each file re-read with nibabel / SimpleITK / PIL lands on the same geometry."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from lumbarlab.errors import LumbarLabError
from lumbarlab.io import RAS_TO_LPS, read_image, write_image
from lumbarlab.phantom import VERSE_LABEL, centroids, to_spider
from lumbarlab.phantom.export import read_corners_csv, write_case
from lumbarlab.volume import Volume


@pytest.fixture(scope="module")
def written(tmp_path_factory, small_case):
    out = tmp_path_factory.mktemp("cases")
    return small_case, write_case(small_case, out, "case01")


def test_verse_ct_and_mask_geometry(written):
    case, folder = written
    ct = nib.load(folder / "ct" / "sub-case01_ct.nii.gz")
    np.testing.assert_allclose(ct.affine, case.ct.affine, atol=1e-4)
    assert nib.aff2axcodes(ct.affine) == ("R", "A", "S")
    np.testing.assert_allclose(np.asarray(ct.dataobj), np.round(case.ct.array).clip(-1024, 3071), atol=0.5)
    msk = nib.load(folder / "ct" / "sub-case01_seg-vert_msk.nii.gz")
    data = np.asarray(msk.dataobj)
    assert set(np.unique(data)) <= {0, *VERSE_LABEL.values()}
    np.testing.assert_array_equal(data > 0, np.isin(case.labels.array, list(VERSE_LABEL.values())))


def test_verse_centroids_point_at_the_vertebrae(written):
    case, folder = written
    ctd = json.loads((folder / "ct" / "sub-case01_seg-vb_ctd.json").read_text())
    assert ctd[0] == {"direction": ["R", "A", "S"]}
    world = centroids(case.labels)
    names = {v: k for k, v in VERSE_LABEL.items()}
    for entry in ctd[1:]:
        ijk = np.array([entry["X"], entry["Y"], entry["Z"]])
        np.testing.assert_allclose(case.labels.index_to_world(ijk), world[names[entry["label"]]], atol=0.05)
        i, j, k = np.round(ijk).astype(int)
        if names[entry["label"]] in ("L1", "L2", "L3", "L4", "L5"):
            # inside its vertebra or the canal, within a voxel (the clinical body's posterior wall is notched)
            near = case.labels.array[max(i - 1, 0): i + 2, max(j - 1, 0): j + 2, max(k - 1, 0): k + 2]
            assert np.isin(near, (entry["label"], 200)).any()


def test_spider_mri_geometry_and_values(written):
    case, folder = written
    img = sitk.ReadImage(str(folder / "mri" / "images" / "case01_t2.mha"))
    msk = sitk.ReadImage(str(folder / "mri" / "masks" / "case01_t2.mha"))
    image, labels = case.mri_sagittal("t2")
    assert img.GetSize() == image.shape  # ITK sizes are (x, y, z), like our (i, j, k)
    np.testing.assert_allclose(img.GetSpacing(), image.spacing)
    np.testing.assert_allclose(img.GetOrigin(), RAS_TO_LPS @ np.asarray(image.origin), atol=1e-4)
    arr = sitk.GetArrayFromImage(msk).transpose(2, 1, 0)
    np.testing.assert_array_equal(arr, to_spider(labels.array))
    values = set(np.unique(arr))
    assert 1 in values and 100 in values and 201 in values  # L5, canal, L5/S1 disc
    assert values <= {0, 1, 2, 3, 4, 5, 6, 100, *range(201, 207)}


def test_spider_numbering_from_the_bottom():
    labels = np.array([VERSE_LABEL["L5"], VERSE_LABEL["L1"], VERSE_LABEL["T12"], 124, 119, 200, 26], dtype=np.uint8)
    np.testing.assert_array_equal(to_spider(labels), [1, 5, 6, 201, 206, 100, 0])


def test_xray_png_and_corner_csv(written):
    case, folder = written
    png = np.array(Image.open(folder / "xray" / "case01_lateral.png"))
    assert png.dtype == np.uint8 and png.shape == case.lateral.shape
    np.testing.assert_allclose(png / 255.0, case.lateral.image, atol=1 / 255)
    lab = np.array(Image.open(folder / "xray" / "case01_lateral_label.png"))
    np.testing.assert_array_equal(lab, case.lateral.labels)
    corners = read_corners_csv(folder / "xray" / "case01_lateral.csv")
    for name, c in case.lateral.corners.items():
        np.testing.assert_allclose(corners[name], c, atol=1e-3)


def test_truth_json_holds_parameters_and_measured_truth(written):
    case, folder = written
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["params"]["slip"] == {"L4": 20.0}
    assert truth["slip"]["L4"]["slip_percent"] == pytest.approx(20.0, abs=0.5)
    assert truth["grid"]["spacing_mm"] == [2.0, 2.0, 2.0]
    assert set(truth["vertebrae"]) == {"T12", "L1", "L2", "L3", "L4", "L5", "S1"}


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
def test_oblique_volume_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    theta = np.radians(20)
    direction = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    vol = Volume(rng.integers(0, 200, (7, 9, 5)).astype(np.int16), (0.7, 1.1, 3.0), (10.0, -20.0, 5.5), direction)
    back = read_image(write_image(vol, tmp_path / f"v{suffix}"))
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)


def test_failed_write_keeps_the_old_case(tmp_path, small_case, monkeypatch):
    folder = write_case(small_case, tmp_path, "keep")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    import lumbarlab.phantom.export as export

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export, "write_png", broken)
    with pytest.raises(OSError):
        write_case(small_case, tmp_path, "keep")
    after = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    assert before == after
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]  # no temporary folder left behind


def test_read_image_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(LumbarLabError, match="broken.nii.gz"):
        read_image(bad)
    with pytest.raises(LumbarLabError, match="no such file"):
        read_image(tmp_path / "missing.mha")
