"""MRI k-space of an image: coil sensitivities, Cartesian undersampling with a calibration region, and the
zero-filled reconstruction every accelerated-MRI network is compared with.

An MR scanner measures the Fourier transform of the image seen through each receive coil, one phase-encoding line
(a column of k-space here) at a time; scan time grows with the number of lines, so skipping lines accelerates the
scan. Conventions follow fastMRI (Zbontar et al., arXiv:1811.08839) and MONAI's reconstruction app: centred,
orthonormal 2D FFTs (:func:`monai.data.fft_utils.fftn_centered`), a fully sampled band of low frequencies (the
auto-calibration region: 8 % of the lines at 4×, 4 % at 8×) plus randomly chosen lines up to 1 / acceleration, and
root-sum-of-squares (RSS) coil combination.

Example:
    >>> image = np.zeros((32, 32), np.float32); image[8:24, 12:20] = 1.0
    >>> maps = coil_sensitivities((32, 32), coils=4)
    >>> k = to_kspace(image, maps)
    >>> k.shape, k.dtype
    ((4, 32, 32), dtype('complex64'))
    >>> bool(np.allclose(zero_filled(k, np.ones(32, bool)), image, atol=1e-5))   # all lines: the image back
    True
"""

from __future__ import annotations

import numpy as np
import torch

from lumbarlab.errors import LumbarLabError

__all__ = ["coil_sensitivities", "to_kspace", "cartesian_mask", "zero_filled", "CENTER_FRACTIONS", "UndersampledSlices"]

#: fastMRI's calibration band (share of the lines fully sampled round k = 0) for each acceleration.
CENTER_FRACTIONS = {4: 0.08, 8: 0.04}


def coil_sensitivities(shape: tuple[int, int], coils: int = 8, seed: int = 0, width: float = 0.6) -> np.ndarray:
    """(coils, H, W) complex64 receive sensitivities of a ring of coils round the image: each a smooth Gaussian
    bump centred just outside the field of view (``width`` × the image size wide) with a slowly varying phase,
    normalised so that Σ_c |S_c|² = 1 at every pixel (then the RSS of the coil images is the image itself).

    Example:
        >>> maps = coil_sensitivities((16, 24), coils=3)
        >>> maps.shape, bool(np.allclose((np.abs(maps) ** 2).sum(0), 1.0))
        ((3, 16, 24), True)
    """
    if coils < 1:
        raise LumbarLabError(f"coils must be at least 1, got {coils}.")
    h, w = shape
    rng = np.random.default_rng([int(seed), 0xC011])
    y, x = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    maps = []
    for c in range(coils):
        angle = 2 * np.pi * c / coils + rng.uniform(-0.2, 0.2)
        cy, cx = 1.3 * np.sin(angle), 1.3 * np.cos(angle)
        magnitude = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * width**2))
        phase = rng.uniform(-np.pi, np.pi) + 0.5 * (y * rng.normal() + x * rng.normal())
        maps.append(magnitude * np.exp(1j * phase))
    maps = np.stack(maps)
    maps /= np.sqrt((np.abs(maps) ** 2).sum(axis=0, keepdims=True))
    return maps.astype(np.complex64)


def _fft(images: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2D FFT over the last two axes (MONAI's ``fftn_centered`` for complex input)."""
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(images, axes=axes), norm="ortho"), axes=axes)


def _ifft(kspace: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=axes), norm="ortho"), axes=axes)


