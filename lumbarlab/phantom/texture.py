"""Trabecular bone texture: zero-mean, unit-SD fields with vertical trabeculae, in 3D and in projection.

Cancellous bone of a vertebral body is a lattice of mostly vertical plates and rods tied by thinner
horizontal struts (Mosekilde, Bone 1988); on CT at ~1 mm it reads as a mottled pattern elongated
along the body axis. The field here is white Gaussian noise low-passed anisotropically (σ 0.5 mm across,
1.8 mm along z), sharpened by a tanh so that it has plates rather than fog, then standardised. The
renderers scale it: :data:`CT_TEXTURE_HU` for CT, a few per cent of marrow signal for MRI (trabeculae are
dark on MR), and its projection modulates the trabecular path in the fast radiographs.

Example:
    >>> import numpy as np
    >>> f = texture_3d(np.random.default_rng(0), (40, 40, 60), (1.0, 1.0, 1.0))
    >>> round(float(f.mean()), 6), round(float(f.std()), 3)
    (0.0, 1.0)
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from lumbarlab.phantom.noise import standard_normal

__all__ = ["texture_3d", "texture_2d", "texture_rng", "CT_TEXTURE_HU"]

#: Standard deviation (HU) of the trabecular texture before blur and noise. Trabecular ROIs of clinical
#: CT at 1 mm show SDs of a few tens of HU beyond quantum noise; with the scanner blur this gives an SD of
#: 30–45 HU inside the body (tests/test_phantom_realism.py states the range).
CT_TEXTURE_HU = 55.0

_SIGMA_MM = (0.5, 0.5, 1.8)


def texture_rng(seed: int, texture_seed: int) -> np.random.Generator:
    """The generator of a case's texture: the same in its volumes and its fast radiographs.

    Example:
        >>> int(texture_rng(3, 7).integers(100)) == int(texture_rng(3, 7).integers(100))
        True
    """
    return np.random.default_rng([int(seed), 0x7E7, int(texture_seed)])


def _standardise(field: np.ndarray) -> np.ndarray:
    field = np.tanh(1.5 * field / max(float(field.std()), 1e-6))
    field -= field.mean()
    field /= max(float(field.std()), 1e-6)
    return field.astype(np.float32)


def texture_3d(rng: np.random.Generator, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """A texture field of ``shape`` voxels of ``spacing`` mm (axis 2 is the body axis, z)."""
    noise = standard_normal(rng, tuple(int(n) for n in shape))
    sigma = [s / max(sp, 1e-3) for s, sp in zip(_SIGMA_MM, spacing, strict=True)]
    return _standardise(ndimage.gaussian_filter(noise, sigma=sigma, truncate=2.5, output=np.float32))


def texture_2d(rng: np.random.Generator, shape: tuple[int, int], pixel_mm: float) -> np.ndarray:
    """The texture as a lateral radiograph sees it, ``shape`` = (rows along z, columns along y): projection
    averages the lattice, leaving vertical streaks (σ 0.6 mm across, 2.5 mm along z).

    A window of a per-process bank (one 768² field per pixel size, made once), at an offset and flip drawn
    from ``rng`` — like the noise bank of :mod:`lumbarlab.phantom.noise`, it costs a copy per image.
    """
    rows, cols = (int(n) for n in shape)
    bank = _bank_2d(round(float(pixel_mm), 3))
    if rows > bank.shape[0] or cols > bank.shape[1]:
        noise = standard_normal(rng, (rows, cols))
        return _standardise(ndimage.gaussian_filter(noise, sigma=(2.5 / pixel_mm, 0.6 / pixel_mm), truncate=2.5,
                                                    output=np.float32))
    r0 = int(rng.integers(0, bank.shape[0] - rows + 1))
    c0 = int(rng.integers(0, bank.shape[1] - cols + 1))
    out = bank[r0:r0 + rows, c0:c0 + cols]
    if rng.integers(0, 2):
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


@functools.lru_cache(maxsize=4)
def _bank_2d(pixel_mm: float) -> np.ndarray:
    noise = np.random.default_rng(20261205).standard_normal((768, 768), dtype=np.float32)
    return _standardise(ndimage.gaussian_filter(noise, sigma=(2.5 / pixel_mm, 0.6 / pixel_mm), truncate=2.5,
                                                output=np.float32))
