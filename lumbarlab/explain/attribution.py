"""Model-agnostic saliency: vanilla gradients, SmoothGrad and occlusion sensitivity; and what a layer sees:
feature maps, filters, activation maximization.

* Vanilla gradients (Simonyan et al., "Deep inside convolutional networks", 2014): |∂score/∂x|, max over channels.
* SmoothGrad (Smilkov et al., 2017): the mean of vanilla gradients over ``n`` noisy copies of the input
  (noise σ = ``noise`` × the input's intensity range; the paper suggests 10–20 %).
* Occlusion sensitivity (Zeiler & Fergus, ECCV 2014): how much the target's probability drops when a
  patch is replaced by the image mean, averaged over the patches covering each pixel.
* Activation maximization (Erhan et al., 2009): gradient ascent on the input to excite one channel,
  with an L2 penalty and periodic blurring so the image stays smooth.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lumbarlab.errors import LumbarLabError
from lumbarlab.explain.cam import (
    Saliency,
    as_input,
    capture,
    frozen_parameters,
    normalize_maps,
    target_scores,
)

__all__ = ["input_gradients", "occlusion", "feature_maps", "filters", "maximize_activation", "ATTRIBUTION_METHODS"]

ATTRIBUTION_METHODS = ("gradients", "smoothgrad", "occlusion")


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def input_gradients(model: torch.nn.Module, x, target=None, region=None, smooth: int = 0, noise: float = 0.15,
                    spatial_dims: int = 2, normalize: bool = True, seed: int = 0) -> Saliency:
    """Vanilla gradients (``smooth=0``) or SmoothGrad over ``smooth`` noisy copies, batched."""
    inputs, _ = as_input(x, spatial_dims, _device(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, cls, prob = target_scores(model(inputs), target, region)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        total = torch.zeros_like(inputs)
        copies = max(smooth, 1)
        sigma = noise * (inputs.flatten(1).amax(1) - inputs.flatten(1).amin(1)).view(-1, *[1] * (inputs.ndim - 1))
        with frozen_parameters(model), torch.enable_grad():
            for _ in range(copies):
                noisy = inputs
                if smooth:
                    noisy = inputs + sigma * torch.randn(inputs.shape, generator=generator).to(inputs.device)
                noisy = noisy.detach().requires_grad_(True)
                score, _, _ = target_scores(model(noisy), cls, region)
                (grad,) = torch.autograd.grad(score.sum(), noisy)
                total += grad.abs()
    finally:
        model.train(was_training)
    maps = (total / copies).amax(1)
    if normalize:
        maps = normalize_maps(maps)
    return Saliency(maps.cpu().numpy(), cls.cpu().numpy(), prob.cpu().numpy(), "smoothgrad" if smooth else "gradients", None)


def occlusion(model: torch.nn.Module, x, target=None, patch: int = 16, stride: int = 8, batch_size: int = 64,
              spatial_dims: int = 2, normalize: bool = True) -> Saliency:
    """Occlusion sensitivity for classifiers: drop in the target probability per pixel (2D or 3D),
    running the occluded copies in batches of ``batch_size``."""
    inputs, _ = as_input(x, spatial_dims, _device(model))
    if patch < 1 or stride < 1:
        raise LumbarLabError("patch and stride must be positive pixel counts.")
    was_training = model.training
    model.eval()
    spatial = tuple(inputs.shape[2:])
    starts = [range(0, max(n - patch, 0) + 1, stride) for n in spatial]
    grid = np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(spatial))
    maps, classes, probs = [], [], []
    try:
        with torch.inference_mode():
            for image in inputs:
                logits = model(image[None])
                if logits.ndim != 2:
                    raise LumbarLabError("occlusion explains classifiers; use a CAM for segmentation.")
                _, cls, prob = target_scores(logits, target)
                heat = torch.zeros(spatial, device=inputs.device)
                count = torch.zeros(spatial, device=inputs.device)
                fill = image.mean()
                for i in range(0, len(grid), batch_size):
                    chunk = grid[i : i + batch_size]
                    batch = image[None].repeat(len(chunk), *[1] * image.ndim)
                    for j, corner in enumerate(chunk):
                        batch[(j, slice(None), *[slice(c, c + patch) for c in corner])] = fill
                    p = torch.softmax(model(batch).float(), 1)[:, cls[0]]
                    for j, corner in enumerate(chunk):
                        window = tuple(slice(c, c + patch) for c in corner)
                        heat[window] += prob[0] - p[j]
                        count[window] += 1
                maps.append(heat / count.clamp_min(1))
                classes.append(cls)
                probs.append(prob)
    finally:
        model.train(was_training)
    out = torch.stack(maps)
    if normalize:
        out = normalize_maps(out.clamp_min(0))
    return Saliency(out.cpu().numpy(), torch.cat(classes).cpu().numpy(), torch.cat(probs).cpu().numpy(), "occlusion", None)


def feature_maps(model: torch.nn.Module, x, layer: str, spatial_dims: int = 2) -> np.ndarray:
    """The activations of ``layer`` for the first image: (C, *spatial) float32."""
    inputs, _ = as_input(x, spatial_dims, _device(model))
    was_training = model.training
    model.eval()
    try:
        with capture(model, layer, start_graph=False) as store, torch.inference_mode():
            model(inputs[:1])
    finally:
        model.train(was_training)
    return store["activation"][0].float().cpu().numpy()


def filters(model: torch.nn.Module, layer: str | None = None) -> np.ndarray:
    """Weights of a convolution (default: the first one): (out, in, *kernel) float32."""
    modules = dict(model.named_modules())
    if layer is None:
        layer = next((n for n, m in modules.items() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))), None)
        if layer is None:
            raise LumbarLabError("the model has no convolution.")
    module = modules.get(layer)
    if not isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d)):
        raise LumbarLabError(f"{layer!r} is not a convolution layer.")
    return module.weight.detach().float().cpu().numpy()


def maximize_activation(model: torch.nn.Module, layer: str, channel: int, shape: tuple[int, ...], steps: int = 64,
                        lr: float = 0.05, l2: float = 1e-3, blur_every: int = 4, seed: int = 0) -> np.ndarray:
    """An input (shape (C, *spatial)) that excites ``channel`` of ``layer``: gradient ascent on the
    channel's mean activation from small noise, with an L2 penalty and a 3-pixel blur every
    ``blur_every`` steps; returns the image scaled to [0, 1]."""
    device = _device(model)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    image = (0.5 + 0.01 * torch.randn((1, *shape), generator=generator)).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    dims = len(shape) - 1
    pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
    was_training = model.training
    model.eval()
    try:
        with frozen_parameters(model), capture(model, layer, start_graph=False) as store:
            for step in range(steps):
                optimizer.zero_grad()
                model(image)
                acti = store["activation"]
                if not 0 <= channel < acti.shape[1]:
                    raise LumbarLabError(f"{layer!r} has {acti.shape[1]} channels; channel {channel} does not exist.")
                loss = -acti[0, channel].mean() + l2 * image.pow(2).sum()
                loss.backward()
                optimizer.step()
                if blur_every and (step + 1) % blur_every == 0:
                    with torch.no_grad():
                        image.copy_(pool(image, 3, stride=1, padding=1, count_include_pad=False))
    finally:
        model.train(was_training)
    out = image.detach()[0]
    return ((out - out.min()) / (out.max() - out.min()).clamp_min(1e-12)).cpu().numpy()
