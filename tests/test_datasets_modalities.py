"""Datasets per modality: 3D CT/MRI volumes and patches, thick sagittal MRI stacks, the intensity
normalisations, converted-layout records, and the square fit that moves corners and masks with the image."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab.datasets import (
    FetchedVolumes,
    PatchDataset,
    SquareFit,
    VolumeDataset,
    fit_to_model,
    normalize_ct,
    normalize_mri,
    phantom_ct,
    phantom_sagittal_stacks,
    phantom_volumes,
)
from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import VERSE_LABEL


def test_ct_volumes_and_patches_keep_labels_on_the_image():
    data = VolumeDataset(phantom_ct(2, seed=3, shape=(40, 40, 56), spacing=3.0), normalize=normalize_ct)
    image, labels = data[1]
    assert image.shape == (1, 40, 40, 56) and labels.shape == (40, 40, 56)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert set(np.unique(labels.numpy())) >= {0, VERSE_LABEL["L3"], 200}
    # bone is brighter than soft tissue after the window, where the labels say bone is
    bone = labels.numpy() == VERSE_LABEL["L3"]
    assert image[0].numpy()[bone].mean() > image[0].numpy()[labels.numpy() == 0].mean()
    patches = PatchDataset(data, patch=(24, 24, 24), per_volume=3, positive=1.0, seed=5)
    assert len(patches) == 6
    p_img, p_lab = patches[4]
    assert p_img.shape == (1, 24, 24, 24) and p_lab.shape == (24, 24, 24)
    assert (p_lab > 0).any()  # positive = 1: centred on a labelled voxel
    again = PatchDataset(data, patch=(24, 24, 24), per_volume=3, positive=1.0, seed=5)[4]
    assert np.array_equal(p_img.numpy(), again[0].numpy())  # reproducible from seed and index
    # the patch is a real crop of the case: its label values are the case's
    assert set(np.unique(p_lab.numpy())) <= set(np.unique(labels.numpy()))


def test_patch_larger_than_the_volume_is_padded():
    data = VolumeDataset(phantom_volumes(1, seed=1, modality="t2", shape=(32, 32, 40), spacing=4.0),
                         normalize=normalize_mri)
    image, labels = PatchDataset(data, patch=(48, 48, 48), per_volume=1)[0]
    assert image.shape == (1, 48, 48, 48) and labels.shape == (48, 48, 48)


def test_sagittal_stacks_and_mri_normalisation():
    (pair,) = phantom_sagittal_stacks(1, seed=2, weighting="T1", thickness=4.0, shape=(64, 64, 80), spacing=2.0)
    assert pair.image.spacing == (4.0, 2.0, 2.0) and pair.image.shape == pair.labels.shape
    z = normalize_mri(pair.image.array)
    body = pair.image.array > 0
    assert abs(float(z[body].mean())) < 1e-4 and abs(float(z[body].std()) - 1) < 1e-3
    with pytest.raises(LumbarLabError, match="weighting"):
        phantom_sagittal_stacks(1, weighting="PD")


def test_normalize_ct_window():
    np.testing.assert_allclose(normalize_ct(np.array([-2000.0, -1000.0, 500.0, 2000.0, 5000.0])),
                               [0.0, 0.0, 0.5, 1.0, 1.0])


@pytest.mark.parametrize("shape", [(100, 60), (60, 100), (77, 77), (101, 64)])
def test_square_fit_moves_points_and_masks_with_the_image(shape):
    rng = np.random.default_rng(0)
    image = np.zeros(shape, np.float32)
    labels = np.zeros(shape, np.uint8)
    r0, c0 = shape[0] // 3, shape[1] // 3
    image[r0 : r0 + 10, c0 : c0 + 8] = 1.0
    labels[r0 : r0 + 10, c0 : c0 + 8] = 5
    fit = SquareFit.for_shape(shape, 64)
    out, out_labels = fit.image(image, fill=0.0), fit.labels(labels)
    centre = fit.points([[c0 + 3.5, r0 + 4.5]])[0]  # the block's centre (x, y)
    rows, cols = np.nonzero(out > 0.5)
    assert abs(cols.mean() - centre[0]) < 0.6 and abs(rows.mean() - centre[1]) < 0.6
    lr, lc = np.nonzero(out_labels == 5)
    assert abs(lc.mean() - centre[0]) < 0.6 and abs(lr.mean() - centre[1]) < 0.6
    pts = rng.uniform(0, min(shape), (10, 2))
    np.testing.assert_allclose(fit.inverse_points(fit.points(pts)), pts, atol=1e-9)
    assert fit.spacing((0.2, 0.2)) == pytest.approx((0.2 / fit.scale, 0.2 / fit.scale))
    assert np.allclose(fit_to_model(image, 64), fit.image(image))


def test_fetched_volumes_read_typed_records(tmp_path):
    import json

    from lumbarlab.fetch.layout import read_index
    from lumbarlab.io import write_image

    pair = phantom_ct(1, seed=4, shape=(32, 32, 40), spacing=4.0)[0]
    write_image(pair.image, tmp_path / "images" / "c1.nii.gz")
    write_image(pair.labels, tmp_path / "labels" / "c1.nii.gz")
    cases = [{"id": "c1", "modality": "CT", "image": "images/c1.nii.gz", "label": "labels/c1.nii.gz", "spacing": [4, 4, 4],
              "centroids": []}, {"id": "c2", "modality": "CT", "image": "images/c1.nii.gz"}]
    (tmp_path / "index.json").write_text(json.dumps({"dataset": "verse19", "cases": cases}))
    index = read_index(tmp_path)
    assert index.cases[0].extra == {"spacing": [4, 4, 4], "centroids": []}  # kept, not lost
    assert index.cases[0].to_dict()["label"] == "labels/c1.nii.gz"
    data = FetchedVolumes(tmp_path)
    assert len(data) == 1 and data.name == "verse19"  # only cases with labels
    image, labels = data.volume(0)
    assert np.array_equal(np.asarray(labels.array), np.asarray(pair.labels.array))
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(LumbarLabError, match="not a lumbarlab index"):
        read_index(tmp_path)
    with pytest.raises(LumbarLabError, match="lumbarlab fetch"):
        read_index(tmp_path / "absent")


def test_normalisations_leave_their_input_alone():
    raw = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)
    kept = raw.copy()
    normalize_mri(raw)
    normalize_ct(raw)
    assert np.array_equal(raw, kept)
