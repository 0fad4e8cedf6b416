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

__all__ = ["gaussian_heatmaps", "landmark_loss", "heatmap_focal_loss"]


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
