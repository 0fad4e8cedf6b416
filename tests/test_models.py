"""build_model gives a working network for every task, 2D and 3D, with sizes and a summary."""

from __future__ import annotations

import pytest
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.models import build_model, decode_heatmaps, describe

CASES = [
    ("classification", "resnet", 2), ("classification", "densenet121", 2), ("classification", "efficientnet", 2),
    ("classification", "mobilenet", 2), ("classification", "mobilenet", 3), ("segmentation", "unet", 2),
    ("segmentation", "unet", 3), ("segmentation", "segresnet", 2), ("segmentation", "swinunetr", 2),
    ("landmarks", "unet", 2), ("reconstruction", "dncnn", 2), ("reconstruction", "redcnn", 2), ("reconstruction", "redcnn", 3),
    ("reconstruction", "unet", 2),
]


@pytest.mark.parametrize("task,arch,dims", CASES)
def test_forward_shapes(task, arch, dims):
    net = build_model(task, arch, spatial_dims=dims, size="tiny", out_channels=3 if task != "reconstruction" else None)
    n = 64 if arch == "swinunetr" else 32  # SwinUNETR halves the image five times
    x = torch.rand((2, 1) + (n,) * dims)
    y = net(x)
    if task == "classification":
        assert y.shape == (2, 3)
    elif task == "reconstruction":
        assert y.shape == x.shape
    else:
        assert y.shape == (2, 3) + (n,) * dims


def test_sizes_grow_and_describe_counts_flops():
    small, base = describe(build_model("segmentation", size="tiny")), describe(build_model("segmentation", size="base"))
    assert base.parameters > 4 * small.parameters
    summary = describe(build_model("classification", "mobilenet", size="tiny"), (1, 1, 64, 64))
    assert summary.flops > 0 and "parameters" in str(summary)
    compact = describe(build_model("classification", "mobilenet")).parameters
    assert compact < describe(build_model("classification", "densenet121", size="base")).parameters / 50


@pytest.mark.parametrize("arch", ["localnet", "globalnet"])
def test_registration_warps(arch):
    net = build_model("registration", arch, size="tiny", image_size=(32, 32))
    moving, fixed = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    warped, field = net(moving, fixed)
    assert warped.shape == moving.shape and field.shape == (1, 2, 32, 32)


def test_heatmap_decoding_is_subpixel():
    h = torch.zeros(1, 1, 20, 20)
    h[0, 0, 5, 8] = h[0, 0, 5, 9] = 1.0  # peak between columns 8 and 9
    xy = decode_heatmaps(h)[0, 0]
    assert xy[0].item() == pytest.approx(8.5, abs=1e-3) and xy[1].item() == pytest.approx(5.0, abs=1e-3)


@pytest.mark.parametrize("kwargs,message", [
    ({"task": "dance"}, "unknown task"), ({"task": "segmentation", "arch": "resnet"}, "offers"),
    ({"task": "segmentation", "spatial_dims": 4}, "spatial_dims"), ({"task": "segmentation", "size": "huge"}, "size"),
    ({"task": "registration", "arch": "globalnet"}, "image_size"),
])
def test_bad_requests_raise(kwargs, message):
    with pytest.raises(LumbarLabError, match=message):
        build_model(**kwargs)


def test_retinanet_detects_without_torchvision_and_its_loss_falls():
    """MONAI's RetinaNetDetector (ATSS matcher, hard-negative sampler) trains on phantom vertebra boxes
    although torchvision is not installed, and returns boxes in inference."""
    import importlib.util

    import numpy as np

    from lumbarlab.datasets.xray_boxes import label_boxes
    from lumbarlab.phantom.fast2d import lateral_radiograph

    torch.manual_seed(0)
    det = build_model("detection", size="tiny")
    rads = [lateral_radiograph(seed, size=128) for seed in (1, 2)]
    images = [torch.from_numpy(r.image)[None] for r in rads]
    targets = []
    for r in rads:
        boxes, _ = label_boxes(r.body_labels)
        targets.append({"boxes": torch.as_tensor(boxes, dtype=torch.float32), "labels": torch.zeros(len(boxes), dtype=torch.long)})
    opt = torch.optim.Adam(det.parameters(), lr=2e-3)
    det.train()
    losses = []
    for _ in range(12):
        parts = det(images, targets)
        loss = parts["classification"] + parts["box_regression"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    det.eval()
    with torch.no_grad():
        out = det(images, use_inferer=False)
    assert set(out[0]) >= {"boxes", "labels", "labels_scores"} and out[0]["boxes"].shape[-1] == 4
    if importlib.util.find_spec("torchvision") is None:
        import sys

        import monai.apps.detection.networks.retinanet_detector as rd

        from lumbarlab.models import _NoTorchvisionMatcher, _NoTorchvisionSampler

        assert "torchvision" not in sys.modules
        # the placeholders lived only while the detector ran: MONAI's own stub is back for everyone else
        assert rd.Matcher is not _NoTorchvisionMatcher
        assert rd.BalancedPositiveNegativeSampler is not _NoTorchvisionSampler
