"""One function builds a network for a task from MONAI's networks, 2D or 3D.

``build_model(task, arch=None, spatial_dims=2, size="small", in_channels=1, out_channels=...)``

| task | archs (first is the default) | output |
| --- | --- | --- |
| ``classification`` | ``resnet``, ``densenet121``, ``efficientnet``, ``mobilenet``, ``unet_encoder`` | logits (B, K) |
| ``segmentation`` | ``unet``, ``segresnet``, ``swinunetr`` | logits (B, K, *spatial) |
| ``landmarks`` | ``unet`` + 1×1 head (one heatmap per landmark; decode with :func:`decode_heatmaps`) | (B, K, *spatial) |
| ``detection`` | ``retinanet`` (MONAI's RetinaNetDetector on a ResNet-FPN) | detector |
| ``reconstruction`` | ``dncnn`` (residual denoiser, Zhang et al., IEEE TIP 2017), ``redcnn`` (residual encoder-decoder, Chen et al., IEEE TMI 2017), ``unet`` (image-to-image U-Net, the fastMRI baseline) | image (B, C, *spatial) |
| ``registration`` | ``localnet`` (dense field), ``globalnet`` (affine) + :class:`RegistrationNet` warp | (warped, field) |

Sizes ``tiny`` / ``small`` / ``base`` scale the widths so that CPU lessons stay fast.
``mobilenet`` is a compact depthwise-separable network (Howard et al., "MobileNets", 2017) — the
survey's point that compact networks can match large ones on small spine datasets.
:func:`describe` reports parameters and FLOPs in one call.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch
from torch import nn

from lumbarlab.errors import LumbarLabError

__all__ = ["build_model", "describe", "ModelSummary", "MobileNetLike", "DnCNN", "REDCNN", "ResidualImageNet", "RegistrationNet", "ResNetFPN",
           "decode_heatmaps", "HeatmapNet", "EncoderClassifier", "unet_encoder", "TASKS"]

TASKS = {
    "classification": ("resnet", "densenet121", "efficientnet", "mobilenet", "unet_encoder"),
    "segmentation": ("unet", "segresnet", "swinunetr"),
    "landmarks": ("unet",),
    "detection": ("retinanet",),
    "reconstruction": ("dncnn", "redcnn", "unet"),
    "registration": ("localnet", "globalnet"),
}
_WIDTH = {"tiny": 8, "small": 16, "base": 32}


def _conv(dims: int):
    return nn.Conv2d if dims == 2 else nn.Conv3d


def _norm(dims: int):
    return nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d


class MobileNetLike(nn.Module):
    """A compact classifier of depthwise-separable convolution blocks (MobileNet v1 style)."""

    def __init__(self, spatial_dims: int, in_channels: int, num_classes: int, width: int = 16, blocks: int = 4):
        super().__init__()
        conv, norm = _conv(spatial_dims), _norm(spatial_dims)
        layers: list[nn.Module] = [conv(in_channels, width, 3, stride=2, padding=1, bias=False), norm(width), nn.ReLU6(True)]
        ch = width
        for _ in range(blocks):
            out = ch * 2
            layers += [
                conv(ch, ch, 3, stride=2, padding=1, groups=ch, bias=False), norm(ch), nn.ReLU6(True),  # depthwise
                conv(ch, out, 1, bias=False), norm(out), nn.ReLU6(True),  # pointwise
            ]
            ch = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1) if spatial_dims == 2 else nn.AdaptiveAvgPool3d(1)
        self.classifier = nn.Linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class DnCNN(nn.Module):
    """Residual denoiser: predicts the noise and subtracts it (Zhang et al., IEEE TIP 2017)."""

    def __init__(self, spatial_dims: int, channels: int = 1, width: int = 32, depth: int = 8):
        super().__init__()
        conv, norm = _conv(spatial_dims), _norm(spatial_dims)
        layers: list[nn.Module] = [conv(channels, width, 3, padding=1), nn.ReLU(True)]
        for _ in range(depth - 2):
            layers += [conv(width, width, 3, padding=1, bias=False), norm(width), nn.ReLU(True)]
        layers.append(conv(width, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


class REDCNN(nn.Module):
    """Residual encoder-decoder CNN for low-dose CT (Chen et al., IEEE TMI 2017): five 5×5 convolutions without
    padding or pooling, five transposed convolutions back to the input's size, and shortcuts that add the input
    to the output and two encoder maps to their decoder mirrors — so, like DnCNN, it learns a correction.

    Example:
        >>> REDCNN(2, width=8)(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
    """

    def __init__(self, spatial_dims: int, channels: int = 1, width: int = 32):
        super().__init__()
        conv = _conv(spatial_dims)
        deconv = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
        self.encoder = nn.ModuleList([conv(channels, width, 5)] + [conv(width, width, 5) for _ in range(4)])
        self.decoder = nn.ModuleList([deconv(width, width, 5) for _ in range(4)] + [deconv(width, channels, 5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = torch.relu
        h = act(self.encoder[1](act(self.encoder[0](x))))
        skip2 = h
        h = act(self.encoder[3](act(self.encoder[2](h))))
        skip3 = h
        h = self.decoder[0](act(self.encoder[4](h))) + skip3
        h = self.decoder[2](act(self.decoder[1](act(h)))) + skip2
        # no ReLU at the end, unlike the paper's [0, 1] images: HU / 500 is negative in fat and air
        return self.decoder[4](act(self.decoder[3](act(h)))) + x


class ResidualImageNet(nn.Module):
    """``x + net(x)``: an image-to-image network that learns the correction to its input (here the aliasing of a
    zero-filled MR image), so it starts from the input's quality instead of from noise."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class RegistrationNet(nn.Module):
    """Moving + fixed images → (warped moving image, deformation field) with MONAI's ``Warp``.

    ``GlobalNet`` predicts an affine transform as a dense field; ``LocalNet`` a dense displacement.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        from monai.networks.blocks import Warp

        self.net = net
        self.warp = Warp(mode="bilinear", padding_mode="border")

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``model(moving, fixed)``, or ``model(pair)`` with the moving channels first and the fixed ones after
        (the one-tensor input :func:`lumbarlab.train.fit` feeds a model); the field is in voxels along the array
        axes (MONAI's ``Warp`` convention)."""
        if fixed is None:
            moving, fixed = torch.chunk(moving, 2, dim=1)
        field = self.net(torch.cat([moving, fixed], dim=1))
        return self.warp(moving, field), field


class ResNetFPN(nn.Module):
    """ResNet layers 1–2 under MONAI's FeaturePyramidNetwork — what MONAI's
    ``resnet_fpn_feature_extractor`` builds, without its torchvision dependency (PyPI's
    torchvision does not import beside the CPU torch build this lab pins)."""

    def __init__(self, backbone: nn.Module, spatial_dims: int, in_channels_list: list[int], out_channels: int):
        super().__init__()
        from monai.networks.blocks.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

        self.backbone = backbone
        self.fpn = FeaturePyramidNetwork(spatial_dims=spatial_dims, in_channels_list=in_channels_list,
                                         out_channels=out_channels, extra_blocks=LastLevelMaxPool(spatial_dims))
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        from collections import OrderedDict

        b = self.backbone
        x = b.act(b.bn1(b.conv1(x)))
        if not b.no_max_pool:
            x = b.maxpool(x)
        c1 = b.layer1(x)
        c2 = b.layer2(c1)
        return self.fpn(OrderedDict([("1", c1), ("2", c2)]))


class HeatmapNet(nn.Module):
    """A dense network with ``features`` output maps and a 1×1 convolution to one heatmap per landmark."""

    def __init__(self, body: nn.Module, features: int, landmarks: int, spatial_dims: int = 2):
        super().__init__()
        self.body = body
        self.act = nn.PReLU(features)
        self.head = _conv(spatial_dims)(features, landmarks, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.body(x)))

    def load_body(self, trained: nn.Module) -> int:
        """Copy every weight of ``trained`` (e.g. a segmentation UNet of the same size) whose name and
        shape match the body's; returns how many tensors were copied. The output layers differ."""
        own = self.body.state_dict()
        matching = {k: v for k, v in trained.state_dict().items() if k in own and own[k].shape == v.shape}
        if not matching:
            raise LumbarLabError("no weight of the given network fits this heatmap network's body.")
        own.update(matching)
        self.body.load_state_dict(own)
        return len(matching)


