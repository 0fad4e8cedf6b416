"""Class activation maps (Grad-CAM, Grad-CAM++, HiResCAM) for MONAI classifiers and segmenters, 2D and 3D.

Formulas (A = the layer's activations, g = ∂score/∂A, both (C, *spatial)):

* Grad-CAM (Selvaraju et al., ICCV 2017): ReLU(Σ_c mean(g_c) · A_c).
* Grad-CAM++ (Chattopadhay et al., WACV 2018), with the exponential-score closed form MONAI uses:
  α = g² / (2 g² + Σ A g³), weights Σ α · ReLU(exp(score) · g).
* HiResCAM (Draelos & Carin, 2020): ReLU(Σ_c g_c ⊙ A_c), faithful to the gradient at every position.

Why this is fast: a hook replaces the layer's output by a detached copy that requires grad, and
the parameters stop requiring grad for the call, so the forward pass below the layer records no
graph and the backward pass runs only from the score down to the layer (for the last feature
layer of a classifier: a pooling and a linear layer). MONAI's ``GradCAM`` backpropagates through
the whole network into every parameter.

The target score is a class logit (classification) or, for segmentation, the sum of one class's
logits inside a region — the user's mask or the predicted one (Vinogradova et al., "Towards
interpretable semantic segmentation via gradient-weighted class activation mapping", AAAI 2020).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lumbarlab.errors import LumbarLabError

__all__ = ["CAM_METHODS", "Saliency", "candidate_layers", "default_layer", "capture", "class_activation_map",
           "frozen_parameters", "as_input", "target_scores", "normalize_maps", "upsample"]

CAM_METHODS = ("gradcam", "gradcam++", "hirescam")


@dataclass
class Saliency:
    """Maps in the input's geometry and what they explain.

    Attributes:
        maps: (B, *spatial) float32 in [0, 1] (per image min–max), or raw when ``normalize=False``.
        target: (B,) class index each map explains.
        probability: (B,) softmax probability of that class (for segmentation, mean inside the region).
        method, layer: how the maps were made.
    """

    maps: np.ndarray
    target: np.ndarray
    probability: np.ndarray
    method: str
    layer: str | None


def _module(model: torch.nn.Module, name: str) -> torch.nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        close = [n for n in modules if name.split(".")[-1] in n][:5]
        raise LumbarLabError(f"the model has no layer {name!r}" + (f"; similar: {', '.join(close)}" if close else "")
                             + ". List them with lumbarlab.explain.candidate_layers(model, example).")
    return modules[name]


def candidate_layers(model: torch.nn.Module, example: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """Layers whose output is a feature map, in forward order, with their output shapes.

    ``example`` is one input batch (a zeros tensor of the right shape will do). Any of the names
    can be passed as ``layer``; later (deeper) layers give coarser, more class-specific maps.
    """
    spatial = example.ndim - 2
    seen: list[tuple[str, tuple[int, ...]]] = []
    handles = []

    def hook(name):
        def record(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and output.ndim == spatial + 2 and name:
                seen.append((name, tuple(output.shape[1:])))
        return record

    for name, module in model.named_modules():
        handles.append(module.register_forward_hook(hook(name)))
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(example)
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    unique: dict[str, tuple[int, ...]] = {}
    for name, shape in seen:
        unique.setdefault(name, shape)
    return list(unique.items())


def default_layer(model: torch.nn.Module, example: torch.Tensor) -> str:
    """The last layer with the coarsest feature map that is still larger than one voxel: the usual
    Grad-CAM choice for classifiers (last convolutional block) and the bottleneck of a U-Net."""
    layers = [(n, s) for n, s in candidate_layers(model, example) if max(s[1:]) > 1]
    if not layers:
        raise LumbarLabError("the model has no layer with a spatial feature map to explain.")
    coarsest = min(int(np.prod(s[1:])) for _, s in layers)
    return [n for n, s in layers if int(np.prod(s[1:])) == coarsest][-1]


@contextlib.contextmanager
def frozen_parameters(model: torch.nn.Module) -> Iterator[None]:
    """Parameters stop requiring grad inside the block (so backward never touches them), then restore."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextlib.contextmanager
