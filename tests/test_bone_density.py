"""Bone density on CT: the trabecular ROI, the crops a density model learns from, the teaching model of DXA, and
the contrast/kVp shifts a screening threshold meets — each against the density the phantom was built with."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab.datasets import DENSITY_CLASSES, dxa_t_score, phantom_bone_density
from lumbarlab.measure import trabecular_core, trabecular_hu


@pytest.fixture(scope="module")
def native_case():
    from lumbarlab.phantom import make_case

    return make_case(900_777, shape=(80, 80, 115), spacing=2.0, modalities=("ct",), bmd=95.0,
                     acquisition={"ct_phase": "native", "ct_kvp": 120.0})


def test_trabecular_core_lies_inside_the_body_away_from_the_cortex(native_case):
    labels = native_case.labels
    core = trabecular_core(labels, "L1", erode_mm=4.0)
    assert core.any() and (labels.array[core] == 20).all()
    from scipy import ndimage

    # at least 4 mm (two 2 mm voxels) from anything that is not L1
    outside = labels.array != 20
    distance_mm = ndimage.distance_transform_edt(~outside, sampling=labels.spacing)
    assert distance_mm[core].min() >= 4.0 - 1e-6
    assert trabecular_core(labels, "L1", erode_mm=2.0).sum() > core.sum()  # less erosion, a larger ROI
    assert abs(trabecular_hu(native_case.ct, labels, "L1") - 95.0) < 10.0


def test_the_mean_of_an_uneroded_roi_takes_in_the_cortex(native_case):
    ct, labels = native_case.ct, native_case.labels
    mean0 = float(ct.array[trabecular_core(labels, "L1", erode_mm=0.0)].mean())
    mean4 = float(ct.array[trabecular_core(labels, "L1", erode_mm=4.0)].mean())
    assert mean0 > mean4 + 15.0  # cortex at 600–1000 HU in the rim pulls the mean up
    assert abs(mean4 - 95.0) < 12.0


def test_density_crops_know_their_truth_and_the_contrast_shift():
    split = phantom_bone_density(16, seed=900_100, crop=20, spacing=2.0)
    assert split.images.shape == (16, 20, 20, 20) and len(split) == 16
    assert np.array_equal(split.category, np.where(split.bmd <= 110, 0, np.where(split.bmd <= 160, 1, 2)))
    assert DENSITY_CLASSES[0] == "osteoporosis"
    native = (split.phase == "native") & (split.kvp == 120.0)
    if native.any():  # no contrast, the reference voltage: the ROI reads the truth
        assert np.abs(split.roi_hu[native] - split.bmd[native]).max() < 12.0
    # the crop is centred on L1's trabecular bone: its centre reads near the truth, not air or muscle
    centre = split.images[:, 8:12, 8:12, 8:12].reshape(16, -1).mean(axis=1)
    assert np.corrcoef(centre, split.bmd)[0, 1] > 0.8
    again = phantom_bone_density(2, seed=900_100, crop=20, spacing=2.0)
    assert np.array_equal(again.images, split.images[:2])  # reproducible from the seed


def test_dxa_teaching_model_follows_its_line():
    hu = np.full(20_000, 100.0)
    t = dxa_t_score(hu, seed=1)
    assert abs(t.mean() + 2.5) < 0.02 and abs(t.std() - 0.7) < 0.02
    assert abs(dxa_t_score(np.full(20_000, 160.0), seed=2).mean() + 1.0) < 0.02