def unet_encoder(unet: nn.Module) -> nn.Sequential:
    """The contracting path of a MONAI ``UNet`` (its down blocks and bottom block), sharing its modules.

    MONAI nests a UNet as ``Sequential(down, SkipConnection(Sequential(down, ...)), up)``; this walks
    the nesting and returns the down blocks in order, so a classifier can start from a segmenter.
    """
    blocks: list[nn.Module] = []
    node = unet.model
    while isinstance(node, nn.Sequential) and len(node) == 3:
        blocks.append(node[0])
        node = node[1].submodule
    blocks.append(node)  # the bottom block
    return nn.Sequential(*blocks)


class EncoderClassifier(nn.Module):
    """A UNet's contracting path, global average + max pooling, and a linear layer.

    Built with the same widths as ``build_model("segmentation", "unet", size=...)`` so that
    :meth:`load_encoder` can copy a trained segmenter's encoder in — transfer learning from a dense
    task, the survey's remedy for small labelled sets.
    """

    def __init__(self, spatial_dims: int, in_channels: int, num_classes: int, size: str = "small"):
        super().__init__()
        self.encoder = unet_encoder(_segmenter("unet", spatial_dims, size, in_channels, 2))
        width = 16 * _WIDTH[size]
        pool = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d) if spatial_dims == 2 else (nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d)
        self.avg, self.max = pool[0](1), pool[1](1)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)
        return self.classifier(self.dropout(torch.cat([torch.flatten(self.avg(f), 1), torch.flatten(self.max(f), 1)], 1)))

    def load_encoder(self, unet: nn.Module) -> None:
        """Copy the weights of a trained MONAI UNet's contracting path (same size) into this encoder."""
        try:
            self.encoder.load_state_dict(unet_encoder(unet).state_dict())
        except RuntimeError as exc:
            raise LumbarLabError(f"the UNet's encoder does not match this classifier's (build both with the same size): {exc}") from exc