def capture(model: torch.nn.Module, layer: str, start_graph: bool = True) -> Iterator[dict]:
    """Record ``layer``'s output in ``store["activation"]`` during forward passes; the hook is always removed.

    With ``start_graph`` the output is replaced by a detached copy that requires grad, so that the
    autograd graph starts at this layer.
    """
    store: dict = {}

    def hook(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise LumbarLabError(f"layer {layer!r} returns {type(output).__name__}, not a tensor; choose another layer.")
        if start_graph and torch.is_grad_enabled():
            output = output.detach().requires_grad_(True)
        store["activation"] = output
        return output

    handle = _module(model, layer).register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def as_input(x, spatial_dims: int, device: torch.device) -> tuple[torch.Tensor, object]:
    """Array, tensor or :class:`Volume` → (B, C, *spatial) float tensor on ``device``; also returns the
    Volume (or None) so maps can be put back on its grid."""
    from lumbarlab.volume import Volume

    volume = x if isinstance(x, Volume) else None
    arr = x.array if volume is not None else x
    t = arr if isinstance(arr, torch.Tensor) else torch.as_tensor(np.asarray(arr))
    if t.numel() == 0:
        raise LumbarLabError("the input is empty.")
    t = t.float()
    if not torch.isfinite(t).all():
        raise LumbarLabError("the input holds NaN or infinite values.")
    if t.ndim == spatial_dims:
        t = t[None, None]
    elif t.ndim == spatial_dims + 1:
        t = t[:, None]
    elif t.ndim != spatial_dims + 2:
        raise LumbarLabError(f"expected a {spatial_dims}D image, a batch of them, or (B, C, *spatial); "
                             f"got shape {tuple(t.shape)}.")
    return t.to(device), volume


def target_scores(logits: torch.Tensor, target, region=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(score per image, target class per image, probability per image) for a classifier's
    (B, K) logits or a segmenter's (B, K, *spatial) logits.

    ``target``: None (the predicted class; for segmentation the most frequent foreground class),
    an int, or one int per image. ``region`` (segmentation): a (B, *spatial) or (*spatial) mask;
    default the pixels predicted as the target class.
    """
    b, k = logits.shape[:2]
    if target is None:
        if logits.ndim == 2:
            cls = logits.argmax(1)
        else:
            pred = logits.argmax(1).reshape(b, -1)
            counts = torch.stack([(pred == c).sum(1) for c in range(k)], 1)
            if k > 1:
                counts[:, 0] = -1  # explain a foreground class when there is one
            cls = counts.argmax(1)
    else:
        cls = torch.as_tensor(target, device=logits.device).long().reshape(-1).expand(b).clone()
    if (cls < 0).any() or (cls >= k).any():
        raise LumbarLabError(f"target class must be in 0–{k - 1}, got {cls.tolist()}.")
    probs = torch.softmax(logits.detach().float(), 1)
    idx = torch.arange(b, device=logits.device)
    if logits.ndim == 2:
        return logits[idx, cls], cls, probs[idx, cls]
    chosen = logits[idx, cls]  # (B, *spatial)
    if region is None:
        mask = (logits.detach().argmax(1) == cls.view(-1, *[1] * (logits.ndim - 2))).float()
    else:
        mask = torch.as_tensor(np.asarray(region) if not isinstance(region, torch.Tensor) else region,
                               device=logits.device).float()
        if mask.shape == chosen.shape[1:]:
            mask = mask.expand_as(chosen)
        if mask.shape != chosen.shape:
            raise LumbarLabError(f"region shape {tuple(mask.shape)} does not match the output {tuple(chosen.shape)}.")
    area = mask.flatten(1).sum(1).clamp_min(1)
    score = (chosen * mask).flatten(1).sum(1)
    prob = (probs[idx, cls] * mask).flatten(1).sum(1) / area
    return score, cls, prob


def _weights_map(method: str, acti: torch.Tensor, grad: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    b, c = acti.shape[:2]
    spatial = [1] * (acti.ndim - 2)
    if method == "gradcam":
        weights = grad.flatten(2).mean(2).view(b, c, *spatial)
        return F.relu((weights * acti).sum(1))
    if method == "hirescam":
        return F.relu((grad * acti).sum(1))
    # Grad-CAM++ (closed form for an exponential score, as in MONAI)
    g2 = grad.pow(2)
    denom = 2 * g2 + (acti * grad.pow(3)).flatten(2).sum(2).view(b, c, *spatial)
    denom = torch.where(denom != 0.0, denom, torch.ones_like(denom))
    alpha = g2 / (denom + 1e-7)
    weights = (alpha * F.relu(score.exp().view(b, *[1] * (acti.ndim - 1)) * grad)).flatten(2).sum(2).view(b, c, *spatial)
    return F.relu((weights * acti).sum(1))


def upsample(maps: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(B, *spatial) maps → (B, *size) by (bi/tri)linear interpolation, align_corners=False (as MONAI)."""
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(size)]
    return F.interpolate(maps[:, None].float(), size=tuple(size), mode=mode, align_corners=False)[:, 0]


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Per-image min–max scaling to [0, 1] (a constant map becomes 0)."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(maps)


def class_activation_map(model: torch.nn.Module, x, layer: str | None = None, target=None, method: str = "gradcam",
                         region=None, spatial_dims: int | None = None, normalize: bool = True,
                         upsampled: bool = True):
    """Grad-CAM / Grad-CAM++ / HiResCAM of ``model`` for ``x`` at ``layer``.

    Args:
        x: (H, W[, D]) image, a batch (B, H, W[, D]), (B, C, *spatial), or a :class:`Volume`.
        layer: module name (see :func:`candidate_layers`); default :func:`default_layer`.
        target: class to explain (None: the predicted one), an int or one per image.
        region: segmentation only — the pixels whose summed logit is explained (default: predicted).
        spatial_dims: 2 or 3 (default: inferred from a Volume, else 2).
        normalize: per-image min–max to [0, 1]; upsampled: bring the map to the input's size.

    Returns:
        :class:`Saliency` (maps as numpy), or a :class:`Volume` of the map when ``x`` is a Volume.
    """
    from lumbarlab.volume import Volume

    if method not in CAM_METHODS:
        raise LumbarLabError(f"method must be one of {', '.join(CAM_METHODS)}, got {method!r}.")
    dims = spatial_dims or (3 if isinstance(x, Volume) else 2)
    device = next(model.parameters()).device
    inputs, volume = as_input(x, dims, device)
    layer = layer or default_layer(model, inputs[:1])
    was_training = model.training
    model.eval()
    try:
        with frozen_parameters(model), capture(model, layer) as store, torch.enable_grad():
            logits = model(inputs)
            score, cls, prob = target_scores(logits, target, region)
            acti = store["activation"]
            (grad,) = torch.autograd.grad(score.sum(), acti)
            with torch.no_grad():
                maps = _weights_map(method, acti.detach().float(), grad.float(), score.detach().float())
                if upsampled:
                    maps = upsample(maps, tuple(inputs.shape[2:]))
                if normalize:
                    maps = normalize_maps(maps)
    finally:
        model.train(was_training)
    out = Saliency(maps.cpu().numpy(), cls.cpu().numpy(), prob.cpu().numpy(), method, layer)
    if volume is not None and upsampled:
        return volume.with_array(out.maps[0])
    return out
