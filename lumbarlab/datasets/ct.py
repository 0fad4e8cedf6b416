"""CT datasets: phantom CT volumes and the intensity window CT networks take.

CT values are Hounsfield units, comparable between scanners (unlike MRI's): a fixed window maps them to
[0, 1] for a network, clipping air below and metal above.

Example:
    >>> normalize_ct(np.array([-1000.0, 500.0, 3000.0])).tolist()
    [0.0, 0.5, 1.0]
"""

from __future__ import annotations

import numpy as np

from lumbarlab.datasets.volumes import VolumePair, phantom_volumes

__all__ = ["phantom_ct", "normalize_ct", "CT_WINDOW"]

#: HU window (low, high) for networks: air … dense cortical bone.
CT_WINDOW = (-1000.0, 2000.0)


def normalize_ct(image: np.ndarray, window: tuple[float, float] = CT_WINDOW) -> np.ndarray:
    """HU → [0, 1] through ``window`` (MONAI's ``ScaleIntensityRange`` with clipping)."""
    from monai.transforms import ScaleIntensityRange

    lo, hi = window
    scale = ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)
    return np.asarray(scale(np.array(image, dtype=np.float32)), dtype=np.float32)  # a copy: the input is kept


def phantom_ct(n: int, seed: int = 0, shape: tuple[int, int, int] = (96, 96, 120), spacing=1.5,
               **pathology) -> list[VolumePair]:
    """``n`` phantom CTs (HU) with their label maps: :func:`lumbarlab.datasets.volumes.phantom_volumes` for CT."""
    return phantom_volumes(n, seed, "ct", shape, spacing, **pathology)
