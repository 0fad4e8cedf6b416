"""Denoise CT slices with a network or a filter, and score the result against the noise-free image.

A denoiser here is any function from axial slices in HU, (N, H, W), to slices in HU: a trained network through
:func:`network_denoiser`, or a classical filter (:func:`gaussian_denoiser`). :func:`denoising_scores` scores one
on :class:`~lumbarlab.datasets.ct_dose.DosePair` s the way the zoo's ``ct-denoise`` test does.

Example:
    >>> from lumbarlab.datasets.ct_dose import phantom_ct_dose
    >>> pairs = phantom_ct_dose(1, seed=900_000, dose=0.25, shape=(64, 48, 8), spacing=(4.0, 4.0, 10.0))
    >>> round(denoising_scores(pairs, lambda hu: hu)["psnr_gain"], 6)   # doing nothing gains nothing
    0.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from lumbarlab.datasets.ct import CT_WINDOW
from lumbarlab.datasets.ct_dose import DosePair, axial_slices, from_denoiser, to_denoiser
from lumbarlab.errors import LumbarLabError

__all__ = ["network_denoiser", "gaussian_denoiser", "denoising_scores", "Denoiser"]

#: (N, H, W) axial slices in HU → the same, denoised.
Denoiser = Callable[[np.ndarray], np.ndarray]


def network_denoiser(model: torch.nn.Module, batch_size: int = 8) -> Denoiser:
    """A trained 2D denoiser (HU / ``DENOISE_SCALE_HU`` in and out) as a :data:`Denoiser`, run on the model's
    own device in eval mode, ``batch_size`` slices at a time."""
    weights = next(iter(model.parameters()), None)
    device = weights.device if weights is not None else torch.device("cpu")

    @torch.inference_mode()
    def denoise(hu: np.ndarray) -> np.ndarray:
        model.eval()
        x = to_denoiser(hu)
        out = [model(torch.from_numpy(x[i:i + batch_size])[:, None].to(device))[:, 0].float().cpu().numpy()
               for i in range(0, len(x), batch_size)]
        return from_denoiser(np.concatenate(out))

    return denoise


def gaussian_denoiser(sigma: float) -> Denoiser:
    """The classical baseline: a Gaussian filter of ``sigma`` pixels in the slice plane.

    Example:
        >>> float(gaussian_denoiser(1.0)(np.full((1, 8, 8), 40.0, np.float32))[0, 4, 4])   # a flat region stays flat
        40.0
    """
    from scipy import ndimage

    if sigma < 0:
        raise LumbarLabError(f"sigma must be ≥ 0 pixels, got {sigma}.")
    return lambda hu: ndimage.gaussian_filter(np.asarray(hu, np.float32), (0.0, sigma, sigma), mode="nearest")


def _trabecular_cores(pair: DosePair, levels: Sequence[str]) -> dict[str, np.ndarray]:
    """The trabecular cores of ``levels`` on ``pair``'s labels (2 mm erosion), found once per pair: placing one
    takes the vertebra's geometry, far longer than scoring a denoiser on it."""
    from lumbarlab.measure.ct import trabecular_core

    cache = pair.__dict__.setdefault("_cores", {})
    for level in levels:
        if level not in cache:
            try:
                cache[level] = trabecular_core(pair.labels, level, erode_mm=2.0)
            except LumbarLabError:  # a level outside the slab, or too thin on it
                cache[level] = None
    return {level: cache[level] for level in levels if cache[level] is not None}


def denoising_scores(pairs: Sequence[DosePair], denoise: Denoiser, window: tuple[float, float] = CT_WINDOW,
                     levels: Sequence[str] = ("L1", "L2", "L3", "L4", "L5"), with_ssim: bool = True) -> dict[str, float]:
    """Mean PSNR and SSIM over the axial slices of ``pairs``, of the noisy input and of ``denoise(noisy)``,
    against the noise-free image; values clipped to ``window`` (HU), whose width is the data range (3000 HU by
    default, so a PSNR of 40 dB is an RMS error of 30 HU). ``psnr_gain`` = PSNR after − before (dB);
    ``bone_hu_bias``: the mean HU the denoiser adds inside the trabecular cores of ``levels``
    (:func:`lumbarlab.measure.ct.trabecular_core`, 2 mm erosion) — what an opportunistic density reading on the
    denoised scan would feel; ``bone_hu_bias_noisy`` the same for the input (≈ 0: noise has zero mean).
    ``with_ssim=False`` skips SSIM (NaN), for quick sweeps.
    """
    from lumbarlab import metrics

    lo, hi = window
    scores: dict[str, list[float]] = {"psnr_noisy": [], "psnr": [], "ssim_noisy": [], "ssim": []}
    bias, bias_noisy = [], []
    for pair in pairs:
        noisy, clean = axial_slices(pair.noisy), axial_slices(pair.clean)
        denoised = np.asarray(denoise(noisy), np.float32)
        if denoised.shape != noisy.shape:
            raise LumbarLabError(f"the denoiser returned {denoised.shape} for slices of {noisy.shape}.")
        for n, c, d in zip(noisy, clean, denoised, strict=True):
            n, c, d = (np.clip(a, lo, hi) for a in (n, c, d))
            scores["psnr_noisy"].append(metrics.psnr(c, n, data_range=hi - lo))
            scores["psnr"].append(metrics.psnr(c, d, data_range=hi - lo))
            if with_ssim:
                scores["ssim_noisy"].append(metrics.ssim(c, n, data_range=hi - lo))
                scores["ssim"].append(metrics.ssim(c, d, data_range=hi - lo))
        volume = np.moveaxis(denoised, 0, 2)
        for core in _trabecular_cores(pair, levels).values():
            truth = float(np.asarray(pair.clean.array)[core].mean())
            bias.append(float(volume[core].mean()) - truth)
            bias_noisy.append(float(np.asarray(pair.noisy.array)[core].mean()) - truth)
    out = {k: float(np.mean(v)) if v else float("nan") for k, v in scores.items()}
    out["psnr_gain"] = out["psnr"] - out["psnr_noisy"]
    out["bone_hu_bias"] = float(np.mean(bias)) if bias else float("nan")
    out["bone_hu_bias_noisy"] = float(np.mean(bias_noisy)) if bias_noisy else float("nan")
    return out
