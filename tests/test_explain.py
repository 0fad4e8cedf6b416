"""lumbarlab.explain: Grad-CAM family equals MONAI's, known answers on hand-built models, hooks released,
3D geometry kept, sanity checks and faithfulness behave as the papers describe."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from lumbarlab import explain
from lumbarlab.errors import LumbarLabError
from lumbarlab.models import build_model
from lumbarlab.volume import Volume


def _cosine(a, b) -> float:
    a, b = np.ravel(a).astype(float), np.ravel(b).astype(float)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


@pytest.fixture(scope="module")
def densenet():
    torch.manual_seed(0)
    return build_model("classification", "densenet121", size="tiny", out_channels=3).eval()


@pytest.mark.parametrize(("ours", "theirs"), [("gradcam", "GradCAM"), ("gradcam++", "GradCAMpp")])
def test_cam_equals_monai(densenet, ours, theirs):
    import monai.visualize as mv

    torch.manual_seed(1)
    x = torch.rand(3, 1, 96, 96)
    layer = "class_layers.relu"
    # MONAI keeps its hooks on the module it wraps, so it gets its own copy of the same weights.
    monai_cam = getattr(mv, theirs)(nn_module=copy.deepcopy(densenet), target_layers=layer)
    for cls in (0, 2):
        expected_raw = monai_cam.compute_map(x, class_idx=cls).detach()[:, 0]
        expected = monai_cam(x, class_idx=cls).detach()[:, 0]  # MONAI's normalizer maps max → 0
        raw = explain.class_activation_map(densenet, x, layer, target=cls, method=ours, normalize=False, upsampled=False)
        full = explain.class_activation_map(densenet, x, layer, target=cls, method=ours)
        for i in range(3):
            assert _cosine(raw.maps[i], expected_raw[i]) >= 0.999
            assert _cosine(full.maps[i], 1 - expected[i].numpy()) >= 0.999
    assert _no_hooks(densenet)
    assert all(p.requires_grad for p in densenet.parameters())


def test_gradcam_known_answer_on_an_identity_feature():
    # features = x (1×1 conv, weight 1); logits = [mean(x), -mean(x)]. Grad-CAM weights are constant
    # (1/HW) for class 0, so the normalised map is exactly the normalised image.
    conv = nn.Conv2d(1, 1, 1, bias=False)
    head = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    x = torch.zeros(1, 1, 32, 32)
    x[..., 8:16, 20:28] = torch.linspace(0.5, 1.0, 64).view(8, 8)
    for method in ("gradcam", "hirescam", "gradcam++"):
        sal = explain.class_activation_map(model, x, "1", target=0, method=method)
        np.testing.assert_allclose(sal.maps[0], (x[0, 0] / x.max()).numpy(), atol=1e-6)
    # class 1 has negative weight: ReLU leaves nothing to show
    assert explain.class_activation_map(model, x, "1", target=1).maps.max() == 0.0


def test_segmentation_target_region_and_hooks_released():
    torch.manual_seed(0)
    unet = build_model("segmentation", "unet", size="tiny", out_channels=3).eval()
    x = torch.rand(2, 1, 64, 64)
    layer = explain.default_layer(unet, x[:1])
    assert dict(explain.candidate_layers(unet, x[:1]))[layer][1:] == (4, 4)  # the bottleneck at 1/16
    region = np.zeros((64, 64), bool)
    region[:16, :16] = True
    left = explain.class_activation_map(unet, x, target=1, region=region)
    region2 = np.zeros((64, 64), bool)
    region2[-16:, -16:] = True
    right = explain.class_activation_map(unet, x, target=1, region=region2)
    assert left.maps.shape == (2, 64, 64) and not np.allclose(left.maps, right.maps)
    with pytest.raises(LumbarLabError, match="region shape"):
        explain.class_activation_map(unet, x, target=1, region=np.ones((8, 8)))
    with pytest.raises(LumbarLabError, match="target class"):
        explain.class_activation_map(unet, x, target=7)
    with pytest.raises(LumbarLabError, match="no layer"):
        explain.class_activation_map(unet, x, layer="model.99")
    assert _no_hooks(unet)  # released after errors too
    assert all(p.requires_grad for p in unet.parameters())


def test_3d_volume_in_volume_out():
    torch.manual_seed(0)
    net = build_model("classification", "resnet", spatial_dims=3, size="tiny").eval()
    vol = Volume(np.random.default_rng(0).random((32, 32, 24)).astype(np.float32), (1.5, 1.5, 2.0), (10.0, -5.0, 3.0))
    out = explain.class_activation_map(net, vol, method="hirescam")
    assert isinstance(out, Volume) and out.shape == vol.shape
    assert out.spacing == vol.spacing and out.origin == vol.origin
    rgb = explain.overlay_slice(vol.array, out.array, axis=2)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    # the entry point a student calls, with its defaults, on the same Volume: 3D is taken from the Volume
    for method in ("gradcam", "gradients", "occlusion"):
        options = {"patch": 8, "stride": 8} if method == "occlusion" else {}
        result = explain.explain(net, vol, method=method, **options)
        maps = result.array if isinstance(result, Volume) else result.maps[0]
        assert maps.shape == vol.shape and np.isfinite(maps).all(), method


class _RegionScore(nn.Module):
    """Logit of class 1 = 10 × (mean of the pixels in rows 8–15, cols 8–15 − 0.5); class 0 = 0."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, x):
        s = self.scale * (x[:, 0, 8:16, 8:16].mean((1, 2)) - 0.5)
        return torch.stack([torch.zeros_like(s), s], 1)


