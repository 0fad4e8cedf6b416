"""Image-quality metrics for reconstruction and denoising.

* PSNR = 10·log10(R² / MSE) with R the data range (dB).
* SSIM (Wang et al., IEEE TIP 2004): local statistics under an 11-tap Gaussian window
  (σ = 1.5), K1 = 0.01, K2 = 0.03, averaged over the positions where the window fits
  ("valid"), in 2D or 3D — the same convention as MONAI's ``SSIMMetric``.
* SNR = mean(signal ROI) / std(noise ROI); CNR = |mean(A) − mean(B)| / std(noise ROI)
  (the NEMA / ACR phantom conventions with a separate noise region).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array, check_finite, check_same_shape

__all__ = ["psnr", "ssim", "snr", "cnr"]


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    a = check_finite(as_array(x, "x", dtype=np.float64), "x")
    b = check_finite(as_array(y, "y", dtype=np.float64), "y")
    check_same_shape(a, b, ("x", "y"))
    return a, b


def psnr(reference, image, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical images)."""
    a, b = _pair(reference, image)
    rng = float(a.max() - a.min()) if data_range is None else float(data_range)
    if rng <= 0:
        raise LumbarLabError("data_range must be positive; pass it explicitly for a constant reference.")
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(rng**2 / mse))


def ssim(reference, image, data_range: float | None = None, win_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean structural similarity of two 2D or 3D images."""
    a, b = _pair(reference, image)
    if a.ndim not in (2, 3):
        raise LumbarLabError(f"SSIM needs a 2D or 3D image, got {a.ndim} dimensions.")
    if min(a.shape) < win_size:
        raise LumbarLabError(f"image {a.shape} is smaller than the {win_size}-pixel SSIM window.")
    rng = float(a.max() - a.min()) if data_range is None else float(data_range)
    c1, c2 = (k1 * rng) ** 2, (k2 * rng) ** 2
    radius = win_size // 2
    x = np.arange(-radius, radius + 1)
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()

    def blur(img):
        for axis in range(img.ndim):
            img = ndimage.correlate1d(img, g, axis=axis, mode="constant")
        return img[tuple(slice(radius, n - radius) for n in img.shape)]  # keep "valid" positions

    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return float(s.mean())


def _roi(image: np.ndarray, mask, name: str) -> np.ndarray:
    m = as_array(mask, name).astype(bool)
    check_same_shape(image, m, ("image", name))
    if m.sum() < 2:
        raise LumbarLabError(f"{name} selects fewer than 2 pixels.")
    return image[m]


def snr(image, signal_mask, noise_mask) -> float:
    """Signal-to-noise ratio: mean in the signal ROI over the standard deviation in the noise ROI."""
    img = check_finite(as_array(image, "image", dtype=np.float64), "image")
    noise = float(_roi(img, noise_mask, "noise_mask").std(ddof=1))
    if noise == 0:
        return float("inf")
    return float(_roi(img, signal_mask, "signal_mask").mean() / noise)


def cnr(image, roi_a, roi_b, noise_mask) -> float:
    """Contrast-to-noise ratio between two ROIs, with the noise measured in its own ROI."""
    img = check_finite(as_array(image, "image", dtype=np.float64), "image")
    noise = float(_roi(img, noise_mask, "noise_mask").std(ddof=1))
    diff = abs(float(_roi(img, roi_a, "roi_a").mean() - _roi(img, roi_b, "roi_b").mean()))
    return float("inf") if noise == 0 else diff / noise
