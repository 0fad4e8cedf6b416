"""The predictor matches the eager model, keeps geometry, and explains bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.infer import Predictor
from lumbarlab.models import build_model
from lumbarlab.volume import Volume


@pytest.fixture(scope="module")
def unet2d():
    torch.manual_seed(0)
    return build_model("segmentation", size="tiny", out_channels=3).eval()


def test_batched_output_matches_eager_model(unet2d):
    x = torch.rand(5, 1, 64, 64)
    with torch.no_grad():
        eager = unet2d(x)
    logits = Predictor(unet2d, output="logits", batch_size=2, device="cpu")(x.numpy())
    np.testing.assert_allclose(logits, eager.numpy(), atol=1e-5)
    labels = Predictor(unet2d, output="labels", device="cpu")(x[:, 0].numpy())
    np.testing.assert_array_equal(labels, eager.argmax(1).numpy())
    probs = Predictor(unet2d, output="probabilities", device="cpu")(x[0, 0].numpy())
    assert probs.shape == (3, 64, 64) and np.allclose(probs.sum(0), 1, atol=1e-5)


def test_volume_geometry_round_trip_with_sliding_window():
    torch.manual_seed(0)
    net = build_model("segmentation", spatial_dims=3, size="tiny", out_channels=2).eval()
    direction = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1.0]])
    vol = Volume(np.random.default_rng(0).random((48, 32, 48)).astype(np.float32), (0.8, 1.2, 2.0), (5.0, -3.0, 10.0), direction)
    out = Predictor(net, spatial_dims=3, roi_size=(32, 32, 32), batch_size=2, device="cpu")(vol)
    assert isinstance(out, Volume) and out.shape == vol.shape
    np.testing.assert_allclose(out.affine, vol.affine)
    full = Predictor(net, spatial_dims=3, output="logits", roi_size=(48, 32, 48), device="cpu")(vol)
    with torch.no_grad():
        eager = net(torch.from_numpy(vol.array)[None, None]).numpy()[0]
    assert len(full) == 2 and all(np.allclose(f.affine, vol.affine) for f in full)
    np.testing.assert_allclose(np.stack([f.array for f in full]), eager, atol=1e-4)  # one window covering all = the eager model


def test_classifier_probabilities():
    net = build_model("classification", "mobilenet", size="tiny", out_channels=2).eval()
    p = Predictor(net, output="probabilities", device="cpu")(np.random.default_rng(1).random((7, 64, 64)))
    assert p.shape == (7, 2) and np.allclose(p.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("bad,message", [
    (np.zeros((0, 64, 64)), "empty"),
    (np.full((64, 64), np.nan), "NaN"),
    (np.zeros((64,)), "2D image"),
    (np.zeros((2, 2, 64, 64)), "channel"),
    (np.zeros((1, 1, 1, 64, 64)), "2D image"),
])
def test_bad_inputs_raise_readable_errors(unet2d, bad, message):
    with pytest.raises(LumbarLabError, match=message):
        Predictor(unet2d, device="cpu")(bad)


def test_bad_settings_raise(unet2d):
    with pytest.raises(LumbarLabError, match="output"):
        Predictor(unet2d, output="masks")
    with pytest.raises(LumbarLabError, match="batch_size"):
        Predictor(unet2d, batch_size=0)


def test_flip_averaging_equals_the_mean_of_the_mirrored_runs():
    """Test-time mirroring: a point-wise network is unchanged by it; a position-dependent one is averaged with its
    mirror image exactly, in probabilities."""
    import numpy as np
    import torch

    from lumbarlab.infer import Predictor

    torch.manual_seed(0)
    pointwise = torch.nn.Conv3d(1, 3, 1)
    x = np.random.default_rng(0).random((1, 12, 10, 8)).astype(np.float32)
    plain = Predictor(pointwise, spatial_dims=3, output="probabilities", roi_size=(8, 8, 8), device="cpu")(x)
    mirrored = Predictor(pointwise, spatial_dims=3, output="probabilities", roi_size=(8, 8, 8), device="cpu",
                         flips=(0,))(x)
    assert np.allclose(plain, mirrored, atol=1e-5)

    class Ramp(torch.nn.Module):  # logits that grow along the first axis: not mirror-symmetric
        def forward(self, t):
            ramp = torch.arange(t.shape[2], dtype=t.dtype).view(1, 1, -1, 1, 1).expand_as(t)
            return torch.cat([t, ramp], 1)

    got = Predictor(Ramp(), spatial_dims=3, output="probabilities", device="cpu", flips=(0,), freeze=False)(x)
    t = torch.from_numpy(x)[None]
    expected = 0.5 * (torch.softmax(Ramp()(t), 1) + torch.softmax(Ramp()(t.flip(2)), 1).flip(2))
    assert np.allclose(got, expected[0].numpy(), atol=1e-5)
    import pytest

    from lumbarlab.errors import LumbarLabError

    with pytest.raises(LumbarLabError, match="spatial axes"):
        Predictor(Ramp(), spatial_dims=3, flips=(3,))
