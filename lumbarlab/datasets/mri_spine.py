"""Sagittal T2 stacks of varied phantom spines for the MRI spine models (``mri-spine``, ``mri-discs``): what
the survey's MRI papers segment and grade — vertebrae, intervertebral discs and the spinal canal — on thick
sagittal slices as clinical lumbar protocols acquire them (SPIDER: 3.3–4.5 mm slices, van der Graaf et al.,
Sci Data 2024).

A slice-wise (2D) network sees one slab with its two neighbours as three channels (":math:`2.5`D"): on
4 mm slabs a 3D kernel mixes structures 8 mm apart across the body, while the neighbours still tell a
pedicle from a disc's edge.

Example:
    >>> pairs = phantom_mri_spine(1, seed=5, shape=(48, 96, 112), spacing=2.0)
    >>> pairs[0].image.spacing, pairs[0].image.shape
    ((4.0, 2.0, 2.0), (24, 96, 112))
    >>> slab_context(np.arange(3.0)[:, None, None] * np.ones((3, 2, 2)), 0)[:, 0, 0].tolist()   # edge repeated
    [0.0, 0.0, 1.0]
"""

from __future__ import annotations

import numpy as np
import torch

from lumbarlab.datasets.volumes import VolumePair
from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import CANAL_LABEL, DISC_LABEL, DISCS, VERSE_LABEL

__all__ = ["MRI_SPINE_CLASSES", "mri_spine_pathology", "phantom_mri_spine", "slab_context", "to_classes",
           "SagittalSlabDataset", "mri_augment"]

#: Label values of ``mri-spine`` in class order 1, 2, … (0 background): T12, L1–L5, sacrum (VerSe 19–24, 26),
#: the discs T12/L1 … L5/S1 (119–124) and the canal (200) — SPIDER's structures, plus T12 and the sacrum.
MRI_SPINE_CLASSES: tuple[int, ...] = (*VERSE_LABEL.values(), *DISC_LABEL.values(), CANAL_LABEL)


def mri_spine_pathology(seed: int, randomise: bool = True) -> dict:
    """The pathology of training case ``seed`` of the MRI spine models, drawn from the seed: a Pfirrmann grade
    at every disc uniform over I–V (a population's discs are mostly I–II; a grader must see every grade often),
    a posterior herniation of 2–8 mm at each disc with probability 0.2, a narrow canal (6–13 mm AP, stenosis) in
    30 %, a slip of L4 or L5 in 15 % (8–35 %), a fracture in 10 %, a scoliosis in 15 %, and random tissue
    contrasts (``domain_randomise``) in 25 %, so that a model learns the anatomy rather than one scanner's look.
    ``randomise=False`` keeps the phantom's T2 contrast (the rest of the draw unchanged): random tissue contrasts
    are a training device (SynthSeg's, Billot et al. 2023), not an image a scanner makes, so test splits and disc
    grading — Pfirrmann grades *are* T2 signal — use the real contrast.

    Example:
        >>> p = mri_spine_pathology(3)
        >>> sorted(p)[:3], len(p["pfirrmann"]), p == mri_spine_pathology(3)
        (['domain_randomise', 'herniation', 'pfirrmann'], 6, True)
    """
    rng = np.random.default_rng([int(seed), 0x3A1])
    out: dict = {"pfirrmann": {d: int(rng.integers(1, 6)) for d in DISCS},
                 "herniation": {d: float(rng.uniform(2.0, 8.0)) for d in DISCS if rng.random() < 0.2}}
    if rng.random() < 0.30:
        out["stenosis"] = float(rng.uniform(6.0, 13.0))
    if rng.random() < 0.15:
        out["slip"] = {str(rng.choice(["L4", "L5"])): float(rng.uniform(8.0, 35.0))}
    if rng.random() < 0.10:
        out["fracture"] = {str(rng.choice(["T12", "L1", "L2"])): float(rng.uniform(15.0, 45.0))}
    if rng.random() < 0.15:
        out["cobb"] = float(rng.uniform(5.0, 20.0))
    out["domain_randomise"] = bool(rng.random() < 0.25) and randomise
    return out


def phantom_mri_spine(n: int, seed: int = 0, shape: tuple[int, int, int] = (96, 176, 192), spacing: float = 1.25,
                      thickness: float = 4.0, weighting: str = "T2", randomise: bool = True) -> list[VolumePair]:
    """``n`` varied phantom spines (:func:`mri_spine_pathology`) as thick sagittal stacks (slabs of ``thickness``
    mm, rounded to whole voxels of ``spacing``; :meth:`lumbarlab.phantom.Case.mri_sagittal`) with the label map
    of each slab's central plane. The default field is 120 × 220 × 240 mm (x × y × z): T12 to the sacrum, the
    back's skin to in front of the vertebral bodies. ``randomise``: as :func:`mri_spine_pathology`."""
    from lumbarlab.phantom import make_case

    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    out = []
    for k in range(n):
        case = make_case(seed + k, shape=shape, spacing=spacing, modalities=(weighting.lower(),),
                         **mri_spine_pathology(seed + k, randomise))
        image, labels = case.mri_sagittal(weighting, thickness)
        out.append(VolumePair(image, labels, f"phantom{seed + k:04d}"))
    return out


