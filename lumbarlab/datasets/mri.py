"""MRI datasets: thick sagittal stacks as clinical lumbar protocols acquire them (SPIDER-like), from the
phantom; the image series of converted MRI studies (Lumbar Spine MRI, RSNA 2024) with their gradings; and
the intensity normalisation MRI needs (its values have no unit, unlike CT's HU).

Example:
    >>> stacks = phantom_sagittal_stacks(1, seed=0, weighting="T2", shape=(64, 64, 80), spacing=2.0)
    >>> stacks[0].image.spacing[0], stacks[0].image.shape == stacks[0].labels.shape
    (4.0, True)
    >>> float(normalize_mri(np.array([0.0, 2.0, 4.0])).mean())
    0.0
"""

from __future__ import annotations

import numpy as np
import torch

from lumbarlab.datasets.volumes import VolumePair
from lumbarlab.errors import LumbarLabError

__all__ = ["phantom_sagittal_stacks", "normalize_mri", "FetchedSeries"]


def phantom_sagittal_stacks(n: int, seed: int = 0, weighting: str = "T2", thickness: float = 4.0,
                            shape: tuple[int, int, int] = (128, 128, 160), spacing: float = 1.25,
                            **pathology) -> list[VolumePair]:
    """``n`` phantom spines as thick sagittal MRI stacks: ``weighting`` "T1" or "T2", slabs of ``thickness`` mm
    across the body (:meth:`lumbarlab.phantom.Case.mri_sagittal`), labels of each slab's central plane."""
    from lumbarlab.phantom import make_case

    if weighting.upper() not in ("T1", "T2"):
        raise LumbarLabError(f"weighting must be 'T1' or 'T2', got {weighting!r}.")
    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    out = []
    for k in range(n):
        case = make_case(seed + k, shape=shape, spacing=spacing, modalities=(weighting.lower(),), **pathology)
        image, labels = case.mri_sagittal(weighting, thickness)
        out.append(VolumePair(image, labels, f"phantom{seed + k:04d}"))
    return out


def normalize_mri(image: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance over the voxels above 0 (the body; MONAI's ``NormalizeIntensity(nonzero=True)``
    does the same): MRI signal has no unit, and scanners and coils scale it differently."""
    from monai.transforms import NormalizeIntensity

    image = np.array(image, dtype=np.float32)  # a copy: MONAI normalises numpy arrays in place
    return np.asarray(NormalizeIntensity(nonzero=True)(image), dtype=np.float32)


class FetchedSeries(torch.utils.data.Dataset):
    """The image series of a converted MRI study dataset (Lumbar Spine MRI, RSNA 2024): one item per stack
    that matches ``plane`` ("sagittal", "axial", "coronal"), ``sequence`` ("T1", "T2", …) and ``description``
    (a regular expression, case-insensitive); None keeps all.

    Items: ``(image (1, X, Y, Z) float32 modality values, target int64)`` where the target holds the case's
    per-level severities (RSNA: 0 normal/mild, 1 moderate, 2 severe, −1 not graded) in the order of
    :attr:`target_names`, and is empty for datasets without gradings (the Lumbar Spine MRI notes are free text:
    :meth:`info` gives them). Volumes are reoriented to RAS+ when ``canonical``.
    """

    def __init__(self, root, plane: str | None = None, sequence: str | None = None, description: str | None = None,
                 canonical: bool = True):
        import re

        from lumbarlab.fetch.layout import read_index

        self.index = read_index(root)
        self.root, self.name, self.canonical = self.index.root, self.index.dataset, canonical
        names: set[str] = set()
        self.items = []
        for case in self.index.cases:
            names.update(case.severity)
            for entry in case.series:
                if plane and entry.plane != plane.lower():
                    continue
                if sequence and entry.sequence.upper() != sequence.upper():
                    continue
                if description and not re.search(description, entry.description, re.I):
                    continue
                self.items.append((case, entry))
        if not self.items:
            raise LumbarLabError(f"{root}: no series with plane={plane!r}, sequence={sequence!r}, "
                                 f"description={description!r}; index.json lists the series of each case.")
        self.target_names: list[str] = sorted(names)

    def __len__(self) -> int:
        return len(self.items)

    def info(self, i: int) -> dict:
        """The case (id, notes or severities) and series (description, plane, sequence, stack) of item ``i``."""
        case, entry = self.items[i]
        return {**{k: v for k, v in case.to_dict().items() if k != "series"}, **entry.to_dict()}

    def volume(self, i: int):
        from lumbarlab.io import read_image

        return read_image(self.index.path(self.items[i][1].image), canonical=self.canonical)

    def __getitem__(self, i: int):
        case = self.items[i][0]
        grades = case.severity
        target = [grades.get(n) if grades.get(n) is not None else -1 for n in self.target_names]
        return (torch.from_numpy(np.asarray(self.volume(i).array, dtype=np.float32))[None],
                torch.tensor(target, dtype=torch.int64))