def decode_heatmaps(heatmaps: torch.Tensor, beta: float = 50.0, window: int | None = None) -> torch.Tensor:
    """Sub-pixel landmark positions from heatmaps (B, K, H, W[, D]) by soft-argmax.

    ``beta`` sharpens the softmax (``beta=1`` treats the maps as logits, as the DSNT loss of
    :mod:`lumbarlab.losses` trains them). ``window`` restricts the soft-argmax to ±window pixels
    around each map's peak, so a second mode (the neighbouring vertebra's corner looks alike) does
    not pull the estimate half-way. Returns (B, K, 2) as (x=col, y=row) for 2D, (B, K, 3) in index
    order (i, j, k) for 3D.
    """
    b, k = heatmaps.shape[:2]
    spatial = heatmaps.shape[2:]
    flat = heatmaps.reshape(b, k, -1).float()
    logits = beta * (flat - flat.amax(dim=-1, keepdim=True))
    grids = [g.reshape(1, 1, -1) for g in torch.meshgrid(
        *[torch.arange(n, dtype=torch.float32, device=heatmaps.device) for n in spatial], indexing="ij")]
    if window is not None:
        # The peak is where the softmax has most mass nearby, not the single largest logit: a lone
        # bright pixel (often at the border) can out-score the true peak while holding no mass.
        import torch.nn.functional as F

        mass = torch.softmax(logits, dim=-1).reshape(b * k, *spatial)
        # box sums (padding counts as zero mass, so border windows are not inflated), separable by cumulative
        # sums: a few operations per pixel whatever the window, ~20× faster than a pooling kernel on a CPU
        for axis in range(1, len(spatial) + 1):
            pad = [0, 0] * (len(spatial) + 1)
            pad[2 * (len(spatial) - axis) : 2 * (len(spatial) - axis) + 2] = [window + 1, window]
            c = F.pad(mass, pad).cumsum(axis)
            n = mass.shape[axis]
            mass = c.narrow(axis, 2 * window + 1, n) - c.narrow(axis, 0, n)
        peak = mass.reshape(b, k, -1).argmax(-1, keepdim=True)
        near = torch.ones_like(logits, dtype=torch.bool)
        for g in grids:
            centre = torch.gather(g.expand(b, k, -1), -1, peak)
            near &= (g - centre).abs() <= window
        logits = logits.masked_fill(~near, float("-inf"))
    weights = torch.softmax(logits, dim=-1)
    coords = torch.stack([(weights * g).sum(-1) for g in grids], dim=-1)
    if len(spatial) == 2:
        coords = coords.flip(-1)  # (row, col) → (x, y)
    return coords