def slab_context(stack: np.ndarray, i: int, context: int = 1) -> np.ndarray:
    """Slab ``i`` of a sagittal ``stack`` (slabs along axis 0) with ``context`` neighbours on each side as
    channels, the first and last slab repeated at the stack's ends: (2·context + 1, Y, Z)."""
    idx = np.clip(np.arange(i - context, i + context + 1), 0, stack.shape[0] - 1)
    return np.asarray(stack[idx], np.float32)


def to_classes(labels: np.ndarray, classes: tuple[int, ...] = MRI_SPINE_CLASSES) -> np.ndarray:
    """Label values → class indices 1 … len(classes) (0: anything else).

    Example:
        >>> to_classes(np.array([0, 19, 124, 200, 7])).tolist()
        [0, 1, 13, 14, 0]
    """
    lut = np.zeros(max(max(classes), int(np.max(labels, initial=0))) + 1, np.int64)
    lut[list(classes)] = np.arange(1, len(classes) + 1)
    return lut[np.asarray(labels, np.int64)]


def mri_augment(seed: int = 0, patch: tuple[int, int] | None = None):
    """Random changes a sagittal slab can have on a real scanner, for training (MONAI 2D transforms, one stream
    seeded by ``seed``): rotation up to 12° and scale ±12 % in the plane (patient position and size), a smooth
    bias field (coil shading), gamma 0.7–1.5 and gain ±15 % (sequence and scanner), Gaussian noise and blur, and
    a random crop of ``patch`` pixels (a smaller field of view). No mirror: a sagittal slice is never shown with
    the back in front. Works on normalised images ``(C, Y, Z)`` and class maps ``(Y, Z)``.

    Example:
        >>> aug = mri_augment(0, patch=(32, 40))
        >>> image, labels = aug(torch.rand(3, 48, 48), torch.randint(0, 3, (48, 48)))
        >>> tuple(image.shape), tuple(labels.shape)
        ((3, 32, 40), (32, 40))
    """
    import math

    from monai.transforms import (
        Compose,
        RandAdjustContrastd,
        RandAffined,
        RandBiasFieldd,
        RandGaussianNoised,
        RandGaussianSmoothd,
        RandScaleIntensityd,
        RandSpatialCropd,
        SpatialPadd,
    )

    steps = [
        RandAffined(["image", "label"], prob=0.7, rotate_range=(math.radians(12.0),), scale_range=(0.12, 0.12),
                    translate_range=(8, 8), mode=("bilinear", "nearest"), padding_mode="zeros"),
        RandBiasFieldd("image", degree=3, coeff_range=(0.0, 0.15), prob=0.4),
        RandAdjustContrastd("image", gamma=(0.7, 1.5), prob=0.4),
        RandScaleIntensityd("image", factors=0.15, prob=0.5),
        RandGaussianNoised("image", prob=0.4, std=0.15),
        RandGaussianSmoothd("image", sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0), prob=0.3),
    ]
    if patch is not None:
        steps += [SpatialPadd(["image", "label"], spatial_size=patch),
                  RandSpatialCropd(["image", "label"], roi_size=patch, random_size=False)]
    pipeline = Compose(steps)
    pipeline.set_random_state(seed=seed)

    def augment(image: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # RandAdjustContrast's gamma needs non-negative values: shift, apply, shift back
        low = float(image.min())
        out = pipeline({"image": image - low, "label": labels[None].float()})
        return (torch.as_tensor(out["image"], dtype=torch.float32) + low,
                torch.as_tensor(np.rint(np.asarray(out["label"][0])), dtype=torch.int64))

    return augment


class SagittalSlabDataset(torch.utils.data.Dataset):
    """One item per slab of the stacks that holds a labelled structure (and every fourth slab without one, so a
    network also learns the empty lateral slabs): ``(image (2·context+1, Y, Z) float32, classes (Y, Z) int64)``.
    Each stack is normalised once (:func:`lumbarlab.datasets.normalize_mri`).

    Args:
        pairs: sagittal stacks (slabs along axis 0) with their label maps.
        classes: label values that become classes 1, 2, …
        augment: ``(image, classes) → (image, classes)``, e.g. :func:`mri_augment`.
    """

    def __init__(self, pairs: list[VolumePair], classes: tuple[int, ...] = MRI_SPINE_CLASSES, context: int = 1,
                 augment=None):
        from lumbarlab.datasets.mri import normalize_mri

        if not pairs:
            raise LumbarLabError("SagittalSlabDataset needs at least one stack.")
        self.images = [normalize_mri(p.image.array) for p in pairs]
        self.targets = [to_classes(p.labels.array, classes) for p in pairs]
        self.context, self.augment = int(context), augment
        self.index: list[tuple[int, int]] = []
        for k, target in enumerate(self.targets):
            has = target.reshape(target.shape[0], -1).any(axis=1)
            empty = np.flatnonzero(~has)
            self.index += [(k, int(i)) for i in np.flatnonzero(has)] + [(k, int(i)) for i in empty[::4]]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        k, s = self.index[i]
        image = torch.from_numpy(slab_context(self.images[k], s, self.context))
        target = torch.from_numpy(self.targets[k][s])
        return self.augment(image, target) if self.augment is not None else (image, target)
