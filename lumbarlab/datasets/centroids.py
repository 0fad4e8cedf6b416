"""Vertebra centroids as heatmaps: the targets of a 3D localisation network, for any modality.

Each vertebra is one channel; its target is a Gaussian of ``sigma`` voxels around the vertebra's centre of
mass, 1 at the voxel nearest to it (CenterNet's targets: Zhou et al., "Objects as points", 2019). A vertebra
outside the field of view leaves its channel at 0 everywhere, so one network learns where a vertebra is and
whether it is there at all — what a scan holding only a few vertebrae needs.

Localisation works on a coarse grid (4 mm: a whole abdomen in 80 × 60 × 70 voxels), where a vertebra is still
eight voxels tall: :func:`coarsen` brings a finer volume there the way ``lumbarlab segment`` resamples a scan
(a Gaussian of σ = 0.4 × the factor, then every ``factor``-th voxel).

Example:
    >>> import numpy as np
    >>> from lumbarlab.volume import Volume
    >>> labels = Volume(np.zeros((20, 20, 40), np.uint8), (2.0, 2.0, 2.0))
    >>> labels.array[8:12, 8:12, 4:10] = 24; labels.array[8:12, 8:12, 20:26] = 22
    >>> {v: c.tolist() for v, c in vertebra_centroids(labels, (22, 23, 24)).items()}
    {22: [19.0, 19.0, 45.0], 24: [19.0, 19.0, 13.0]}
    >>> maps = centroid_heatmaps(labels, {22: [19.0, 19.0, 45.0]}, (22, 24))
    >>> maps.shape, float(maps[0].max()), float(maps[1].max())
    ((2, 20, 20, 40), 1.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from lumbarlab.errors import LumbarLabError
from lumbarlab.volume import Volume

__all__ = ["vertebra_centroids", "centroid_heatmaps", "coarsen", "CentroidCase", "HeatmapPatchDataset"]


def vertebra_centroids(labels: Volume, values: Sequence[int]) -> dict[int, np.ndarray]:
    """Centre of mass (world mm) of each label value of ``values`` present in ``labels``."""
    array = np.asarray(labels.array)
    out = {}
    for v in values:
        mask = array == v
        if mask.any():
            out[int(v)] = labels.index_to_world(np.array(ndimage.center_of_mass(mask)))
    return out


def centroid_heatmaps(grid: Volume, centroids: Mapping[int, Sequence[float]], values: Sequence[int],
                      sigma: float = 1.5) -> np.ndarray:
    """(len(values), X, Y, Z) float32 targets on ``grid``: per value, a Gaussian of ``sigma`` voxels around its
    centroid (world mm) with 1 at the nearest voxel, or zeros when the centroid is not given.
    """
    shape = grid.shape
    out = np.zeros((len(values), *shape), np.float32)
    axes = [np.arange(n, dtype=np.float32) for n in shape]
    for k, v in enumerate(values):
        if v not in centroids:
            continue
        ijk = grid.world_to_index(np.asarray(centroids[v], float))
        peak = np.rint(ijk)
        # separable: a product of three 1D profiles, each 1 at the nearest voxel
        profiles = [np.exp(-((a - p) ** 2) / (2 * sigma**2)) for a, p in zip(axes, peak, strict=True)]
        out[k] = profiles[0][:, None, None] * profiles[1][None, :, None] * profiles[2][None, None, :]
    return out


def coarsen(volume: Volume, factor: int) -> Volume:
    """``volume`` on a grid ``factor`` times coarser: Gaussian anti-aliasing (σ = 0.4 × factor voxels, as
    :func:`lumbarlab.segment.to_model_grid`), then every ``factor``-th voxel from the first; same origin.

    Example:
        >>> coarsen(Volume(np.ones((10, 8, 6), np.float32), (2.0, 2.0, 2.0)), 2).shape
        (5, 4, 3)
    """
    if factor < 1:
        raise LumbarLabError(f"factor must be a whole number ≥ 1, got {factor}.")
    array = np.asarray(volume.array, np.float32)
    if factor > 1:
        array = ndimage.gaussian_filter(array, 0.4 * factor, mode="nearest")[::factor, ::factor, ::factor]
    return Volume(np.ascontiguousarray(array), tuple(s * factor for s in volume.spacing), volume.origin,
                  volume.direction)


@dataclass
class CentroidCase:
    """One scan for localisation: the image on the network's grid (RAS+) and its vertebra centroids (world
    mm, label value → (x, y, z))."""

    image: Volume
    centroids: dict[int, np.ndarray]
    case_id: str = ""


class HeatmapPatchDataset(torch.utils.data.Dataset):
    """Random patches of :class:`CentroidCase` s with their heatmap targets: ``(image (1, X, Y, Z), heatmaps
    (C, X, Y, Z))``, for training a localisation network on a CPU.

    Nine patches in ten hold a random vertebra's centre anywhere but the outer 2 voxels (so the spine sits
    anywhere in them); the tenth lies anywhere in the volume (where sliding windows must find nothing). Patches
    are padded with air where they pass the volume's edge. With ``augment``: a left-right mirror, intensity gain/offset/gamma and noise, and in 30 % of patches
    the end of the scan (everything beyond a random plane is air and its heatmaps 0: a vertebra the scan
    does not hold is not there). Each call draws afresh from one stream seeded by ``seed``.

    Args:
        cases: the scans; ``normalize``: image values → network input (e.g. ``normalize_ct``).
        values: label values in channel order; patch: voxels; per_volume: patches per case per epoch.
    """

    def __init__(self, cases: Sequence[CentroidCase], values: Sequence[int], patch: tuple[int, int, int],
                 normalize=None, per_volume: int = 4, sigma: float = 1.5, seed: int = 0, augment: bool = False):
        if not cases:
            raise LumbarLabError("a HeatmapPatchDataset needs at least one case.")
        self.cases, self.values, self.patch = list(cases), tuple(values), tuple(int(p) for p in patch)
        self.normalize, self.per_volume, self.sigma = normalize, int(per_volume), sigma
        self.augment = augment
        self._rng = np.random.default_rng([int(seed), 0xCE47])
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.cases) * self.per_volume

    def _arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._cache:
            case = self.cases[k]
            image = np.asarray(case.image.array, np.float32)
            image = np.asarray(self.normalize(image), np.float32) if self.normalize is not None else image
            self._cache[k] = image, centroid_heatmaps(case.image, case.centroids, self.values, self.sigma)
        return self._cache[k]

    def __getitem__(self, i: int):
        k = i // self.per_volume
        image, maps = self._arrays(k)
        case, rng = self.cases[k], self._rng
        present = [v for v in self.values if v in case.centroids]
        half = np.array(self.patch) // 2
        if present and rng.random() < 0.9:
            centre = np.rint(case.image.world_to_index(case.centroids[present[rng.integers(len(present))]]))
            reach = np.maximum(half - 2, 0)
            centre = centre + rng.integers(-reach, reach + 1)
        else:
            centre = rng.integers(0, np.array(image.shape))
        start = [int(c) - p // 2 for c, p in zip(centre, self.patch, strict=True)]
        img = np.zeros(self.patch, np.float32)  # air: 0 after normalize_ct
        hm = np.zeros((len(self.values), *self.patch), np.float32)
        src = tuple(slice(max(s, 0), min(s + p, n)) for s, p, n in zip(start, self.patch, image.shape, strict=True))
        dst = tuple(slice(a.start - s, a.stop - s) for a, s in zip(src, start, strict=True))
        img[dst], hm[(slice(None), *dst)] = image[src], maps[(slice(None), *src)]
        if self.augment:
            img, hm = self._augment(img, hm, rng)
        return torch.from_numpy(np.ascontiguousarray(img))[None], torch.from_numpy(np.ascontiguousarray(hm))

    @staticmethod
    def _augment(img: np.ndarray, hm: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < 0.5:  # left-right: the heatmaps follow the image
            img, hm = img[::-1], hm[:, ::-1]
        img = img * np.float32(rng.uniform(0.9, 1.1)) + np.float32(rng.uniform(-0.03, 0.03))
        if rng.random() < 0.3:
            img = np.clip(img, 0.0, None) ** np.float32(rng.uniform(0.8, 1.25))
        if rng.random() < 0.3:
            img = img + rng.normal(0.0, rng.uniform(0.0, 0.02), img.shape).astype(np.float32)
        if rng.random() < 0.3:  # the end of the scan inside the patch
            axis = int(rng.choice([0, 1, 2], p=[0.15, 0.15, 0.7]))
            n = img.shape[axis]
            cut = int(rng.integers(n // 8, n - n // 8))
            index = [slice(None)] * 3
            index[axis] = slice(cut, None) if rng.random() < 0.5 else slice(0, cut)
            img, hm = img.copy(), hm.copy()
            had_peak = hm.reshape(len(hm), -1).max(axis=1) >= 0.99
            img[tuple(index)] = 0.0
            hm[(slice(None), *index)] = 0.0
            # a vertebra whose centre the scan no longer holds is not "there", even if its edge is
            lost = had_peak & (hm.reshape(len(hm), -1).max(axis=1) < 0.99)
            hm[lost] = 0.0
        return img.astype(np.float32), hm
