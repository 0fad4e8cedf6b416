"""Per-disc crops of sagittal T2 stacks with their grades, for the disc grader (``mri-discs``) and for
``lumbarlab grade``: Pfirrmann I–V (Pfirrmann et al., Spine 2001), a posterior herniation, and central canal
stenosis in RSNA 2024's three grades (normal/mild, moderate, severe).

A crop is taken in the disc's own frame — round the disc and the canal behind it, turned so that the disc's
mid-plane is horizontal —
from the slab where the disc is widest (the mid-sagittal slab) and its two neighbours, as three channels: a
grader then sees every disc, from the flat L1/L2 to the steep L5/S1, the same way.

Stenosis is graded from the canal's AP diameter at the disc (measured behind the disc on the true label map, so
a herniation counts by how far it actually narrows the sac) with Verbiest's cut-offs: below 10 mm absolute stenosis (severe), 10–13 mm relative
stenosis (moderate), from 13 mm normal or mild (Verbiest, J Bone Joint Surg Br 1954; the cut-offs as reviewed by
Steurer et al., BMC Musculoskelet Disord 2011).

Example:
    >>> stenosis_grade(14.0), stenosis_grade(11.5), stenosis_grade(8.0)
    (0, 1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import DISC_LABEL, DISCS
from lumbarlab.measure.sagittal import disc_frame

__all__ = ["HEADS", "STENOSIS_GRADES", "HERNIATION_MM", "stenosis_grade", "disc_frame", "disc_crop", "DiscStack",
           "phantom_disc_stacks", "DiscCropDataset", "disc_targets"]

#: The grader's heads: name → number of classes (one block of logits each, in this order).
HEADS: dict[str, int] = {"pfirrmann": 5, "herniation": 2, "stenosis": 3}
#: RSNA 2024's severity names, in grade order.
STENOSIS_GRADES: tuple[str, ...] = ("normal/mild", "moderate", "severe")
#: A posterior protrusion of at least this many mm counts as a herniation (the phantom's training cases have none
#: or 2–8 mm, so no case lies near the cut).
HERNIATION_MM = 2.0
#: Crop side in pixels and pixel size in mm: 64 × 1.25 = 80 mm, a disc, half of each neighbouring body and the
#: whole canal behind it.
CROP, CROP_MM = 64, 1.25
#: The crop's centre lies this far behind the disc's centre (mm, along the disc): a lumbar disc reaches ~20 mm in
#: front of its centre and the canal's back wall ~40 mm behind it, so a centred 80 mm crop would cut the canal.
CROP_BACK_MM = 8.0


def stenosis_grade(canal_ap_mm: float) -> int:
    """0 normal/mild (≥ 13 mm), 1 moderate (10–13 mm), 2 severe (< 10 mm): Verbiest's relative and absolute
    stenosis of the canal's AP diameter."""
    return 2 if canal_ap_mm < 10.0 else 1 if canal_ap_mm < 13.0 else 0


def disc_crop(stack: np.ndarray, slab: int, centre: np.ndarray, along: np.ndarray, size: int = CROP,
              scale: float = 1.0, back_mm: float = CROP_BACK_MM, pixel_mm: float = CROP_MM) -> np.ndarray:
    """A ``size`` × ``size`` crop of ``stack`` (X slabs, Y, Z of ``pixel_mm``; normalised) in the disc's frame, its
    centre ``back_mm`` behind the disc's: rows run from the feet to the head across the disc, columns from
    posterior to anterior along it, ``scale`` stack pixels per crop pixel; channels are the slabs
    ``slab − 1 … slab + 1`` (the ends repeated). Returns (3, size, size)."""
    from scipy import ndimage

    up = np.array([-along[1], along[0]])
    if up[1] < 0:  # the normal points to the head (+z)
        up = -up
    centre = np.asarray(centre, float) - np.asarray(along, float) * back_mm / pixel_mm
    offsets = (np.arange(size) - (size - 1) / 2.0) * scale
    rows, cols = np.meshgrid(offsets, offsets, indexing="ij")
    y = centre[0] + cols * along[0] + rows * up[0]
    z = centre[1] + cols * along[1] + rows * up[1]
    out = []
    for s in np.clip([slab - 1, slab, slab + 1], 0, stack.shape[0] - 1):
        out.append(ndimage.map_coordinates(np.asarray(stack[s], np.float32), [y, z], order=1, mode="constant",
                                           cval=float(np.min(stack))))
    return np.stack(out).astype(np.float32)


