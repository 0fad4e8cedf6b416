"""Do the maps depend on the model at all? Sanity checks and faithfulness.

* Model-parameter randomization (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018):
  re-initialise the model's blocks from the output down (cascading) and compare each map with the
  original by Spearman rank correlation. Maps of a method that explains the model fall towards 0;
  maps that stay similar describe the image (edges), not the model.
* Data (label) randomization (same paper): compare the maps of the model with those of the same
  architecture trained on shuffled labels — the caller trains that model (see the explain lesson).
* Deletion / insertion (Petsiuk et al., "RISE", BMVC 2018): remove the most salient pixels first
  (replace by a blurred copy) and watch the class probability fall; insert them into the blurred
  image and watch it rise. A faithful map has a low deletion AUC and a high insertion AUC.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lumbarlab.errors import LumbarLabError
from lumbarlab.explain.cam import as_input

__all__ = ["spearman", "parameter_randomization", "label_randomization", "deletion_insertion", "RandomizationStep",
           "FaithfulnessCurve"]


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Average ranks along the last axis (ties share their mean rank, as scipy.stats.rankdata)."""
    sorted_x, order = torch.sort(x, dim=-1)
    ranks = torch.empty_like(x, dtype=torch.float64)
    for row in range(x.shape[0]):
        _, inverse, counts = torch.unique_consecutive(sorted_x[row], return_inverse=True, return_counts=True)
        ends = torch.cumsum(counts, 0).double()
        mean_rank = ends - (counts.double() - 1) / 2  # 1-based mean rank of each run of ties
        ranks[row, order[row]] = mean_rank[inverse]
    return ranks


def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation between two batches of maps (B, *spatial), one value per image."""
    ta = torch.as_tensor(np.asarray(a), dtype=torch.float64).flatten(1)
    tb = torch.as_tensor(np.asarray(b), dtype=torch.float64).flatten(1)
    if ta.shape != tb.shape:
        raise LumbarLabError(f"maps differ in shape: {tuple(ta.shape)} vs {tuple(tb.shape)}.")
    ra, rb = _ranks(ta), _ranks(tb)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    denom = (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)
    return ((ra * rb).sum(1) / denom).numpy()


@dataclass
class RandomizationStep:
    """Maps after randomizing ``block`` and every block above it; ``rank_correlation`` per image."""

    block: str
    rank_correlation: np.ndarray
    maps: np.ndarray


def _reinitialize(module: torch.nn.Module, generator: torch.Generator) -> None:
    for sub in module.modules():
        for name, p in sub.named_parameters(recurse=False):
            with torch.no_grad():
                if name == "weight" and p.ndim > 1:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                elif name == "weight":
                    p.fill_(1.0)
                else:
                    p.zero_()


def parameter_randomization(model: torch.nn.Module, x, explain: Callable, blocks: list[str] | None = None,
                            seed: int = 0) -> list[RandomizationStep]:
    """Cascading randomization: for each block from the output towards the input, re-initialise it
    (and keep the ones above random) and recompute ``explain(model_copy, x) -> Saliency``.

    ``blocks``: module names from the top down (default: the model's direct children in reverse).
    The original model is never changed (a deep copy is randomized).
    """
    original = explain(model, x).maps
    randomized = copy.deepcopy(model)
    names = blocks or [n for n, _ in randomized.named_children()][::-1]
    modules = dict(randomized.named_modules())
    generator = torch.Generator().manual_seed(seed)
    steps = []
    for name in names:
        if name not in modules:
            raise LumbarLabError(f"the model has no block {name!r}.")
        _reinitialize(modules[name], generator)
        maps = explain(randomized, x).maps
        steps.append(RandomizationStep(name, spearman(original, maps), maps))
    return steps


def label_randomization(model: torch.nn.Module, random_label_model: torch.nn.Module, x, explain: Callable) -> np.ndarray:
    """Spearman correlation per image between the maps of ``model`` and of the same architecture
    trained on shuffled labels. High values mean the maps do not depend on what the model learned."""
    return spearman(explain(model, x).maps, explain(random_label_model, x).maps)


@dataclass
class FaithfulnessCurve:
    """Probability of the explained class as the most salient fraction of pixels is deleted / inserted."""

    fractions: np.ndarray
    deletion: np.ndarray  # (B, steps + 1)
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> np.ndarray:
        return np.trapezoid(self.deletion, self.fractions, axis=-1)

    @property
    def insertion_auc(self) -> np.ndarray:
        return np.trapezoid(self.insertion, self.fractions, axis=-1)


def _blur(x: torch.Tensor, passes: int = 4) -> torch.Tensor:
    pool = F.avg_pool2d if x.ndim == 4 else F.avg_pool3d
    for _ in range(passes):
        x = pool(x, 9, stride=1, padding=4, count_include_pad=False)
    return x


@torch.inference_mode()
def deletion_insertion(model: torch.nn.Module, x, maps, target, steps: int = 16, spatial_dims: int = 2) -> FaithfulnessCurve:
    """Deletion and insertion curves of a classifier for saliency ``maps`` (B, *spatial) and classes
    ``target`` (B,); each step is one batched forward pass of all images."""
    device = next(model.parameters()).device
    inputs, _ = as_input(x, spatial_dims, device)
    sal = torch.as_tensor(np.asarray(maps), dtype=torch.float32, device=device).flatten(1)
    if sal.shape != (inputs.shape[0], int(np.prod(inputs.shape[2:]))):
        raise LumbarLabError("maps must have one value per input pixel (use upsampled maps).")
    cls = torch.as_tensor(np.asarray(target), device=device).long().reshape(-1).expand(inputs.shape[0])
    blurred = _blur(inputs)
    order = torch.argsort(sal, dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=device).expand_as(order))
    fractions = np.linspace(0.0, 1.0, steps + 1)
    was_training = model.training
    model.eval()
    deletion, insertion = [], []
    idx = torch.arange(inputs.shape[0], device=device)
    try:
        for f in fractions:
            top = (ranks < int(round(f * order.shape[1]))).view(inputs.shape[0], 1, *inputs.shape[2:])
            deleted = torch.where(top, blurred, inputs)
            inserted = torch.where(top, inputs, blurred)
            deletion.append(torch.softmax(model(deleted).float(), 1)[idx, cls].cpu().numpy())
            insertion.append(torch.softmax(model(inserted).float(), 1)[idx, cls].cpu().numpy())
    finally:
        model.train(was_training)
    return FaithfulnessCurve(fractions, np.stack(deletion, 1), np.stack(insertion, 1))
