"""Transfer learning and label efficiency: where a network's first weights come from, and how many labels it then
needs.

One architecture throughout — :class:`lumbarlab.models.EncoderClassifier`, a MONAI U-Net's contracting path with a
pooled linear head — so that a comparison of initialisations compares initialisations, not networks:

| piece | what it does |
| --- | --- |
| :func:`label_fractions` | nested, stratified, reproducible subsets (1 % ⊂ 10 % ⊂ 100 %) with every class in each |
| :func:`pretrain_segmentation` | supervised pretraining on *another task* (vertebra masks), the same U-Net and loop |
| :func:`pretrain_masked` | self-supervised masked-image modelling: the U-Net restores hidden patches |
| :func:`pretrain_contrastive` | self-supervised SimCLR: two augmented views of one image agree (MONAI's ``ContrastiveLoss``) |
| :func:`initialise` | copy a pretrained encoder into a classifier; the head stays random |
| :func:`learning_curve`, :func:`summarise`, :func:`paired_difference` | init × fraction × seed → AUC; mean, sd, 95 % t-interval |
| :func:`bootstrap_auc`, :func:`intensity_baseline` | bootstrap over test cases (one arm, or a paired difference); the no-learning brightness AUC |
| :func:`dice_per_image` | per-image Dice of a segmenter (e.g. an MRI U-Net started from a CT one) |
| :func:`imagenet_resnet18`, :func:`load_imagenet_weights` | the ImageNet path: torchvision's ResNet-18 weights from a *local* file |

Methods: masked-image modelling after MAE (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022)
with a convolutional U-Net restoring the image as in Models Genesis (Zhou et al., Medical Image Analysis 2021);
contrastive pretraining after SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020); the question of what transfer buys on medical images, and when, after Raghu et al.
("Transfusion: Understanding Transfer Learning for Medical Imaging", NeurIPS 2019).

Nothing here downloads: ImageNet weights are used when a file is on disk and refused with a
:class:`~lumbarlab.errors.LumbarLabError` saying where to get them otherwise.

Example:
    >>> import numpy as np
    >>> labels = np.array([0] * 150 + [1] * 50)
    >>> subsets = label_fractions(labels, (0.01, 0.1, 1.0), seed=0)
    >>> [len(s) for s in subsets.values()], sorted(set(labels[subsets[0.01]].tolist()))
    ([2, 20, 200], [0, 1])
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics.seeds import seed_spread

__all__ = ["label_fractions", "stratified_order", "augment", "patch_mask", "Pretrained", "pretrain_segmentation",
           "masked_loss", "pretrain_masked", "pretrain_contrastive", "initialise", "fine_tune", "evaluate", "CurvePoint",
           "learning_curve", "CurveSummary", "summarise", "paired_difference", "bootstrap_auc", "intensity_baseline",
           "dice_per_image", "curve_table",
           "IMAGENET_RESNET18_URL", "IMAGENET_ENV", "imagenet_weights_path", "resnet18", "load_imagenet_weights",
           "imagenet_resnet18"]

#: torchvision's ResNet-18 ImageNet weights (``ResNet18_Weights.IMAGENET1K_V1``), for a user to fetch by hand.
IMAGENET_RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
#: Environment variable that may name a local ImageNet weights file.
IMAGENET_ENV = "LUMBARLAB_IMAGENET_WEIGHTS"


# --------------------------------------------------------------------------------------------- label fractions


def stratified_order(labels: Sequence[int], seed: int = 0) -> np.ndarray:
    """An order of all indices whose every prefix is stratified: the first ``K`` (``K`` classes) are one of each
    class, and any prefix holds each class within one item of its share.

    Each class is shuffled (``seed``) and its ``j``-th member gets the key ``j / n_class``; sorting by the key
    (ties in random order) interleaves the classes like systematic sampling.

    Args:
        labels: (N,) integer class per item.
        seed: the shuffle; the same seed gives the same order.

    Example:
        >>> stratified_order([0, 0, 0, 0, 1, 1], seed=0)[:2].tolist() in ([0, 4], [4, 0], [1, 4], [4, 1],
        ...     [2, 4], [4, 2], [3, 4], [4, 3], [0, 5], [5, 0], [1, 5], [5, 1], [2, 5], [5, 2], [3, 5], [5, 3])
        True
    """
    y = np.asarray(labels).astype(np.int64).ravel()
    if y.size == 0:
        raise LumbarLabError("no labels given; pass one class per training item.")
    rng = np.random.default_rng(seed)
    keys = np.empty(y.size)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        keys[members] = np.arange(members.size) / members.size
    ties = rng.random(y.size)  # breaks ties between classes at the same key at random
    return np.lexsort((ties, keys))


def label_fractions(labels: Sequence[int], fractions: Sequence[float] = (0.01, 0.1, 1.0),
                    seed: int = 0) -> dict[float, np.ndarray]:
    """Nested stratified subsets of a labelled training set: ``{fraction: sorted indices}``.

    Each subset is a prefix of one :func:`stratified_order`, so a smaller fraction is always inside a larger one
    (1 % ⊂ 10 % ⊂ 100 %) and a learning curve adds labels rather than swapping them. Sizes are
    ``max(round(fraction · N), K)`` with ``K`` classes, so even 1 % of 200 images (2) holds one of each class.

    Args:
        labels: (N,) integer class per item.
        fractions: each in (0, 1].
        seed: which images; the same seed gives the same subsets.

    Example:
        >>> s = label_fractions([0] * 90 + [1] * 10, (0.01, 0.5), seed=1)
        >>> len(s[0.01]), len(s[0.5]), set(s[0.01]) <= set(s[0.5])
        (2, 50, True)
    """
    y = np.asarray(labels).astype(np.int64).ravel()
    order = stratified_order(y, seed)
    classes = len(np.unique(y))
    out = {}
    for f in fractions:
        if not 0 < f <= 1:
            raise LumbarLabError(f"a label fraction must be in (0, 1], got {f}; write 1 % as 0.01.")
        k = min(y.size, max(int(round(f * y.size)), classes))
        out[f] = np.sort(order[:k])
    return out


# ------------------------------------------------------------------------------------------ views and masks


def augment(images: torch.Tensor, generator: torch.Generator, max_shift: int = 8,
            targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A random view of each image in a batch (B, 1, H, W) in [0, 1]: gamma 0.7–1.3, gain 0.8–1.2, offset ±0.1,
    Gaussian noise up to σ = 0.03 and a shift of up to ``max_shift`` pixels (edges repeated). ``targets``
    (B, H, W) masks move with their images.

    Args:
        images: (B, 1, H, W) float.
        generator: a CPU ``torch.Generator``; the same state gives the same views.
        max_shift: largest shift in pixels along each axis.
        targets: optional (B, H, W) masks shifted with the images.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> views, _ = augment(torch.rand(4, 1, 32, 32), g)
        >>> tuple(views.shape)
        (4, 1, 32, 32)
    """
    b, _, h, w = images.shape
    r = torch.rand(b, 4, generator=generator).to(images.device)
    gamma = (0.7 + 0.6 * r[:, 0]).view(b, 1, 1, 1)
    x = images.clamp(0, 1) ** gamma * (0.8 + 0.4 * r[:, 1]).view(b, 1, 1, 1) + (r[:, 2] - 0.5).view(b, 1, 1, 1) * 0.2
    noise = torch.randn(images.shape, generator=generator).to(images.device)
    x = x + noise * 0.03 * r[:, 3].view(b, 1, 1, 1)
    if not max_shift:
        return x, targets
    s = max_shift
    padded = torch.nn.functional.pad(x, (s, s, s, s), mode="replicate")
    moved_t = None if targets is None else torch.nn.functional.pad(targets, (s, s, s, s))
    offsets = torch.randint(0, 2 * s + 1, (b, 2), generator=generator).tolist()
    x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
    if moved_t is not None:
        targets = torch.stack([moved_t[i, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
    return x, targets


def patch_mask(batch: int, shape: tuple[int, int], patch: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Random square patches to hide: (batch, 1, H, W) bool, True where hidden, ``ratio`` of the patches per image.

    Args:
        batch: images in the batch.
        shape: (H, W) in pixels, each a multiple of ``patch``.
        patch: side of a square patch in pixels.
        ratio: fraction of the patches hidden, in (0, 1).
        generator: a CPU ``torch.Generator``.

    Example:
        >>> m = patch_mask(2, (32, 32), 8, 0.5, torch.Generator().manual_seed(0))
        >>> tuple(m.shape), float(m.float().mean())
        ((2, 1, 32, 32), 0.5)
    """
    h, w = shape
    if h % patch or w % patch:
        raise LumbarLabError(f"the image ({h}×{w}) must be a whole number of {patch}-pixel patches; change patch.")
    if not 0 < ratio < 1:
        raise LumbarLabError(f"mask ratio must be in (0, 1), got {ratio}.")
    gh, gw = h // patch, w // patch
    hide = int(round(ratio * gh * gw))
    ranks = torch.rand(batch, gh * gw, generator=generator).argsort(1)
    grid = (ranks < hide).view(batch, 1, gh, gw)
    return grid.repeat_interleave(patch, 2).repeat_interleave(patch, 3)


# ----------------------------------------------------------------------------------------------- pretraining


@dataclass
class Pretrained:
    """A pretrained network and how it got there.

    Attributes:
        kind: ``"segmentation"``, ``"masked"`` or ``"contrastive"``.
        network: the MONAI U-Net whose contracting path :func:`initialise` copies (for ``contrastive`` only the
            encoder was trained; its decoder is untouched).
        losses: the training loss of every step.
        seconds: wall time of the pretraining.
        steps: optimiser steps taken.
    """

    kind: str
    network: nn.Module
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def _unet(size: str, out_channels: int) -> nn.Module:
    from lumbarlab.models import build_model

    return build_model("segmentation", "unet", spatial_dims=2, size=size, in_channels=1, out_channels=out_channels)


def _as_images(images) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != 3:
        raise LumbarLabError(f"expected images as (N, H, W), got shape {tuple(x.shape)}.")
    return x[:, None]


def _optimise(params, loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int, steps: int,
              batch_size: int, lr: float, seed: int) -> list[float]:
    """AdamW with cosine decay for ``steps`` steps; ``loss_of(indices, generator)`` draws and scores one batch."""
    if steps < 1:
        raise LumbarLabError(f"steps must be at least 1, got {steps}.")
    params = list(params)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=g)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(idx, g)
        if not torch.isfinite(loss):
            raise LumbarLabError(f"the pretraining loss became {loss.item()}; lower the learning rate.")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    return losses


def pretrain_segmentation(images, masks, steps: int = 100, batch_size: int = 16, lr: float = 2e-3, seed: int = 0,
                          size: str = "tiny", classes: int = 3,
                          init: Pretrained | nn.Module | None = None) -> Pretrained:
    """Supervised pretraining on another task of the lab: a U-Net learns to segment vertebral bodies and the
    sacrum (cross-entropy per pixel), on the same images, steps and views as the self-supervised methods, so only
    the *signal* differs.

    Args:
        images: (N, H, W) float in [0, 1]; H and W multiples of 16.
        masks: (N, H, W) integer classes 0 … ``classes`` − 1.
        steps: optimiser steps of ``batch_size`` images.
        lr: AdamW learning rate (cosine decay to 0).
        seed: the U-Net's first weights, batches and views.
        size: ``tiny`` / ``small`` / ``base`` (:func:`lumbarlab.models.build_model`); fine-tune with the same.
        classes: segmentation classes including background.
        init: start from this U-Net's weights (every tensor whose name and shape match, :func:`initialise`) —
            fine-tuning a segmenter from another task or modality, e.g. a CT U-Net on MRI slices; None: random.

    Example:
        >>> p = pretrain_segmentation(np.random.rand(4, 32, 32), np.zeros((4, 32, 32), int), steps=2, batch_size=2)
        >>> p.kind, len(p.losses)
        ('segmentation', 2)
    """
    from lumbarlab.device import get_device

    device = get_device()
    x = _as_images(images)
    y = torch.as_tensor(np.asarray(masks)).long()
    if y.shape != x.shape[:1] + x.shape[2:]:
        raise LumbarLabError(f"masks {tuple(y.shape)} must match images {tuple(x.shape[:1] + x.shape[2:])}.")
    torch.manual_seed(seed)
    net = _unet(size, classes)
    if init is not None:
        initialise(net, init)
    net = net.to(device).train()

    def loss_of(idx, g):
        views, target = augment(x[idx], g, targets=y[idx])
        return nn.functional.cross_entropy(net(views.to(device)), target.to(device))

    t0 = time.perf_counter()
    losses = _optimise(net.parameters(), loss_of, len(x), steps, batch_size, lr, seed)
    return Pretrained("segmentation", net.eval(), losses, time.perf_counter() - t0, steps)


def dice_per_image(network: nn.Module, images, masks, classes: int = 3, batch_size: int = 32) -> np.ndarray:
    """Each test image's Dice, averaged over the foreground classes ``1 … classes − 1`` present in its mask or its
    prediction (2|A∩B| / (|A| + |B|); a class absent from both is skipped). (N,) floats, for a bootstrap.

    Example:
        >>> net = nn.Conv2d(1, 2, 1); _ = net.weight.data.fill_(0); _ = net.bias.data.copy_(torch.tensor([0., 1.]))
        >>> dice_per_image(net, np.zeros((2, 4, 4)), np.ones((2, 4, 4), int), classes=2).tolist()
        [1.0, 1.0]
    """
    device = next(network.parameters()).device
    x = _as_images(images)
    network.eval()
    with torch.inference_mode():
        pred = torch.cat([network(x[i:i + batch_size].to(device)).argmax(1).cpu()
                          for i in range(0, len(x), batch_size)]).numpy()
    truth = np.asarray(masks)
    out = np.empty(len(x))
    for i in range(len(x)):
        scores = []
        for c in range(1, classes):
            a, b = pred[i] == c, truth[i] == c
            if a.any() or b.any():
                scores.append(2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))
        out[i] = np.mean(scores) if scores else 1.0
    return out


def masked_loss(restored: torch.Tensor, image: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the hidden pixels only, as in MAE (He et al., CVPR 2022):
    ``Σ_{p∈M} (x̂_p − x_p)² / |M|``; the visible pixels cost nothing, so copying them teaches nothing.

    Args:
        restored: (B, 1, H, W) the network's output.
        image: (B, 1, H, W) the unmasked view.
        hidden: (B, 1, H, W) bool, True where the input was hidden.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); m = torch.zeros(1, 1, 4, 4, dtype=torch.bool); m[..., :2, :] = True
        >>> float(masked_loss(x + 1, x, m))
        1.0
    """
    m = hidden.to(restored.dtype)
    return ((restored - image) ** 2 * m).sum() / m.sum().clamp_min(1)


def pretrain_masked(images, steps: int = 100, batch_size: int = 16, lr: float = 2e-3, seed: int = 0,
                    size: str = "tiny", patch: int = 8, ratio: float = 0.5) -> Pretrained:
    """Self-supervised masked-image modelling: hide ``ratio`` of the ``patch``-pixel squares of a random view
    (set to 0) and train a U-Net to restore them; the loss is :func:`masked_loss`. No label is used.

    MAE (He et al., CVPR 2022) hides 75 % of a ViT's patches; a U-Net restoring corrupted images is Models
    Genesis (Zhou et al., Medical Image Analysis 2021); here half of 8-pixel squares, so that a 64–128 px
    radiograph keeps enough context to infer what is hidden.

    Args:
        images: (N, H, W) float in [0, 1]; H and W multiples of 16 and of ``patch``.
        steps: optimiser steps of ``batch_size`` images.
        lr: AdamW learning rate (cosine decay to 0).
        seed: batches, views and masks.
        size: the U-Net's width (fine-tune with the same).
        patch: side of a hidden square in pixels.
        ratio: fraction of squares hidden.

    Example:
        >>> p = pretrain_masked(np.random.rand(4, 32, 32), steps=2, batch_size=2)
        >>> p.kind, len(p.losses)
        ('masked', 2)
    """
    from lumbarlab.device import get_device

    device = get_device()
    x = _as_images(images)
    torch.manual_seed(seed)
    net = _unet(size, 1).to(device).train()

    def loss_of(idx, g):
        views, _ = augment(x[idx], g)
        hidden = patch_mask(len(idx), tuple(views.shape[-2:]), patch, ratio, g)
        views, hidden = views.to(device), hidden.to(device)
        return masked_loss(net(views.masked_fill(hidden, 0.0)), views, hidden)

    t0 = time.perf_counter()
    losses = _optimise(net.parameters(), loss_of, len(x), steps, batch_size, lr, seed)
    return Pretrained("masked", net.eval(), losses, time.perf_counter() - t0, steps)


class _Projector(nn.Module):
    """SimCLR's projection head on the pooled encoder features (Chen et al., ICML 2020). Its batch norm centres
    the features: pooled after (P)ReLUs they are all positive, every pair starts with cosine ≈ 1 and NT-Xent sits at
    its chance value ``ln(2B − 1)`` with almost no gradient."""

    def __init__(self, encoder: nn.Module, width: int, dim: int = 64):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(True), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.encoder(x), 1), 1))


def pretrain_contrastive(images, steps: int = 100, batch_size: int = 16, lr: float = 2e-3, seed: int = 0,
                         size: str = "tiny", temperature: float = 0.2) -> Pretrained:
    """Self-supervised contrastive pretraining (SimCLR, Chen et al., ICML 2020): two random views of each image
    (:func:`augment`) pass the U-Net's encoder and a projection head; MONAI's ``ContrastiveLoss`` (NT-Xent) pulls
    each pair together and pushes the other ``2B − 2`` images of the batch away.

    Args:
        images: (N, H, W) float in [0, 1]; H and W multiples of 16.
        steps: optimiser steps of ``batch_size`` images (2 × ``batch_size`` views).
        lr: AdamW learning rate (cosine decay to 0).
        seed: batches and views.
        size: the U-Net's width (fine-tune with the same).
        temperature: τ of NT-Xent (MONAI's default is 0.5; a smaller τ weighs the hardest negatives more,
            which a batch of a few radiographs needs).

    Example:
        >>> p = pretrain_contrastive(np.random.rand(4, 32, 32), steps=2, batch_size=2)
        >>> p.kind, len(p.losses)
        ('contrastive', 2)
    """
    from monai.losses import ContrastiveLoss

    from lumbarlab.device import get_device
    from lumbarlab.models import unet_encoder

    device = get_device()
    x = _as_images(images)
    torch.manual_seed(seed)
    unet = _unet(size, 1)
    model = _Projector(unet_encoder(unet), 16 * _width(size)).to(device).train()  # the bottom block's channels
    loss_fn = ContrastiveLoss(temperature=temperature)

    def loss_of(idx, g):
        a, _ = augment(x[idx], g)
        b, _ = augment(x[idx], g)
        return loss_fn(model(a.to(device)), model(b.to(device)))

    t0 = time.perf_counter()
    losses = _optimise(model.parameters(), loss_of, len(x), steps, batch_size, lr, seed)
    return Pretrained("contrastive", unet.to(device).eval(), losses, time.perf_counter() - t0, steps)


def _width(size: str) -> int:
    widths = {"tiny": 8, "small": 16, "base": 32}  # lumbarlab.models' widths
    if size not in widths:
        raise LumbarLabError(f"size must be tiny, small or base, got {size!r}.")
    return widths[size]


# ------------------------------------------------------------------------------------------- initialisation


def initialise(model: nn.Module, source: Pretrained | nn.Module | str | os.PathLike | None) -> int:
    """Start ``model`` from ``source``: copy the encoder and leave the head as it was built (random).

    Args:
        model: an :class:`~lumbarlab.models.EncoderClassifier` (its U-Net encoder gets the weights), or any network
            (every tensor whose name and shape match the source's is copied — e.g. a CT U-Net into an MRI one,
            all but the output layer).
        source: a :class:`Pretrained`, a trained MONAI U-Net (e.g. ``zoo.load("xray-vertebrae")``), a path to
            ImageNet weights for a :func:`resnet18` (:func:`load_imagenet_weights`), or None for random
            initialisation.

    Returns:
        the number of tensors copied (0 for None).

    Example:
        >>> from lumbarlab.models import EncoderClassifier, build_model
        >>> unet = build_model("segmentation", "unet", size="tiny", out_channels=3)
        >>> clf = EncoderClassifier(2, 1, 2, size="tiny")
        >>> initialise(clf, unet) > 0, torch.equal(clf.encoder[0].state_dict()["conv.unit0.conv.weight"],
        ...                                        unet.model[0].state_dict()["conv.unit0.conv.weight"])
        (True, True)
    """
    from lumbarlab.models import EncoderClassifier, unet_encoder

    if source is None:
        return 0
    if isinstance(source, (str, os.PathLike)):
        return load_imagenet_weights(model, source)
    net = source.network if isinstance(source, Pretrained) else source
    if not isinstance(net, nn.Module):
        raise LumbarLabError(f"source must be a Pretrained, a trained network or None, got {type(source).__name__}.")
    if isinstance(model, EncoderClassifier):
        model.load_encoder(net)
        return len(unet_encoder(net).state_dict())
    own = model.state_dict()
    matching = {k: v for k, v in net.state_dict().items() if k in own and own[k].shape == v.shape}
    if not matching:
        raise LumbarLabError("no weight of the source fits this network; build both with the same architecture and size.")
    own.update(matching)
    model.load_state_dict(own)
    return len(matching)


# ------------------------------------------------------------------------------------- fine-tuning and curves


class _Labelled(torch.utils.data.Dataset):
    """(image (1, H, W), label) items, each a fresh random view when ``augment``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, augment_views: bool, seed: int):
        self.images, self.labels, self.augment = images, labels, augment_views
        self.g = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.images[i:i + 1]
        if self.augment:
            x, _ = augment(x, self.g)
        return x[0], self.labels[i]


def fine_tune(model: nn.Module, images, labels, steps: int = 60, batch_size: int = 16, lr: float = 1e-3,
              seed: int = 0, rounds: int = 6, augment_views: bool = True):
    """Train every weight of ``model`` on labelled images for exactly ``steps`` steps (whatever the number of
    images: batches are drawn with replacement), through :func:`lumbarlab.train.fit` in ``rounds`` rounds, so that
    1 % and 100 % of the labels get the same budget. Returns fit's ``History`` (one loss per round).

    Args:
        model: a classifier (logits (B, K)); moved to the lab's device.
        images: (N, H, W) float in [0, 1].
        labels: (N,) integer classes.
        steps: optimiser steps in all (rounded down to a multiple of ``rounds``).
        batch_size: images per step.
        lr: AdamW learning rate, cosine decay over the rounds.
        seed: batches, views and dropout.
        rounds: points of the loss curve (fit's "epochs").
        augment_views: random views (:func:`augment`) of every drawn image.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> h = fine_tune(net, np.random.rand(8, 4, 4), np.arange(8) % 2, steps=4, batch_size=4, rounds=2)
        >>> len(h.train_loss)
        2
    """
    from lumbarlab.train import fit

    x = _as_images(images)
    y = torch.as_tensor(np.asarray(labels)).long()
    per_round = max(steps // rounds, 1)
    data = _Labelled(x, y, augment_views, seed)
    sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=per_round * batch_size,
                                             generator=torch.Generator().manual_seed(seed))
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=sampler)
    return fit(model, loader, nn.functional.cross_entropy, epochs=rounds, lr=lr, seed=seed, progress=False)


def evaluate(model: nn.Module, images, labels, batch_size: int = 64) -> dict[str, float]:
    """AUC and accuracy (threshold 0.5 on the softmax) of a two-class classifier on a test set, and each test
    image's score: the logit margin ``z₁ − z₀``. It ranks the images exactly as the softmax probability does, but a
    float32 softmax saturates at 0 or 1 for confident networks, and the resulting ties would bias the AUC to 0.5.

    Args:
        model: logits (B, 2); evaluated on its own device.
        images: (N, H, W) float in [0, 1].
        labels: (N,) 0/1.
        batch_size: images per forward pass.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> sorted(evaluate(net, np.random.rand(6, 4, 4), np.arange(6) % 2))
        ['accuracy', 'auc', 'scores']
    """
    from lumbarlab import metrics

    device = next(model.parameters()).device
    x = _as_images(images)
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(x[i:i + batch_size].to(device)).float().cpu()
                            for i in range(0, len(x), batch_size)])
    scores = (logits[:, 1] - logits[:, 0]).numpy().astype(np.float64)  # the logit margin: never saturates
    y = np.asarray(labels).astype(int)
    auc = metrics.roc_auc(y, scores) if len(np.unique(y)) == 2 else math.nan
    return {"auc": float(auc), "accuracy": float(np.mean((scores >= 0) == y)), "scores": scores}


@dataclass
class CurvePoint:
    """One fine-tuning run: initialisation × label fraction × seed → test metrics and its loss curve."""

    init: str
    fraction: float
    n_labelled: int
    seed: int
    auc: float
    accuracy: float
    train_loss: list[float]
    copied: int
    scores: np.ndarray | None = field(default=None, repr=False)  # per test image (:func:`evaluate`), for bootstraps


def learning_curve(sources: Mapping[str, Pretrained | nn.Module | None], train_images, train_labels, test_images,
                   test_labels, fractions: Sequence[float] = (0.01, 0.1, 1.0), seeds: Sequence[int] = (0, 1, 2),
                   steps: int = 60, batch_size: int = 16, lr: float = 1e-3, size: str = "tiny", rounds: int = 6,
                   on_run: Callable[[CurvePoint], None] | None = None,
                   build: Callable[[], nn.Module] | None = None) -> list[CurvePoint]:
    """Fine-tune one :class:`~lumbarlab.models.EncoderClassifier` per (initialisation, fraction, seed) and test it.

    Matched by design: for one seed every initialisation gets the same labelled subset
    (:func:`label_fractions`), the same randomly initialised head (the network is built under ``seed`` before the
    encoder is copied), the same batches and views, and the same number of steps.

    Args:
        sources: ``{name: Pretrained | trained U-Net | None}`` (None: random initialisation).
        train_images, train_labels: the labelled pool (N, H, W) and (N,).
        test_images, test_labels: the held-out set.
        fractions: label fractions in (0, 1].
        seeds: one run per seed; the subset depends on the seed too.
        steps, batch_size, lr, rounds: the fine-tuning budget (:func:`fine_tune`).
        size: the encoder's width, as the sources were built.
        on_run: called after every run (a progress line).
        build: makes the network (default: ``EncoderClassifier(2, 1, 2, size)``); e.g. :func:`resnet18` with
            ImageNet paths as sources.

    Returns:
        a tidy list, one :class:`CurvePoint` per run.

    Example:
        >>> pts = learning_curve({"random": None}, np.random.rand(20, 32, 32), np.arange(20) % 2,
        ...                      np.random.rand(6, 32, 32), np.arange(6) % 2, fractions=(0.1,), seeds=(0,), steps=2,
        ...                      batch_size=2, rounds=1)
        >>> (pts[0].init, pts[0].fraction, pts[0].n_labelled)
        ('random', 0.1, 2)
    """
    from lumbarlab.models import EncoderClassifier

    x, y = np.asarray(train_images, np.float32), np.asarray(train_labels).astype(np.int64)
    points = []
    for seed in seeds:
        subsets = label_fractions(y, fractions, seed)
        for f in fractions:
            idx = subsets[f]
            for name, source in sources.items():
                torch.manual_seed(seed)  # the same random head (and random encoder) for every init of this seed
                model = build() if build is not None else EncoderClassifier(2, 1, 2, size=size)
                copied = initialise(model, source)
                history = fine_tune(model, x[idx], y[idx], steps, batch_size, lr, seed, rounds)
                score = evaluate(model, test_images, test_labels)
                point = CurvePoint(name, f, len(idx), seed, score["auc"], score["accuracy"], history.train_loss,
                                   copied, score["scores"])
                points.append(point)
                if on_run is not None:
                    on_run(point)
    return points


@dataclass
class CurveSummary:
    """Mean, sample standard deviation and 95 % t-interval of a metric over seeds, for one init × fraction."""

    init: str
    fraction: float
    n_labelled: int
    seeds: int
    mean: float
    sd: float
    low: float
    high: float


def summarise(points: Sequence[CurvePoint], metric: str = "auc") -> list[CurveSummary]:
    """Per (init, fraction): mean ± sd over seeds and the 95 % t-interval ``mean ± t_{0.975, n−1} · sd / √n``.

    Args:
        points: from :func:`learning_curve`.
        metric: ``auc`` or ``accuracy``.

    Example:
        >>> pts = [CurvePoint("random", 0.1, 20, s, a, 0.5, [], 0) for s, a in enumerate([0.6, 0.7, 0.8])]
        >>> s = summarise(pts)[0]
        >>> round(s.mean, 3), round(s.sd, 3), round(s.high - s.mean, 3)
        (0.7, 0.1, 0.248)
    """
    groups: dict[tuple[str, float], list[CurvePoint]] = {}
    for p in points:
        groups.setdefault((p.init, p.fraction), []).append(p)
    out = []
    for (init, f), ps in groups.items():
        values = [getattr(p, metric) for p in ps]
        if not np.all(np.isfinite(values)):  # an AUC is NaN on a one-class test set: no spread to report
            out.append(CurveSummary(init, f, ps[0].n_labelled, len(ps), math.nan, math.nan, math.nan, math.nan))
            continue
        t = seed_spread(values)
        out.append(CurveSummary(init, f, ps[0].n_labelled, len(ps), t.mean, t.sd, t.low, t.high))
    return out


def paired_difference(points: Sequence[CurvePoint], init: str, baseline: str, fraction: float,
                      metric: str = "auc") -> tuple[float, float, float, int]:
    """``init − baseline`` per seed at one fraction (a paired comparison: same subset, head and batches), as
    (mean, low, high, seeds) with a 95 % t-interval. An interval that holds 0 says the seeds cannot tell them apart.

    Args:
        points: from :func:`learning_curve`.
        init, baseline: initialisation names.
        fraction: the label fraction.
        metric: ``auc`` or ``accuracy``.

    Example:
        >>> pts = [CurvePoint(i, 1.0, 9, s, v, 0, [], 0) for i, vs in (("a", [0.9, 0.8]), ("b", [0.7, 0.7]))
        ...        for s, v in enumerate(vs)]
        >>> [round(v, 2) for v in paired_difference(pts, "a", "b", 1.0)[:1]]
        [0.15]
    """
    def by_seed(name):
        return {p.seed: getattr(p, metric) for p in points if p.init == name and p.fraction == fraction}

    a, b = by_seed(init), by_seed(baseline)
    common = sorted(set(a) & set(b))
    if not common:
        raise LumbarLabError(f"no seed has both {init!r} and {baseline!r} at fraction {fraction}.")
    diffs = [a[s] - b[s] for s in common]
    if not np.all(np.isfinite(diffs)):  # an AUC is NaN on a one-class test set
        return math.nan, math.nan, math.nan, len(common)
    t = seed_spread(diffs)
    return t.mean, t.low, t.high, t.n


def _mean_auc(y: np.ndarray, *score_sets: np.ndarray) -> float:
    """Mean over seeds (columns) of the AUC; with two sets, the mean AUC of the first minus that of the second."""
    from lumbarlab import metrics

    if len(np.unique(y)) < 2:
        raise LumbarLabError("a resample holds one class only.")
    aucs = [np.mean([metrics.roc_auc(y, s[:, k]) for k in range(s.shape[1])]) for s in score_sets]
    return float(aucs[0] - aucs[1]) if len(aucs) == 2 else float(aucs[0])


def _score_matrix(points: Sequence[CurvePoint], init: str, fraction: float) -> dict[int, np.ndarray]:
    out = {p.seed: p.scores for p in points if p.init == init and p.fraction == fraction}
    if not out or any(v is None for v in out.values()):
        raise LumbarLabError(f"no test scores for {init!r} at {fraction}; run learning_curve again (it keeps them).")
    return out


def bootstrap_auc(points: Sequence[CurvePoint], test_labels, init: str, fraction: float,
                  baseline: str | None = None, n_resamples: int = 1000, seed: int = 0):
    """95 % percentile-bootstrap interval over **test cases** of the AUC averaged over seeds — or, with
    ``baseline``, of the paired difference ``AUC(init) − AUC(baseline)`` (same seeds, same resampled cases).

    With two or three seeds a t-interval over seeds is uninformative (t₀.₉₇₅ is 12.7 with 2); the test set is the
    other source of chance, and resampling its cases measures how much the AUC would move on another test set of
    the same size. It does *not* cover the seed-to-seed spread of training: read both.

    Args:
        points: from :func:`learning_curve` (they keep every test score).
        test_labels: (N,) 0/1 of the test set the points were scored on.
        init, fraction: which arm; ``baseline``: the arm subtracted (e.g. ``"random"``).
        n_resamples, seed: the bootstrap (:func:`lumbarlab.metrics.bootstrap_ci`).

    Returns:
        a :class:`lumbarlab.metrics.Interval` (estimate, low, high).

    Example:
        >>> y = np.arange(40) % 2
        >>> pts = [CurvePoint("a", 1.0, 9, 0, 1.0, 1.0, [], 0, y + 0.0), CurvePoint("b", 1.0, 9, 0, 0.5, 0.5, [], 0,
        ...        np.zeros(40))]
        >>> ci = bootstrap_auc(pts, y, "a", 1.0, baseline="b", n_resamples=200)
        >>> ci.estimate, ci.low
        (0.5, 0.5)
    """
    from lumbarlab.metrics import bootstrap_ci

    y = np.asarray(test_labels).astype(int)
    a = _score_matrix(points, init, fraction)
    if baseline is None:
        seeds = sorted(a)
        return bootstrap_ci(_mean_auc, y, np.stack([a[s] for s in seeds], 1), n_resamples=n_resamples, seed=seed)
    b = _score_matrix(points, baseline, fraction)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise LumbarLabError(f"no seed has both {init!r} and {baseline!r} at fraction {fraction}.")
    return bootstrap_ci(_mean_auc, y, np.stack([a[s] for s in seeds], 1), np.stack([b[s] for s in seeds], 1),
                        n_resamples=n_resamples, seed=seed)


def intensity_baseline(train_images, train_labels, test_images, test_labels) -> float:
    """A no-learning reference: the test AUC of each image's **mean intensity**, its direction (brighter means
    slip, or darker) chosen on the training set. A network that has learnt nothing about the slip but ranks images
    by brightness or contrast lands near this value, not at 0.5.

    Example:
        >>> x = np.stack([np.full((4, 4), v) for v in (0.1, 0.2, 0.8, 0.9)]); y = np.array([0, 0, 1, 1])
        >>> intensity_baseline(x, y, x[::-1], y[::-1])
        1.0
    """
    from lumbarlab import metrics

    def mean_of(images):
        return np.asarray(images, np.float64).reshape(len(images), -1).mean(1)

    sign = 1.0 if metrics.roc_auc(np.asarray(train_labels).astype(int), mean_of(train_images)) >= 0.5 else -1.0
    return float(metrics.roc_auc(np.asarray(test_labels).astype(int), sign * mean_of(test_images)))


def curve_table(summary: Sequence[CurveSummary]) -> str:
    """A Markdown table: one row per initialisation, one column per fraction, cells ``mean ± sd [low, high]``.

    Example:
        >>> print(curve_table([CurveSummary("random", 0.1, 20, 3, 0.7, 0.1, 0.45, 0.95)]).splitlines()[2])
        | random | 0.700 ± 0.100 [0.45, 0.95] |
    """
    fractions = sorted({s.fraction for s in summary})
    inits = list(dict.fromkeys(s.init for s in summary))
    cell = {(s.init, s.fraction): s for s in summary}
    head = "| initialisation | " + " | ".join(
        f"{f:.0%} ({cell[next(i for i in inits if (i, f) in cell), f].n_labelled} labels)" for f in fractions) + " |"
    rows = [head, "| --- |" + " --- |" * len(fractions)]
    for i in inits:
        cells = []
        for f in fractions:
            s = cell.get((i, f))
            cells.append("—" if s is None else f"{s.mean:.3f} ± {s.sd:.3f} [{s.low:.2f}, {s.high:.2f}]")
        rows.append(f"| {i} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------------- ImageNet


def imagenet_weights_path(path: str | os.PathLike | None = None) -> Path:
    """Where ImageNet ResNet-18 weights are on this machine: ``path``, else ``$LUMBARLAB_IMAGENET_WEIGHTS``, else
    torch hub's cache (``~/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth``, where torchvision puts them).
    Never downloads.

    Raises:
        LumbarLabError: no file there, with the URL to fetch it from by hand.

    Example:
        >>> try:
        ...     imagenet_weights_path("/nowhere/resnet18.pth")
        ... except LumbarLabError as e:
        ...     print(str(e)[:52])
        ImageNet weights not found at /nowhere/resnet18.pth.
    """
    name = IMAGENET_RESNET18_URL.rsplit("/", 1)[1]
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints" / name
    given = path or os.environ.get(IMAGENET_ENV)
    candidate = Path(given).expanduser() if given else hub
    if candidate.is_file():
        return candidate
    where = f"at {candidate}" if given else f"(no {IMAGENET_ENV}, and nothing at {hub})"
    raise LumbarLabError(
        f"ImageNet weights not found {where}. lumbarlab ships none and never downloads while a lesson runs. On a "
        f"machine with internet, download {IMAGENET_RESNET18_URL} (torchvision's ResNet-18, IMAGENET1K_V1; "
        f"torchvision itself is not needed), copy it here, and pass its path or set {IMAGENET_ENV}=/path/{name}.")


def resnet18(num_classes: int = 2, in_channels: int = 1) -> nn.Module:
    """A 2D ResNet-18 (MONAI's ``ResNet``) laid out exactly as torchvision's — same layer names and shapes,
    7×7 stride-2 stem and max-pool — so torchvision's or timm's ImageNet weights load into it by name.

    Args:
        num_classes: outputs of the final linear layer.
        in_channels: 1 for radiographs (the RGB stem is summed over its colours when loading).

    Example:
        >>> tuple(resnet18()(torch.zeros(1, 1, 64, 64)).shape)
        (1, 2)
    """
    from monai.networks.nets import ResNet

    return ResNet("basic", [2, 2, 2, 2], [64, 128, 256, 512], spatial_dims=2, n_input_channels=in_channels,
                  conv1_t_size=7, conv1_t_stride=2, num_classes=num_classes)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise LumbarLabError(f"{path.name} is a safetensors file; `pip install safetensors` to read it.") from exc
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # no code from pickles
    except Exception as exc:  # corrupt or foreign files fail in many ways
        raise LumbarLabError(f"{path}: not a readable weights file ({exc.__class__.__name__}: {exc}).") from exc
    for key in ("state_dict", "model"):  # checkpoints that wrap the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise LumbarLabError(f"{path}: holds a {type(state).__name__}, not a dictionary of weights.")
    return state


def load_imagenet_weights(model: nn.Module, path: str | os.PathLike | None = None) -> int:
    """Copy ImageNet ResNet weights (torchvision/timm names) from a local file into ``model`` (:func:`resnet18`).

    Every tensor whose name and shape match is copied; the stem's RGB filters are summed over their colours when
    the model takes one channel (a grey image is R = G = B; timm adapts its stems the same way); the 1000-class
    ``fc`` layer does not fit a two-class head and stays random. Feed such a model images normalised as ImageNet's
    grey: ``(x − 0.449) / 0.226``.

    Args:
        model: a network laid out as torchvision's ResNet.
        path: the weights file (``.pth`` or ``.safetensors``); None: :func:`imagenet_weights_path`'s search.

    Returns:
        the number of tensors copied.

    Raises:
        LumbarLabError: no file (with where to get one), or a file whose tensors do not fit the model.

    Example:
        >>> try:
        ...     load_imagenet_weights(nn.Linear(2, 2), "/nowhere/resnet18.pth")
        ... except LumbarLabError as e:
        ...     print("download" in str(e))
        True
    """
    file = imagenet_weights_path(path)
    state = _read_state(file)
    own = model.state_dict()
    stem = state.get("conv1.weight")
    if stem is not None and "conv1.weight" in own and stem.shape[1] == 3 and own["conv1.weight"].shape[1] == 1:
        state = {**state, "conv1.weight": stem.sum(1, keepdim=True)}
    matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    body = [k for k in own if not k.startswith("fc.")]
    if len([k for k in body if k in matching]) < 0.9 * len(body):
        raise LumbarLabError(f"{file}: only {len(matching)} of the model's {len(own)} tensors match by name and "
                             "shape; give ResNet-18 ImageNet weights (torchvision or timm) for lumbarlab's resnet18().")
    own.update(matching)
    model.load_state_dict(own)
    return len(matching)


def imagenet_resnet18(path: str | os.PathLike | None = None, num_classes: int = 2) -> nn.Module:
    """:func:`resnet18` for grey images with ImageNet weights from a local file (:func:`load_imagenet_weights`);
    raises :class:`~lumbarlab.errors.LumbarLabError` saying where to download them when there is none.

    Example:
        >>> try:
        ...     imagenet_resnet18("/nowhere/resnet18.pth")
        ... except LumbarLabError as e:
        ...     print(e.__class__.__name__)
        LumbarLabError
    """
    file = imagenet_weights_path(path)  # fail before building anything
    model = resnet18(num_classes=num_classes, in_channels=1)
    load_imagenet_weights(model, file)
    return model
