"""Low-dose CT pairs and the denoising score: quarter dose doubles the noise of the same patient, the noise-free
image does not depend on the dose, crops keep noisy and clean aligned, and the zoo's denoising test scores a
do-nothing model at 0 dB and a smoothing filter better at low dose than at full dose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab.datasets.ct_dose import (
    DENOISE_SCALE_HU,
    DoseSliceDataset,
    axial_slices,
    from_denoiser,
    phantom_ct_dose,
    to_denoiser,
)
from lumbarlab.errors import LumbarLabError

SMALL = dict(shape=(96, 80, 12), spacing=(3.0, 3.0, 8.0))


@pytest.fixture(scope="module")
def doses():
    return {d: phantom_ct_dose(2, seed=900_000, dose=d, **SMALL) for d in (0.25, 1.0)}


def test_quarter_dose_doubles_the_noise_of_the_same_patient(doses):
    for quarter, full in zip(doses[0.25], doses[1.0], strict=True):
        assert np.array_equal(quarter.clean.array, full.clean.array)  # the anatomy does not depend on the dose
        sd_q = float(np.std(quarter.noisy.array - quarter.clean.array))
        sd_f = float(np.std(full.noisy.array - full.clean.array))
        assert sd_q / sd_f == pytest.approx(2.0, rel=0.01)  # noise ∝ 1/√dose (Bushberg et al., ch. 10)
        assert 5.0 < sd_f < 60.0  # HU: the phantom's clinical noise at the reference dose


def test_each_case_keeps_its_own_dose_when_none_is_given():
    pairs = phantom_ct_dose(4, seed=100_000, **SMALL)
    from lumbarlab.datasets.ct import ct_spine_pathology

    assert [p.dose for p in pairs] == [ct_spine_pathology(100_000 + k)["ct_dose"] for k in range(4)]
    with pytest.raises(LumbarLabError, match="dose"):
        phantom_ct_dose(1, dose=0.0, **SMALL)


def test_scale_is_linear_and_invertible():
    hu = np.array([-1024.0, -1000.0, 0.0, 40.0, 1500.0, 3000.0])
    assert np.allclose(from_denoiser(to_denoiser(hu)), hu)
    assert to_denoiser(np.array([DENOISE_SCALE_HU]))[0] == 1.0  # no clipping, no offset


def test_crops_keep_noisy_and_clean_aligned_under_augmentation(doses):
    pairs = doses[0.25]
    plain = DoseSliceDataset(pairs, patch=None)
    assert len(plain) == 2 * SMALL["shape"][2]
    noisy, clean = plain[3]
    assert np.allclose(from_denoiser(noisy[0].numpy()), axial_slices(pairs[0].noisy)[3])
    crops = DoseSliceDataset(pairs, patch=(32, 32), per_slice=3, seed=1, augment=True)
    assert len(crops) == 3 * len(plain)
    for i in range(0, len(crops), 7):
        n, c = crops[i]
        assert n.shape == c.shape == (1, 32, 32)
        k = i // 3
        full_n, full_c = crops.noisy[k], crops.clean[k]
        # the crop's noise (noisy − clean) is a rotated/mirrored window of the slice's noise: the same values
        found = False
        for turns in range(4):
            for flip in (False, True):
                nn_, cc = np.rot90(n[0].numpy(), -turns), np.rot90(c[0].numpy(), -turns)
                if flip:
                    nn_, cc = np.rot90(n[0].numpy()[:, ::-1], -turns), np.rot90(c[0].numpy()[:, ::-1], -turns)
                hit = np.argwhere(np.isclose(full_c, cc[0, 0]) & np.isclose(full_n, nn_[0, 0]))
                for y, x in hit:
                    if y + 32 <= full_c.shape[0] and x + 32 <= full_c.shape[1] and \
                            np.allclose(full_n[y:y + 32, x:x + 32], nn_) and np.allclose(full_c[y:y + 32, x:x + 32], cc):
                        found = True
        assert found
    assert torch.equal(crops[5][0], crops[5][0])  # reproducible item by item
    with pytest.raises(LumbarLabError, match="larger"):
        DoseSliceDataset(pairs, patch=(200, 200))


class _Identity(torch.nn.Module):
    def forward(self, x):
        return x


class _Smooth(torch.nn.Module):
    """A 3 × 3 box filter: a classical denoiser, no training."""

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)


def test_denoising_score_of_known_models(doses):
    from lumbarlab.zoo.tasks import evaluate_denoising

    nothing = evaluate_denoising(_Identity(), doses)
    assert nothing["psnr_gain_quarter"] == pytest.approx(0.0, abs=1e-4)  # float32 HU round trip
    assert nothing["bone_hu_bias_quarter"] == pytest.approx(0.0, abs=1e-3)
    assert nothing["psnr_noisy_full"] - nothing["psnr_noisy_quarter"] == pytest.approx(20 * np.log10(2), abs=0.3)
    smooth = evaluate_denoising(_Smooth(), doses)
    # on 3 mm voxels a box filter blurs bone and skin edges by hundreds of HU: it loses PSNR at every dose ...
    assert smooth["psnr_gain_full"] < 0
    # ... but the same blur removes more noise from a noisier scan: its gain grows as the dose falls
    assert smooth["psnr_gain_quarter"] > smooth["psnr_gain_full"] + 1.0