def _region_image(n: int) -> torch.Tensor:
    """Dark images with a bright square exactly where :class:`_RegionScore` looks."""
    x = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.05
    x[..., 8:16, 8:16] += 0.95
    return x


def test_occlusion_and_gradients_find_the_region_the_model_reads():
    model = _RegionScore()
    x = _region_image(1)
    for method, options in (("occlusion", {"patch": 4, "stride": 2}), ("gradients", {}), ("smoothgrad", {"smooth": 4})):
        sal = explain.explain(model, x, method=method, target=1, **options)
        inside = sal.maps[0, 8:16, 8:16].mean()
        outside = np.delete(sal.maps[0].ravel(), np.ravel_multi_index(np.mgrid[8:16, 8:16].reshape(2, -1), (32, 32))).mean()
        assert inside > 0.5 and outside < 0.05, method


def test_spearman_equals_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, (3, 40)).astype(float)  # many ties
    b = a + rng.normal(0, 1, a.shape)
    ours = explain.spearman(a, b)
    for i in range(3):
        assert ours[i] == pytest.approx(spearmanr(a[i], b[i]).statistic, abs=1e-12)


def test_parameter_randomization_destroys_gradcam_of_the_zoo_classifier():
    """Adebayo et al.'s cascading test on a trained model: Grad-CAM maps decorrelate from the original
    as the top blocks are randomized, and the original model is left untouched."""
    from lumbarlab import zoo
    from lumbarlab.datasets import phantom_xrays

    model = zoo.load("xray-slip")
    split = phantom_xrays(6, seed=900_000, size=256)
    x = torch.from_numpy(split.images[split.labels == 1][:3])[:, None]
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def run(m, images):
        return explain.class_activation_map(m, images, "encoder.4", target=1)

    steps = explain.parameter_randomization(model, x, run, blocks=["classifier", "encoder.4", "encoder.3"])
    assert [s.block for s in steps] == ["classifier", "encoder.4", "encoder.3"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert steps[-1].rank_correlation.mean() < 0.5
    same = explain.label_randomization(model, model, x, run)
    np.testing.assert_allclose(same, 1.0, atol=1e-9)


def test_deletion_insertion_ranks_an_oracle_map_above_a_random_one():
    model = _RegionScore()
    x = _region_image(4)
    oracle = np.zeros((4, 32, 32))
    oracle[:, 8:16, 8:16] = 1.0
    oracle += np.random.default_rng(0).random(oracle.shape) * 1e-3  # break ties
    random = np.random.default_rng(1).random((4, 32, 32))
    good = explain.deletion_insertion(model, x, oracle, target=[1] * 4)
    bad = explain.deletion_insertion(model, x, random, target=[1] * 4)
    assert (good.deletion_auc < bad.deletion_auc).all()
    assert (good.insertion_auc > bad.insertion_auc).all()
    assert good.deletion.shape == (4, 17)


def test_feature_maps_filters_and_activation_maximization():
    torch.manual_seed(0)
    net = build_model("classification", "mobilenet", size="tiny").eval()
    x = torch.rand(1, 1, 64, 64)
    fm = explain.feature_maps(net, x, "features.2")
    assert fm.shape == (8, 32, 32)
    assert explain.filters(net).shape == (8, 1, 3, 3)
    with pytest.raises(LumbarLabError, match="not a convolution"):
        explain.filters(net, "features.2")
    img = explain.maximize_activation(net, "features.6", channel=3, shape=(1, 64, 64), steps=24)
    assert img.shape == (1, 64, 64) and 0 <= img.min() and img.max() <= 1

    def activation(image):
        return explain.feature_maps(net, torch.as_tensor(image)[None], "features.6")[3].mean()

    start = 0.5 + 0.01 * torch.randn((1, 1, 64, 64), generator=torch.Generator().manual_seed(0))
    # rescaled to [0, 1] the optimised image excites the unit more than the noise it started from
    assert activation(img) > activation(((start - start.min()) / (start.max() - start.min()))[0].numpy())
    assert _no_hooks(net)


def test_overlay():
    img = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    sal = np.zeros((64, 64))
    grey = explain.overlay(img, sal)
    assert grey.shape == (64, 64, 3) and grey.dtype == np.uint8
    assert (grey[..., 0] == grey[..., 1]).all()  # no map → the grey image
    sal[10:20, 10:20] = 1.0
    hot = explain.overlay(img, sal, alpha=0.8)
    assert not (hot[15, 15, 0] == hot[15, 15, 1] == hot[15, 15, 2])
    with pytest.raises(LumbarLabError, match="alpha"):
        explain.overlay(img, sal, alpha=2)
    with pytest.raises(LumbarLabError, match="same 2D shape"):
        explain.overlay(img, sal[:10])
