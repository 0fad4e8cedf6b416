"""The data of the MRI spine models: varied phantom stacks, 2.5D slabs, class maps, augmentation, per-disc crops
and their grades, the slice-wise predictor, and RSNA's weighted log loss — known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab.datasets.mri_discs import (
    CROP,
    DiscCropDataset,
    disc_crop,
    disc_frame,
    disc_targets,
    phantom_disc_stacks,
    stenosis_grade,
)
from lumbarlab.datasets.mri_spine import (
    MRI_SPINE_CLASSES,
    SagittalSlabDataset,
    mri_augment,
    mri_spine_pathology,
    phantom_mri_spine,
    slab_context,
    to_classes,
)


@pytest.fixture(scope="module")
def stacks():
    return phantom_mri_spine(2, seed=700_000, shape=(48, 96, 112), spacing=2.0)


def test_pathology_is_drawn_from_the_seed_and_covers_every_grade():
    draws = [mri_spine_pathology(s) for s in range(300)]
    assert draws[7] == mri_spine_pathology(7)
    grades = np.array([g for d in draws for g in d["pfirrmann"].values()])
    assert set(grades) == {1, 2, 3, 4, 5} and all(0.15 < np.mean(grades == g) < 0.25 for g in range(1, 6))
    hern = [mm for d in draws for mm in d["herniation"].values()]
    assert 0.15 < len(hern) / (6 * 300) < 0.25 and min(hern) >= 2.0 and max(hern) <= 8.0
    assert 0.22 < np.mean(["stenosis" in d for d in draws]) < 0.38


def test_stacks_are_thick_sagittal_slabs_with_every_structure(stacks):
    image, labels = stacks[0].image, stacks[0].labels
    assert image.spacing == (4.0, 2.0, 2.0) and image.shape == labels.shape == (24, 96, 112)
    assert set(MRI_SPINE_CLASSES) <= set(np.unique(labels.array).tolist())


def test_to_classes_and_back():
    values = np.array(MRI_SPINE_CLASSES + (0, 27))
    classes = to_classes(values)
    assert classes.tolist() == list(range(1, 15)) + [0, 0]


def test_slab_dataset_gives_each_labelled_slab_with_its_neighbours(stacks):
    data = SagittalSlabDataset(stacks)
    image, target = data[0]
    k, s = data.index[0]
    assert image.shape == (3, 96, 112) and target.shape == (96, 112) and target.dtype == torch.int64
    from lumbarlab.datasets.mri import normalize_mri

    norm = normalize_mri(stacks[k].image.array)
    assert np.allclose(image.numpy(), slab_context(norm, s))
    assert np.array_equal(target.numpy(), to_classes(stacks[k].labels.array[s]))
    labelled = sum(int(t.reshape(t.shape[0], -1).any(axis=1).sum()) for t in data.targets)
    assert labelled <= len(data) < labelled + 24  # every labelled slab, and a few empty ones


def test_augmentation_keeps_labels_on_the_anatomy():
    """A bright square labelled 1 stays labelled where it stays bright, whatever the affine and crop do."""
    image = torch.zeros(3, 64, 64)
    image[:, 20:40, 24:44] = 5.0
    labels = torch.zeros(64, 64, dtype=torch.int64)
    labels[20:40, 24:44] = 1
    aug = mri_augment(3, patch=(48, 56))
    for _ in range(5):
        im, lab = aug(image, labels)
        assert im.shape == (3, 48, 56) and lab.shape == (48, 56)
        if (lab == 1).sum() > 50:
            assert im[1][lab == 1].mean() > im[1][lab == 0].mean() + 1.0


def test_predict_slicewise_equals_running_each_slab_with_its_neighbours():
    from lumbarlab.infer import Predictor, predict_slicewise

    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 4, 3, padding=1)
    stack = np.random.default_rng(0).normal(size=(6, 20, 24)).astype(np.float32)
    out = predict_slicewise(Predictor(net, 2, in_channels=3, output="logits", device="cpu", freeze=False), stack)
    with torch.no_grad():
        manual = np.stack([net(torch.from_numpy(slab_context(stack, i))[None])[0].numpy() for i in range(6)], axis=1)
    assert out.shape == (4, 6, 20, 24) and np.allclose(out, manual, atol=1e-5)


# -- disc crops and grades ---------------------------------------------------------------------------------
def test_stenosis_grades_follow_verbiest_cut_offs():
    assert [stenosis_grade(v) for v in (20.0, 13.0, 12.99, 10.0, 9.99, 5.0)] == [0, 0, 1, 1, 2, 2]


def test_disc_targets_take_grades_from_the_truth_and_stenosis_from_the_measured_canal():
    truth = {"discs": {"L4-L5": {"pfirrmann": 4, "herniation_mm": 5.0}, "L3-L4": {"pfirrmann": 1, "herniation_mm": 0.0}}}
    assert disc_targets(truth, "L4-L5", 9.0) == (3, 1, 2)
    assert disc_targets(truth, "L3-L4", 14.0) == (0, 0, 0)


def test_sagittal_measurements_read_the_phantoms_canal_and_a_herniation_narrows_it():
    """On the true labels of phantom stacks with a known canal (AP 14 mm; 9 mm): the AP diameter behind every disc
    within 1.5 mm of it, and a 6 mm herniation narrows the canal at its disc by 2–6 mm (it fills the epidural fat
    first)."""
    from lumbarlab.measure.sagittal import sagittal_disc_measurements
    from lumbarlab.phantom import make_case

    for canal, hern in ((14.0, {"L4-L5": 6.0}), (9.0, {})):
        case = make_case(900_321, shape=(96, 176, 192), spacing=1.25, modalities=("t2",), stenosis=canal,
                         herniation=hern)
        _, labels = case.mri_sagittal("T2", 4.0)
        m = sagittal_disc_measurements(labels)
        assert len(m) == 6
        for disc, v in m.items():
            if disc in hern:
                assert 2.0 <= canal - v["canal_ap_mm"] <= 6.0, (disc, v)
            else:
                assert abs(v["canal_ap_mm"] - canal) <= 1.5, (disc, v)
            assert v["height_mm"] > 3.0 and v["canal_area_mm2"] > 0.0


@pytest.mark.parametrize("angle", [0.0, 25.0, -40.0])
def test_disc_frame_and_crop_put_a_tilted_disc_flat_in_the_middle(angle):
    """A 30 × 8 pixel bar turned by ``angle`` degrees: its frame finds the centre and the direction, and the crop
    shows it horizontal and centred (rows across the disc, columns along it)."""
    a = np.radians(angle)
    yy, zz = np.meshgrid(np.arange(100.0), np.arange(100.0), indexing="ij")
    u = (yy - 52.0) * np.cos(a) + (zz - 47.0) * np.sin(a)
    v = -(yy - 52.0) * np.sin(a) + (zz - 47.0) * np.cos(a)
    bar = (np.abs(u) <= 15) & (np.abs(v) <= 4)
    mask = np.stack([np.zeros_like(bar), bar, bar & (np.abs(u) <= 10)])
    slab, centre, along = disc_frame(mask)
    assert slab == 1 and np.allclose(centre, [52.0, 47.0], atol=0.2)
    assert abs(abs(np.dot(along, [np.cos(a), np.sin(a)])) - 1.0) < 1e-3 and along[0] >= 0
    crop = disc_crop(mask.astype(np.float32), slab, centre, along, back_mm=0.0)[1]
    c = (CROP - 1) / 2
    rows, cols = np.nonzero(crop > 0.5)
    assert abs(rows.mean() - c) < 0.6 and abs(cols.mean() - c) < 0.6
    assert 28 <= np.ptp(cols) + 1 <= 32 and 7 <= np.ptp(rows) + 1 <= 10  # long along the columns, thin across
    # by default the crop's centre lies 8 mm (6.4 pixels of 1.25 mm) behind the disc: the disc sits anterior of centre
    shifted = disc_crop(mask.astype(np.float32), slab, centre, along)[1]
    assert abs(np.nonzero(shifted > 0.5)[1].mean() - (c + 6.4)) < 0.6


def test_phantom_disc_crops_carry_each_discs_true_grades():
    stack = phantom_disc_stacks(1, seed=700_010, shape=(48, 96, 112), spacing=2.0)[0]
    from lumbarlab.datasets.mri_spine import mri_spine_pathology

    p = mri_spine_pathology(700_010)
    assert len(stack.frames) == 6
    for disc, (pf, hern, _) in stack.targets.items():  # stenosis: from the measured canal (tested above)
        assert pf == p["pfirrmann"][disc] - 1 and hern == int(p["herniation"].get(disc, 0.0) >= 2.0)
    data = DiscCropDataset([stack], jitter=True, seed=1)
    x, y = data[0]
    assert x.shape == (3, CROP, CROP) and y.shape == (3,) and torch.isfinite(x).all()


def test_weighted_log_loss_equals_scikit_learns_with_rsna_weights():
    from sklearn.metrics import log_loss

    from lumbarlab.metrics import weighted_log_loss

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    p = rng.dirichlet([1, 1, 1], 200)
    expected = log_loss(y, p, sample_weight=np.array([1.0, 2.0, 4.0])[y], labels=[0, 1, 2])
    assert weighted_log_loss(y, p) == pytest.approx(expected, rel=1e-9)