def to_kspace(image: np.ndarray, sensitivities: np.ndarray | None = None) -> np.ndarray:
    """(coils, H, W) complex64 k-space of a 2D ``image`` seen through each coil (one coil of sensitivity 1 when
    ``sensitivities`` is None)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise LumbarLabError(f"to_kspace takes one 2D image (H, W), got shape {image.shape}.")
    maps = np.ones((1, *image.shape), np.complex64) if sensitivities is None else np.asarray(sensitivities)
    if maps.shape[1:] != image.shape:
        raise LumbarLabError(f"coil maps {maps.shape[1:]} and image {image.shape} differ in size.")
    return _fft(maps * image[None]).astype(np.complex64)


def cartesian_mask(columns: int, acceleration: int, center_fraction: float | None = None, seed: int = 0) -> np.ndarray:
    """(columns,) boolean mask of the phase-encoding lines kept: a centred band of ``center_fraction`` × columns
    (default :data:`CENTER_FRACTIONS`) plus lines drawn at random so that about columns / ``acceleration`` are kept
    (fastMRI's ``RandomMaskFunc``: each other line with probability (N/R − N_band) / (N − N_band)).

    Example:
        >>> m = cartesian_mask(320, 4, seed=1)
        >>> bool(m[160 - 12:160 + 13].all()), abs(int(m.sum()) - 80) <= 12
        (True, True)
    """
    if acceleration < 1:
        raise LumbarLabError(f"acceleration must be ≥ 1, got {acceleration}.")
    fraction = CENTER_FRACTIONS.get(int(acceleration), 0.32 / acceleration) if center_fraction is None else center_fraction
    if not 0 < fraction <= 1:
        raise LumbarLabError(f"center_fraction must be in (0, 1], got {fraction}.")
    band = int(round(columns * fraction))
    mask = np.zeros(columns, bool)
    start = (columns - band + 1) // 2
    mask[start:start + band] = True
    rest = columns - band
    if rest > 0:
        prob = max(columns / acceleration - band, 0.0) / rest
        rng = np.random.default_rng([int(seed), int(acceleration)])
        mask |= (rng.random(columns) < prob) & ~mask
    return mask


def zero_filled(kspace: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) float32 root-sum-of-squares image of (coils, H, W) k-space with the columns outside ``mask`` set to
    zero — the baseline that accelerated-MRI networks are scored against."""
    kspace = np.asarray(kspace)
    if kspace.ndim != 3:
        raise LumbarLabError(f"k-space must be (coils, H, W), got shape {kspace.shape}.")
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != (kspace.shape[-1],):
            raise LumbarLabError(f"the mask has {mask.shape} entries for {kspace.shape[-1]} k-space columns.")
        kspace = kspace * mask[None, None, :]
    return np.sqrt((np.abs(_ifft(kspace)) ** 2).sum(axis=0)).astype(np.float32)


class UndersampledSlices(torch.utils.data.Dataset):
    """Training pairs for accelerated MRI from 2D slices: ``(zero-filled (1, H, W), fully sampled (1, H, W))``,
    each slice seen through ``coils`` coil maps and undersampled by a random Cartesian mask of ``acceleration``
    (a new mask per item, reproducible from ``seed`` and the index: a network must not learn one mask's aliasing;
    with several accelerations, item ``i`` takes ``acceleration[i % len]``). Both images are divided by the
    zero-filled image's 99.5th percentile — what a scanner has before any reconstruction — so inputs are about 0…1
    whatever the scanner's scale. :meth:`mask` gives the mask of item ``i``.

    Example:
        >>> data = UndersampledSlices(np.random.default_rng(0).random((3, 32, 40)), acceleration=4, coils=2)
        >>> x, y = data[1]
        >>> tuple(x.shape), tuple(y.shape), int(data.mask(1).sum()) < 40
        ((1, 32, 40), (1, 32, 40), True)
    """

    def __init__(self, slices: np.ndarray, acceleration: int | tuple[int, ...] = 4, coils: int = 8, seed: int = 0):
        slices = np.asarray(slices, np.float32)
        if slices.ndim != 3 or len(slices) == 0:
            raise LumbarLabError(f"slices must be (N, H, W) with N ≥ 1, got shape {slices.shape}.")
        self.accelerations = tuple(int(a) for a in np.atleast_1d(acceleration))
        self.slices, self.seed = slices, int(seed)
        self.maps = coil_sensitivities(slices.shape[1:], coils=coils, seed=seed)

    def __len__(self) -> int:
        return len(self.slices)

    def mask(self, i: int) -> np.ndarray:
        acceleration = self.accelerations[i % len(self.accelerations)]
        return cartesian_mask(self.slices.shape[2], acceleration, seed=self.seed * 1_000_003 + i)

    def __getitem__(self, i: int):
        target = self.slices[i]
        blurred = zero_filled(to_kspace(target, self.maps), self.mask(i))
        scale = max(float(np.percentile(blurred, 99.5)), 1e-6)
        return (torch.from_numpy(blurred / np.float32(scale))[None],
                torch.from_numpy(np.ascontiguousarray(target / np.float32(scale)))[None])
