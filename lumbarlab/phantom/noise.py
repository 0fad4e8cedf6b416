"""Fast standard-normal noise fields for the renderers.

Drawing 5 million Gaussian numbers costs ~45 ms on a laptop core, and an MRI needs two
such fields (Rician noise), so a full case would spend most of its time in the random
number generator. Instead, each process draws one bank of 2**24 standard normals (from a
fixed seed, once, ~0.15 s) and a case reads contiguous windows of it at offsets chosen by
the case's own seeded generator. Each window is white Gaussian noise; two cases see
windows at different offsets, which for imaging purposes are independent realisations.
Set ``exact=True`` to draw fresh values instead (slower, bit-identical across bank sizes).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["standard_normal"]

_BANK_SIZE = 1 << 24


@functools.lru_cache(maxsize=1)
def _bank() -> np.ndarray:
    return np.random.default_rng(20241126).standard_normal(_BANK_SIZE, dtype=np.float32)


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...], exact: bool = False) -> np.ndarray:
    """A float32 array of N(0, 1) noise of ``shape``, reproducible from ``rng``'s state.

    Returns a fresh array (safe to modify in place).
    """
    n = int(np.prod(shape))
    if exact or n > _BANK_SIZE // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    bank = _bank()
    start = int(rng.integers(0, _BANK_SIZE - n))
    out = bank[start : start + n].copy()
    if rng.integers(0, 2):  # reversing doubles the number of distinct windows
        out = out[::-1].copy()
    return out.reshape(shape)