def disc_targets(truth: dict, disc: str, canal_ap_mm: float) -> tuple[int, int, int]:
    """(Pfirrmann − 1, herniation 0/1, stenosis grade) of ``disc``: the first two from a phantom case's truth, the
    stenosis from ``canal_ap_mm``, the canal's AP diameter at the disc measured on the true label map
    (:func:`lumbarlab.measure.sagittal.sagittal_disc_measurements`) — what the image shows, since a herniation
    first fills the epidural fat in front of the sac and narrows the canal by less than its own depth."""
    d = truth["discs"][disc]
    return int(d["pfirrmann"]) - 1, int(float(d.get("herniation_mm", 0.0)) >= HERNIATION_MM), stenosis_grade(canal_ap_mm)


@dataclass
class DiscStack:
    """A normalised sagittal stack (X slabs, Y, Z) with each disc's frame (:func:`disc_frame`) and grades."""

    stack: np.ndarray
    frames: dict[str, tuple[int, np.ndarray, np.ndarray]]
    targets: dict[str, tuple[int, int, int]]
    case_id: str = ""


def phantom_disc_stacks(n: int, seed: int = 0, shape: tuple[int, int, int] = (96, 176, 192),
                        spacing: float = 1.25) -> list[DiscStack]:
    """``n`` varied phantom spines (:func:`lumbarlab.datasets.mri_spine.mri_spine_pathology`, with the phantom's
    own T2 contrast: a Pfirrmann grade is read from the disc's T2 signal, which random contrasts would scramble)
    as sagittal T2 stacks of 4 mm slabs, with the frame of each disc from its true label and its true grades (stenosis from the
    canal measured on the true labels, :func:`disc_targets`)."""
    from lumbarlab.datasets.mri import normalize_mri
    from lumbarlab.datasets.mri_spine import mri_spine_pathology
    from lumbarlab.measure.sagittal import sagittal_disc_measurements
    from lumbarlab.phantom import make_case

    out = []
    for k in range(n):
        case = make_case(seed + k, shape=shape, spacing=spacing, modalities=("t2",),
                         **mri_spine_pathology(seed + k, randomise=False))
        image, labels = case.mri_sagittal("T2", 4.0)
        frames = {d: disc_frame(labels.array == DISC_LABEL[d]) for d in DISCS if (labels.array == DISC_LABEL[d]).any()}
        canal = {d: m["canal_ap_mm"] for d, m in sagittal_disc_measurements(labels).items()}
        targets = {d: disc_targets(case.truth, d, canal[d]) for d in frames}
        out.append(DiscStack(normalize_mri(image.array), frames, targets, f"phantom{seed + k:04d}"))
    return out


class DiscCropDataset(torch.utils.data.Dataset):
    """One item per disc: ``(crop (3, 64, 64) float32, targets (3,) int64)`` — Pfirrmann − 1, herniation,
    stenosis. With ``jitter``, each call moves the centre by up to ±3 mm, turns the frame by up to ±8° and
    scales by ±8 % (what a predicted mask's centre and axis are off by), and changes gain and gamma."""

    def __init__(self, stacks: list[DiscStack], jitter: bool = False, seed: int = 0):
        self.stacks, self.jitter = stacks, jitter
        self.items = [(k, d) for k, s in enumerate(stacks) for d in s.frames]
        if not self.items:
            raise LumbarLabError("DiscCropDataset: no disc in the stacks.")
        self._rng = np.random.default_rng([int(seed), 0xD15C])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        k, disc = self.items[i]
        s = self.stacks[k]
        slab, centre, along = s.frames[disc]
        scale = 1.0
        if self.jitter:
            r = self._rng
            centre = centre + r.uniform(-3.0, 3.0, 2) / CROP_MM
            a = np.radians(r.uniform(-8.0, 8.0))
            along = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ along
            scale = float(r.uniform(0.92, 1.08))
        crop = disc_crop(s.stack, slab, centre, along, scale=scale)
        if self.jitter:
            low = crop.min()
            crop = (crop - low) * float(self._rng.uniform(0.85, 1.15))
            crop = np.power(crop / max(crop.max(), 1e-6), float(self._rng.uniform(0.8, 1.25))) * crop.max() + low
            crop = crop + self._rng.normal(0.0, 0.05, crop.shape).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(crop, np.float32)), torch.tensor(s.targets[disc], dtype=torch.int64)