def _classifier(arch: str, dims: int, size: str, cin: int, cout: int) -> nn.Module:
    from monai.networks import nets

    w = _WIDTH[size]
    if arch == "resnet":
        return nets.ResNet("basic", [1, 1, 1, 1] if size == "tiny" else [2, 2, 2, 2], [w, 2 * w, 4 * w, 8 * w],
                           spatial_dims=dims, n_input_channels=cin, num_classes=cout)
    if arch == "densenet121":
        if size == "base":
            return nets.DenseNet121(spatial_dims=dims, in_channels=cin, out_channels=cout)
        return nets.DenseNet(spatial_dims=dims, in_channels=cin, out_channels=cout, init_features=2 * w,
                             growth_rate=w // 2 if size == "tiny" else w, block_config=(2, 4, 8, 4) if size == "tiny" else (6, 12, 24, 16))
    if arch == "efficientnet":
        model = {"tiny": "efficientnet-b0", "small": "efficientnet-b0", "base": "efficientnet-b2"}[size]
        return nets.EfficientNetBN(model, pretrained=False, spatial_dims=dims, in_channels=cin, num_classes=cout)
    if arch == "unet_encoder":
        return EncoderClassifier(dims, cin, cout, size)
    return MobileNetLike(dims, cin, cout, width=w, blocks=4)


def _segmenter(arch: str, dims: int, size: str, cin: int, cout: int) -> nn.Module:
    from monai.networks import nets

    w = _WIDTH[size]
    if arch == "unet":
        return nets.UNet(spatial_dims=dims, in_channels=cin, out_channels=cout,
                         channels=(w, 2 * w, 4 * w, 8 * w, 16 * w), strides=(2, 2, 2, 2), num_res_units=2)
    if arch == "segresnet":
        return nets.SegResNet(spatial_dims=dims, in_channels=cin, out_channels=cout, init_filters=w)
    return nets.SwinUNETR(in_channels=cin, out_channels=cout, spatial_dims=dims, feature_size=max(12, 12 * (w // 8)),
                          depths=(1, 1, 1, 1) if size == "tiny" else (2, 2, 2, 2))


class _NoTorchvisionMatcher:  # nothing is an instance of it
    pass


class _NoTorchvisionSampler:
    pass


@contextlib.contextmanager
def _torchvision_checks_answered():
    """While a detector runs, let MONAI's RetinaNetDetector ask its torchvision ``isinstance`` questions
    without torchvision, and put MONAI back as it was afterwards.

    With the ATSS matcher and the hard-negative sampler (both MONAI's own) the detector needs nothing from
    torchvision, but it still asks ``isinstance(matcher, torchvision.Matcher)``, and the optional-import stub
    raises on that. For the length of the call, placeholder classes make those checks simply false; no other
    MONAI user sees them. PyPI's torchvision does not install beside the CPU torch build this lab pins.
    """
    if _has_torchvision():
        yield
        return
    import monai.apps.detection.networks.retinanet_detector as rd

    saved = rd.Matcher, rd.BalancedPositiveNegativeSampler
    rd.Matcher, rd.BalancedPositiveNegativeSampler = _NoTorchvisionMatcher, _NoTorchvisionSampler
    try:
        yield
    finally:
        rd.Matcher, rd.BalancedPositiveNegativeSampler = saved


@functools.cache
def _has_torchvision() -> bool:
    import importlib.util

    return importlib.util.find_spec("torchvision") is not None


@functools.cache
def _retinanet_class():
    """MONAI's RetinaNetDetector whose forward runs inside :func:`_torchvision_checks_answered` (one class)."""
    from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector

    class LabRetinaNetDetector(RetinaNetDetector):
        def forward(self, *args, **kwargs):
            with _torchvision_checks_answered():
                return super().forward(*args, **kwargs)

    return LabRetinaNetDetector


def _detector(dims: int, size: str, cin: int, cout: int) -> nn.Module:
    from monai.apps.detection.networks.retinanet_network import RetinaNet
    from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape
    from monai.networks import nets

    w = _WIDTH[size]
    backbone = nets.ResNet("basic", [1, 1, 1, 1], [w, 2 * w, 4 * w, 8 * w], spatial_dims=dims, n_input_channels=cin,
                           conv1_t_stride=2, num_classes=1)
    features = ResNetFPN(backbone, dims, [w, 2 * w], out_channels=w)
    shapes = ((32, 24), (48, 32), (64, 48)) if dims == 2 else ((32, 24, 32), (48, 32, 48))
    anchors = AnchorGeneratorWithAnchorShape(feature_map_scales=(1, 2, 4), base_anchor_shapes=shapes)
    net = RetinaNet(dims, cout, anchors.num_anchors_per_location()[0], features, size_divisible=16)
    detector = _retinanet_class()(net, anchors, spatial_dims=dims, num_classes=cout, size_divisible=16)
    detector.set_target_keys(box_key="boxes", label_key="labels")
    detector.set_box_selector_parameters(score_thresh=0.05, topk_candidates_per_level=300, nms_thresh=0.3,
                                         detections_per_img=20)
    detector.set_atss_matcher(num_candidates=4, center_in_gt=False)
    detector.set_hard_negative_sampler(batch_size_per_image=64, positive_fraction=0.3, pool_size=20, min_neg=16)
    return detector


def build_model(task: str, arch: str | None = None, spatial_dims: int = 2, size: str = "small", in_channels: int = 1,
                out_channels: int | None = None, image_size: tuple[int, ...] | None = None) -> nn.Module:
    """Build the network for ``task`` (see the module table); raises LumbarLabError for a bad combination.

    Args:
        out_channels: classes (classification, segmentation incl. background, detection), landmarks
            (heatmaps), or image channels (reconstruction). Registration ignores it.
        image_size: needed by ``globalnet`` (the affine head is sized to the image).
    """
    if task not in TASKS:
        raise LumbarLabError(f"unknown task {task!r}; choose from {', '.join(TASKS)}.")
    arch = arch or TASKS[task][0]
    if arch not in TASKS[task]:
        raise LumbarLabError(f"{task} offers {', '.join(TASKS[task])}, not {arch!r}.")
    if spatial_dims not in (2, 3):
        raise LumbarLabError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if size not in _WIDTH:
        raise LumbarLabError(f"size must be tiny, small or base, got {size!r}.")
    cout = out_channels or {"classification": 2, "segmentation": 2, "landmarks": 4, "detection": 1,
                            "reconstruction": in_channels, "registration": spatial_dims}[task]
    if task == "classification":
        return _classifier(arch, spatial_dims, size, in_channels, cout)
    if task == "segmentation":
        return _segmenter(arch, spatial_dims, size, in_channels, cout)
    if task == "landmarks":
        # The UNet ends in a few feature maps and a 1×1 head gives one heatmap per landmark:
        # a full-resolution residual block with K=24 channels would triple the training cost.
        w = _WIDTH[size]
        return HeatmapNet(_segmenter(arch, spatial_dims, size, in_channels, w), w, cout, spatial_dims)
    if task == "detection":
        return _detector(spatial_dims, size, in_channels, cout)
    if task == "reconstruction":
        if arch == "redcnn":
            return REDCNN(spatial_dims, in_channels, width=2 * _WIDTH[size])
        if arch == "unet":  # undersampling aliases the whole image: a U-Net sees all of it
            return ResidualImageNet(_segmenter("unet", spatial_dims, size, in_channels, in_channels))
        return DnCNN(spatial_dims, in_channels, width=2 * _WIDTH[size], depth={"tiny": 5, "small": 8, "base": 12}[size])
    from monai.networks import nets

    w = _WIDTH[size]
    if arch == "globalnet":
        if image_size is None:
            raise LumbarLabError("globalnet needs image_size=(H, W[, D]) to size its affine head.")
        net = nets.GlobalNet(image_size=list(image_size), spatial_dims=spatial_dims, in_channels=2 * in_channels,
                             num_channel_initial=w, depth=3)
    else:
        net = nets.LocalNet(spatial_dims=spatial_dims, in_channels=2 * in_channels, num_channel_initial=w,
                            extract_levels=(0, 1, 2, 3), out_channels=spatial_dims)
    return RegistrationNet(net)


@dataclass
class ModelSummary:
    parameters: int
    flops: int | None
    input_shape: tuple[int, ...]

    def __str__(self) -> str:
        flops = f"{self.flops / 1e9:.3f} GFLOPs" if self.flops is not None else "FLOPs n/a"
        return f"{self.parameters / 1e6:.3f} M parameters, {flops} for input {self.input_shape}"


def describe(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> ModelSummary:
    """Parameter count and FLOPs (one forward pass of ``input_shape``, counted by PyTorch's
    ``FlopCounterMode``; a multiply-add counts as 2 FLOPs)."""
    params = sum(p.numel() for p in model.parameters())
    flops = None
    if input_shape is not None:
        from torch.utils.flop_counter import FlopCounterMode

        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(input_shape, device=device))
        flops = int(counter.get_total_flops())
        model.train(was_training)
    return ModelSummary(params, flops, tuple(input_shape) if input_shape else ())
