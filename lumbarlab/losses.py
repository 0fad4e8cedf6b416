"""Losses the lessons and the zoo train with, beyond MONAI's.

Landmarks are trained as heatmaps with a differentiable spatial soft-argmax (DSNT: Nibali et al.,
"Numerical coordinate regression with convolutional neural networks", 2018): the loss is the
mean distance in pixels between the soft-argmax of each heatmap and the true landmark, plus a
Kullback–Leibler term that pulls the heatmap towards a Gaussian of ``sigma`` pixels around the
truth. The distance term gives sub-pixel accuracy; the heatmap term keeps the maps unimodal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_heatmaps", "landmark_loss", "heatmap_focal_loss", "RegistrationLoss"]


def gaussian_heatmaps(coords: torch.Tensor, shape: tuple[int, int], sigma: float = 2.0) -> torch.Tensor:
    """(B, K, 2) (x, y) pixel positions → (B, K, H, W) Gaussians of ``sigma`` px that each sum to 1.

    Built as the outer product of a row and a column profile (a 2D Gaussian is separable), which is
    far cheaper than evaluating the exponential on every pixel.
    """
    h, w = shape
    ys = torch.arange(h, dtype=coords.dtype, device=coords.device)
    xs = torch.arange(w, dtype=coords.dtype, device=coords.device)
    gx = torch.exp(-((xs - coords[..., 0, None]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((ys - coords[..., 1, None]) ** 2) / (2 * sigma**2))
    gx = gx / gx.sum(-1, keepdim=True).clamp_min(1e-12)
    gy = gy / gy.sum(-1, keepdim=True).clamp_min(1e-12)
    return gy[..., :, None] * gx[..., None, :]


def landmark_loss(logits: torch.Tensor, coords: torch.Tensor, sigma: float = 2.0,
                  heatmap_weight: float = 1.0) -> torch.Tensor:
    """DSNT loss for 2D heatmap logits (B, K, H, W) against (B, K, 2) (x, y) pixel positions.

    Returns the mean Euclidean error of the soft-argmax (pixels) + ``heatmap_weight`` × the
    cross-entropy between a Gaussian target and the spatial softmax (the KL divergence up to the
    target's constant entropy). The soft-argmax is computed from the row and column marginals of
    the softmax — the same numbers as :func:`lumbarlab.models.decode_heatmaps` with ``beta=1``,
    which decodes predictions.
    """
    b, k, h, w = logits.shape
    logp = F.log_softmax(logits.float().reshape(b, k, -1), dim=-1).reshape(b, k, h, w)
    p = logp.exp()
    xs = torch.arange(w, dtype=p.dtype, device=p.device)
    ys = torch.arange(h, dtype=p.dtype, device=p.device)
    pred = torch.stack([(p.sum(-2) * xs).sum(-1), (p.sum(-1) * ys).sum(-1)], dim=-1)
    distance = torch.linalg.vector_norm(pred - coords, dim=-1).mean()
    target = gaussian_heatmaps(coords.float(), (h, w), sigma)
    cross_entropy = -(target * logp).sum(dim=(-2, -1)).mean()
    return distance + heatmap_weight * cross_entropy


def heatmap_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """Penalty-reduced focal loss for heatmaps of any dimension (CornerNet: Law & Deng, ECCV 2018; CenterNet:
    Zhou et al., 2019): ``logits`` (B, C, …) against Gaussian ``target`` s in [0, 1] whose peak voxels are 1.

    At a peak: −(1 − p)^α log p; elsewhere −(1 − y)^β p^α log(1 − p), so voxels near a peak are barely
    penalised for a high p. The sum is divided by the number of peaks (at least 1). A channel that is all 0
    (a vertebra outside the field of view) teaches "nothing here".

    Example:
        >>> t = torch.zeros(1, 1, 5, 5); t[0, 0, 2, 2] = 1.0
        >>> good, bad = torch.full((1, 1, 5, 5), -6.0), torch.zeros(1, 1, 5, 5)
        >>> good[0, 0, 2, 2] = 6.0
        >>> float(heatmap_focal_loss(good, t)) < 0.01 < float(heatmap_focal_loss(bad, t))
        True
    """
    logits, target = logits.float(), target.float()
    p = torch.sigmoid(logits)
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    peak = target >= 0.99
    pos = ((1 - p) ** alpha * log_p)[peak].sum()
    neg = ((1 - target) ** beta * p**alpha * log_not_p)[~peak].sum()
    return -(pos + neg) / peak.sum().clamp_min(1)


class RegistrationLoss(torch.nn.Module):
    """The weakly supervised registration loss of Hu et al. (*Medical Image Analysis* 2018) and MONAI's registration
    tutorials: image similarity of the warped moving image to the fixed one (1 − local normalised cross-correlation,
    a 7-voxel window), plus the Dice loss of the warped moving **labels** against the fixed labels, plus the bending
    energy of the displacement (the squared second derivatives: Rueckert et al. 1999), which keeps the field smooth
    and unfolded.

    Called as ``loss((warped, ddf), targets)`` with ``targets`` = (B, 3, …): the fixed image, then the moving and the
    fixed label maps as class indices 0 … ``classes`` − 1 (as floats); the labels are warped by the same ``ddf``.

    Example:
        >>> loss = RegistrationLoss(classes=3)
        >>> img = torch.rand(1, 1, 16, 16, 16); lab = torch.zeros(1, 1, 16, 16, 16); lab[..., 4:10, 4:10, 4:10] = 2
        >>> zero = torch.zeros(1, 3, 16, 16, 16)
        >>> round(float(loss((img, zero), torch.cat([img, lab, lab], 1))), 4)   # aligned: nothing to pay
        0.0
    """

    def __init__(self, classes: int, label_weight: float = 1.0, bending_weight: float = 0.5):
        super().__init__()
        from monai.losses import BendingEnergyLoss, DiceLoss, LocalNormalizedCrossCorrelationLoss
        from monai.networks.blocks import Warp

        self.classes, self.label_weight, self.bending_weight = classes, label_weight, bending_weight
        self.image_loss = LocalNormalizedCrossCorrelationLoss(kernel_size=7)
        self.dice = DiceLoss(include_background=False, batch=True)
        self.bending = BendingEnergyLoss()
        self.warp = Warp(mode="bilinear", padding_mode="border")

    def forward(self, outputs, targets: torch.Tensor) -> torch.Tensor:
        warped, ddf = outputs
        fixed, moving_labels, fixed_labels = targets[:, :1], targets[:, 1:2], targets[:, 2:3]
        image = 1.0 + self.image_loss(warped, fixed)  # MONAI's LNCC loss is −LNCC: 0 when the images agree
        total = image + self.bending_weight * self.bending(ddf)
        if self.label_weight:
            one_hot = [F.one_hot(lab[:, 0].long(), self.classes).movedim(-1, 1).float() for lab in (moving_labels, fixed_labels)]
            total = total + self.label_weight * self.dice(self.warp(one_hot[0], ddf), one_hot[1])
        return total
