"""X-ray datasets over the phantom, the DSNT landmark loss, heatmap decoding, and upload decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from lumbarlab.datasets import LANDMARK_LEVELS, XrayDataset, corners_to_dict, mask_classes, phantom_xrays
from lumbarlab.errors import LumbarLabError
from lumbarlab.losses import gaussian_heatmaps, landmark_loss
from lumbarlab.models import decode_heatmaps


@pytest.fixture(scope="module")
def split():
    return phantom_xrays(6, seed=11, size=128, slip_fraction=0.5)


def test_split_holds_every_task_truth(split):
    assert split.images.shape == (6, 128, 128) and split.images.dtype == np.float32
    assert set(np.unique(split.masks)) == {0, 1, 2}
    assert split.corners.shape == (6, 22, 2)
    assert ((split.corners >= 0) & (split.corners < 128)).all()  # every corner inside the image
    assert split.spacing == pytest.approx((230 / 128, 230 / 128))
    assert list(split.seeds) == list(range(11, 17))
    assert set(split.labels) <= {0, 1} and (split.labels == (split.slip > 0)).all()
    # the sacrum class lies where the S1 corners are
    s1 = corners_to_dict(split.corners[0])["S1"].mean(0).round().astype(int)
    assert split.masks[0][s1[1], s1[0]] == 2
    # S1's synthetic lower corners sit one endplate length below its superior endplate
    s1c = corners_to_dict(split.corners[0])["S1"]
    assert np.linalg.norm(s1c[3] - s1c[0]) == pytest.approx(np.linalg.norm(s1c[1] - s1c[0]))
    assert (s1c[2:, 1] > s1c[:2, 1]).all()
    assert list(corners_to_dict(split.corners[0])) == list(LANDMARK_LEVELS)


def test_mask_classes_maps_verse_labels():
    labels = np.array([[0, 19, 20, 24, 26]])
    assert mask_classes(labels).tolist() == [[0, 1, 1, 1, 2]]


def test_augmentation_moves_masks_and_landmarks_with_the_image(split):
    seg = XrayDataset(split, "segmentation", augment=True, max_shift=10)
    lm = XrayDataset(split, "landmarks", augment=True, max_shift=10)
    torch.manual_seed(4)
    _, mask = seg[0]
    torch.manual_seed(4)
    _, corners = lm[0]
    # same random draw → same shift: the S1 corner centre stays on the sacrum class
    s1 = (corners[20:22].mean(0) + torch.tensor([0.0, 4.0])).round().long()  # just below the S1 endplate
    assert mask[s1[1], s1[0]] == 2
    shift = (corners - torch.from_numpy(split.corners[0])).numpy()
    assert np.allclose(shift, shift[0]) and np.abs(shift).max() <= 10
    image, label = XrayDataset(split, "classification")[0]
    assert image.shape == (1, 128, 128) and int(label) == int(split.labels[0])
    with pytest.raises(LumbarLabError, match="task must be"):
        XrayDataset(split, "detection")


def test_gaussian_heatmaps_and_dsnt_loss():
    coords = torch.tensor([[[10.3, 20.7], [40.0, 9.5]]])  # ≥ 4σ from the borders: no truncation
    maps = gaussian_heatmaps(coords, (48, 64), sigma=2.0)
    assert maps.shape == (1, 2, 48, 64)
    assert torch.allclose(maps.sum((-2, -1)), torch.ones(1, 2))
    # the soft-argmax of log-Gaussians returns the centres (sub-pixel)
    decoded = decode_heatmaps(torch.log(maps.clamp_min(1e-30)), beta=1.0)
    assert torch.allclose(decoded, coords, atol=1e-3)
    good = landmark_loss(torch.log(maps.clamp_min(1e-30)), coords)
    bad = landmark_loss(torch.zeros(1, 2, 48, 64), coords)
    assert good < bad
    # at the optimum the distance term is ~0: only the target's entropy is left
    entropy = -(maps * torch.log(maps.clamp_min(1e-30))).sum((-2, -1)).mean()
    assert float(good) == pytest.approx(float(entropy), abs=1e-3)


def test_windowed_decoding_ignores_a_second_mode():
    coords = torch.tensor([[[12.0, 12.0]]])
    far = torch.tensor([[[40.0, 40.0]]])
    two = gaussian_heatmaps(coords, (64, 64)) + 0.8 * gaussian_heatmaps(far, (64, 64))
    logits = torch.log(two.clamp_min(1e-30))
    assert (decode_heatmaps(logits, beta=1.0) - coords).norm() > 5  # global soft-argmax lands in between
    assert torch.allclose(decode_heatmaps(logits, beta=1.0, window=6), coords, atol=0.05)


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def test_upload_decoding_and_errors():
    from lumbarlab.widgets.upload import fit_to_model, radiograph_from_bytes

    ramp = np.tile(np.arange(64, dtype=np.uint16) * 1000, (48, 1))
    img16 = radiograph_from_bytes(_png(ramp), "ramp16.png")
    assert img16.shape == (48, 64) and img16.min() == 0 and img16.max() == 1
    assert (np.diff(img16[0]) >= 0).all()
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[:, 20:] = 200
    assert radiograph_from_bytes(_png(rgb), "colour.png").shape == (40, 40)
    assert fit_to_model(img16, 256).shape == (256, 256)
    for data, message in ((b"", "empty"), (b"hello world, not an image", "not a PNG"),
                          (_png(np.zeros((8, 8), np.uint8)), "at least 32"),
                          (_png(np.full((64, 64), 7, np.uint8)), "blank")):
        with pytest.raises(LumbarLabError, match=message):
            radiograph_from_bytes(data, "bad")
    with pytest.raises(LumbarLabError, match="larger than"):
        radiograph_from_bytes(b"x" * (41 * 2**20), "huge.png")


def test_dicom_upload_monochrome1_and_truncation():
    from dicom_files import dicom_bytes as _dicom_bytes

    from lumbarlab.widgets.upload import radiograph_from_bytes

    pixels = np.tile(np.arange(64, dtype=np.uint16) * 60, (64, 1))
    mono2 = radiograph_from_bytes(_dicom_bytes(pixels), "a.dcm")
    mono1 = radiograph_from_bytes(_dicom_bytes(pixels, "MONOCHROME1"), "b.dcm")
    np.testing.assert_allclose(mono1, 1 - mono2, atol=1e-6)  # inverted so bone stays bright
    data = _dicom_bytes(pixels)
    with pytest.raises(LumbarLabError, match="truncated.dcm"):
        radiograph_from_bytes(data[: len(data) - 3000], "truncated.dcm")
