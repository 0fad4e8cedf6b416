"""MRI k-space: the FFT is MONAI's, all lines give the image back through any coil maps, the masks keep their
calibration band and reach their acceleration, and zero-filling loses more at 8× than at 4× on a phantom slice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab.datasets.mri_kspace import cartesian_mask, coil_sensitivities, to_kspace, zero_filled
from lumbarlab.errors import LumbarLabError


@pytest.mark.parametrize("shape", [(32, 48), (31, 45)])  # odd sizes: fftshift and ifftshift differ
def test_fft_is_monais_centred_fft(shape):
    from monai.data.fft_utils import fftn_centered

    rng = np.random.default_rng(0)
    image = rng.normal(size=shape).astype(np.float32)
    ours = to_kspace(image)[0]
    theirs = fftn_centered(torch.from_numpy(image)[None], spatial_dims=2, is_complex=False)[0]
    theirs = torch.view_as_complex(theirs.contiguous()).numpy() if theirs.shape[-1] == 2 and theirs.ndim == 3 else theirs.numpy()
    assert np.allclose(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("shape", [(40, 40), (33, 50)])
def test_all_lines_give_the_image_back_through_any_coils(shape):
    rng = np.random.default_rng(1)
    image = rng.random(shape).astype(np.float32)
    for coils in (1, 4, 8):
        maps = coil_sensitivities(shape, coils=coils, seed=coils)
        assert np.allclose((np.abs(maps) ** 2).sum(0), 1.0, atol=1e-5)
        assert np.allclose(zero_filled(to_kspace(image, maps)), image, atol=1e-4)


def test_masks_keep_the_centre_and_reach_their_acceleration():
    for acceleration, band in ((4, 0.08), (8, 0.04)):
        kept = [cartesian_mask(368, acceleration, seed=s) for s in range(40)]
        centre = slice(184 - int(368 * band) // 2, 184 + int(368 * band) // 2)
        assert all(m[centre].all() for m in kept)
        assert np.mean([m.mean() for m in kept]) == pytest.approx(1 / acceleration, rel=0.05)
    assert np.array_equal(cartesian_mask(100, 4, seed=3), cartesian_mask(100, 4, seed=3))
    assert not np.array_equal(cartesian_mask(100, 4, seed=3), cartesian_mask(100, 4, seed=4))
    with pytest.raises(LumbarLabError):
        cartesian_mask(100, 0)
    with pytest.raises(LumbarLabError):
        cartesian_mask(100, 4, center_fraction=0.0)


def test_the_calibration_band_alone_is_a_low_pass_of_the_image():
    rng = np.random.default_rng(2)
    image = rng.random((24, 32)).astype(np.float32)
    mask = cartesian_mask(32, 4, center_fraction=0.25)
    only_band = mask.copy()
    only_band[:] = False
    only_band[12:20] = True
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image), norm="ortho"))
    k[:, ~only_band] = 0
    expected = np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k), norm="ortho")))
    assert np.allclose(zero_filled(to_kspace(image), only_band), expected, atol=1e-5)


def test_zero_filling_loses_more_at_8x_than_at_4x_on_a_phantom_slice():
    from lumbarlab import metrics
    from lumbarlab.phantom import make_case

    case = make_case(900_000, shape=(64, 96, 96), spacing=2.0, modalities=("t2",))
    image = np.asarray(case.t2.array[32], np.float32)  # a sagittal slice
    image /= image.max()
    maps = coil_sensitivities(image.shape, coils=8)
    k = to_kspace(image, maps)
    scores = {r: np.mean([metrics.ssim(image, zero_filled(k, cartesian_mask(image.shape[1], r, seed=s)), data_range=1.0)
                          for s in range(5)]) for r in (4, 8)}
    assert 0.3 < scores[8] < scores[4] < 0.98


def test_shapes_are_checked():
    with pytest.raises(LumbarLabError, match="2D"):
        to_kspace(np.zeros((2, 3, 4)))
    with pytest.raises(LumbarLabError, match="differ"):
        to_kspace(np.zeros((8, 8)), coil_sensitivities((8, 9), coils=2))
    with pytest.raises(LumbarLabError, match="columns"):
        zero_filled(np.zeros((2, 8, 8), np.complex64), np.ones(7, bool))


def test_undersampled_pairs_draw_a_new_mask_per_item_and_keep_the_target():
    from lumbarlab.datasets.mri_kspace import UndersampledSlices

    rng = np.random.default_rng(3)
    slices = rng.random((4, 32, 48)).astype(np.float32) * 700.0  # a scanner's arbitrary scale
    data = UndersampledSlices(slices, acceleration=4, coils=4, seed=1)
    x0, y0 = data[0]
    scale = float(np.percentile(zero_filled(to_kspace(slices[0], data.maps), data.mask(0)), 99.5))
    assert torch.allclose(y0[0] * scale, torch.from_numpy(slices[0]), rtol=1e-4)  # the input's scale, known at test time
    assert float(x0.max()) < 1.5 and not torch.allclose(x0, y0, atol=1e-3)  # aliased
    assert not np.array_equal(data.mask(0), data.mask(1))
    again = UndersampledSlices(slices, acceleration=4, coils=4, seed=1)
    assert torch.equal(again[0][0], x0)
    full = UndersampledSlices(slices, acceleration=1, coils=4)
    assert torch.allclose(full[2][0], full[2][1], atol=1e-4)  # every line kept: nothing to undo
    mixed = UndersampledSlices(slices, acceleration=(4, 8), coils=4)
    assert mixed.mask(1).sum() < mixed.mask(0).sum()  # item 1 at 8×, item 0 at 4×
    with pytest.raises(LumbarLabError):
        UndersampledSlices(np.zeros((5, 5)))
