"""Low-dose CT pairs for denoising: the same phantom patient scanned at a reduced dose and without any noise.

On a real scanner the "clean" target of a denoiser is itself a noisy full-dose scan (the Mayo low-dose
challenge pairs quarter-dose with full-dose scans); the phantom can give the noise-free image, so a
denoiser is scored against the truth. Quantum noise grows as 1/√dose (Bushberg et al., ch. 10): quarter
dose doubles the noise SD. One patient's noise field is one random draw scaled by that factor, so the doses
of a case differ in noise level only, not in pattern.

Slices are axial (the reconstruction plane, where the kernel gives CT noise its texture), sampled every
``spacing[2]`` mm along the spine. A denoiser sees HU / :data:`DENOISE_SCALE_HU`, linear and unclipped: the
noise it must find is 10–40 HU, which in a 3000 HU display window (:func:`~lumbarlab.datasets.ct.normalize_ct`)
would be under 1 % of the range, and clipping at −1000 HU would make the noise in air one-sided.

Example:
    >>> pairs = phantom_ct_dose(1, seed=5, dose=0.25, shape=(64, 48, 8), spacing=(4.0, 4.0, 10.0))
    >>> pairs[0].noisy.shape, pairs[0].dose
    ((64, 48, 8), 0.25)
    >>> noisy, clean = DoseSliceDataset(pairs, patch=(32, 32), per_slice=2, seed=0)[0]
    >>> tuple(noisy.shape), tuple(clean.shape)
    ((1, 32, 32), (1, 32, 32))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume

__all__ = ["DosePair", "phantom_ct_dose", "DoseSliceDataset", "axial_slices", "DENOISE_SCALE_HU", "to_denoiser",
           "from_denoiser"]

#: HU per unit of a denoiser's input and output (air −2, water 0, cortical bone ≈ 3; quarter-dose noise ≈ 0.05).
DENOISE_SCALE_HU = 500.0


def to_denoiser(hu: np.ndarray) -> np.ndarray:
    """HU → a denoiser's values (HU / :data:`DENOISE_SCALE_HU`, float32).

    Example:
        >>> to_denoiser(np.array([-1000.0, 0.0, 250.0])).tolist()
        [-2.0, 0.0, 0.5]
    """
    return (np.asarray(hu, dtype=np.float32) / np.float32(DENOISE_SCALE_HU)).astype(np.float32)


def from_denoiser(values: np.ndarray) -> np.ndarray:
    """A denoiser's values → HU (the inverse of :func:`to_denoiser`)."""
    return np.asarray(values, dtype=np.float32) * np.float32(DENOISE_SCALE_HU)


@dataclass
class DosePair:
    """One phantom CT at ``dose`` (relative to the reference, 1.0) with its noise-free image and label map,
    all on one RAS+ grid (HU; VerSe label values)."""

    noisy: Volume
    clean: Volume
    labels: Volume
    dose: float
    case_id: str = ""


def phantom_ct_dose(n: int, seed: int = 0, dose: float | None = None, shape: tuple[int, int, int] = (240, 192, 24),
                    spacing: tuple[float, float, float] = (1.25, 1.25, 6.0)) -> list[DosePair]:
    """``n`` phantom CTs (anatomy seeds ``seed …``) each with its noise-free image.

    Args:
        dose: relative dose of every case (0.25 = quarter dose); None keeps each case's own dose from
            :func:`lumbarlab.datasets.ct.ct_spine_pathology` (¼, ½ or 1), the mix a training set should see.
        shape, spacing: the grid (voxels; mm). The default: a 300 × 240 mm body-wide axial field at 1.25 mm,
            24 slices 6 mm apart (144 mm: four to five vertebrae).
    """
    from lumbarlab.datasets.ct import ct_spine_pathology
    from lumbarlab.phantom import make_case

    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    if dose is not None and not 0 < dose <= 4:
        raise LumbarLabError(f"dose is relative to the reference scan: choose it in (0, 4], got {dose}.")
    out = []
    for k in range(n):
        pathology = ct_spine_pathology(seed + k)
        if dose is not None:
            pathology["ct_dose"] = float(dose)
        case = make_case(seed + k, shape=shape, spacing=spacing, modalities=("ct",), **pathology)
        out.append(DosePair(case.ct, case.ct_clean, case.labels, float(pathology["ct_dose"]),
                            f"phantom{seed + k:04d}"))
    return out


def axial_slices(volume: Volume) -> np.ndarray:
    """(Z, X, Y) float32 axial slices of an RAS+ volume (the plane CT is reconstructed in)."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(volume.array, dtype=np.float32), 2, 0))


class DoseSliceDataset(torch.utils.data.Dataset):
    """Random square crops of the axial slices of :class:`DosePair` s: ``(noisy (1, h, w), clean (1, h, w))`` in
    :func:`to_denoiser` values, ``per_slice`` crops per slice, each reproducible from
    ``seed`` and its index; with ``augment``, a random 90° rotation and mirror of both (CT noise is as
    likely in every in-plane direction). ``patch=None`` gives whole slices.
    """

    def __init__(self, pairs: Sequence[DosePair], patch: tuple[int, int] | None = (64, 64), per_slice: int = 2,
                 seed: int = 0, augment: bool = False):
        if not pairs:
            raise LumbarLabError("a DoseSliceDataset needs at least one DosePair.")
        self.noisy = np.concatenate([to_denoiser(axial_slices(p.noisy)) for p in pairs])
        self.clean = np.concatenate([to_denoiser(axial_slices(p.clean)) for p in pairs])
        h, w = self.noisy.shape[1:]
        if patch is not None and (patch[0] > h or patch[1] > w):
            raise LumbarLabError(f"patch {tuple(patch)} is larger than the slices ({h}, {w}).")
        self.patch, self.per_slice, self.seed, self.augment = patch, int(per_slice), int(seed), augment

    def __len__(self) -> int:
        return len(self.noisy) * (self.per_slice if self.patch is not None else 1)

    def __getitem__(self, i: int):
        k = i // self.per_slice if self.patch is not None else i
        noisy, clean = self.noisy[k], self.clean[k]
        rng = np.random.default_rng([self.seed, i])
        if self.patch is not None:
            ph, pw = self.patch
            y = int(rng.integers(0, noisy.shape[0] - ph + 1))
            x = int(rng.integers(0, noisy.shape[1] - pw + 1))
            noisy, clean = noisy[y:y + ph, x:x + pw], clean[y:y + ph, x:x + pw]
        if self.augment:
            # a quarter turn only where it keeps the shape (square crops), or a batch could not be stacked
            turns = int(rng.integers(4)) if noisy.shape[0] == noisy.shape[1] else 2 * int(rng.integers(2))
            flip = bool(rng.integers(2))
            noisy, clean = np.rot90(noisy, turns), np.rot90(clean, turns)
            if flip:
                noisy, clean = noisy[:, ::-1], clean[:, ::-1]
        return (torch.from_numpy(np.ascontiguousarray(noisy))[None],
                torch.from_numpy(np.ascontiguousarray(clean))[None])
