"""torch Datasets of lateral lumbar radiographs for the three X-ray tasks, from the phantom or converted data.

One generated split (:class:`XraySplit`, arrays in memory) serves every task, so a lesson can
train a classifier, a segmenter and a landmark model on the same images:

| task | input | target |
| --- | --- | --- |
| ``classification`` | (1, H, W) float image | 1 if any level slips (spondylolisthesis), else 0 |
| ``segmentation`` | (1, H, W) | (H, W) int64 classes: 0 background, 1 vertebral body (T12–L5), 2 sacrum |
| ``landmarks`` | (1, H, W) | (22, 2) float (x=col, y=row) pixels: four body corners of L1–L5, two of S1 |

Corners per level follow :meth:`Vertebra.lateral_corners_local`: superior-anterior,
superior-posterior, inferior-posterior, inferior-anterior. S1 contributes only its superior
endplate (anterior, posterior): the sacrum has no lower endplate on a lateral view, and its
phantom box corners often fall outside the field of view. Real data converted by :mod:`lumbarlab.fetch`
(BUU-LSPINE) gives the same item layout (:func:`fetched_xrays`).

Example:
    >>> split = phantom_xrays(200, seed=0)
    >>> train = XrayDataset(split, "segmentation", augment=True)
    >>> image, mask = train[0]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.labels import VERSE_LABEL

__all__ = ["XraySplit", "XrayDataset", "phantom_xrays", "split_of_radiographs", "LANDMARK_LEVELS", "SEG_CLASSES", "XRAY_TASKS",
           "corners_to_dict", "landmarks_from_corners", "mask_classes", "N_LANDMARKS", "fetched_xrays"]

LANDMARK_LEVELS: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "S1")
SEG_CLASSES: tuple[str, ...] = ("background", "vertebral body", "sacrum")
XRAY_TASKS: tuple[str, ...] = ("classification", "segmentation", "landmarks")
_SACRUM = VERSE_LABEL["S1"]  # the sacrum (lumbarlab's S1)


def mask_classes(body_labels: np.ndarray) -> np.ndarray:
    """VerSe body labels → segmentation classes (0 background, 1 vertebral body, 2 sacrum), uint8."""
    out = (body_labels > 0).astype(np.uint8)
    out[body_labels == _SACRUM] = 2
    return out


#: Number of landmarks: 4 corners of L1–L5 and the S1 superior endplate's 2.
N_LANDMARKS = 4 * (len(LANDMARK_LEVELS) - 1) + 2


def landmarks_from_corners(corners: dict[str, np.ndarray]) -> np.ndarray:
    """{level: (4, 2)} corners → the (22, 2) landmark array (S1: its superior endplate only)."""
    return np.concatenate([np.asarray(corners[name], dtype=np.float32)[: 2 if name == "S1" else 4]
                           for name in LANDMARK_LEVELS])


def corners_to_dict(points: np.ndarray) -> dict[str, np.ndarray]:
    """(22, 2) landmark array → {level: (4, 2) corners}, the form :mod:`lumbarlab.measure` takes.

    S1's inferior corners are not landmarks; they are filled in one endplate length below the
    superior ones (perpendicular to the endplate) so S1 is a valid body outline. Only S1's superior
    endplate enters the measurements (L5–S1 slip, lumbosacral angle, sacral slope).
    """
    points = np.asarray(points, dtype=float)
    if points.shape != (N_LANDMARKS, 2):
        raise LumbarLabError(f"expected {N_LANDMARKS} landmarks of (x, y), got shape {points.shape}.")
    out = {name: points[4 * i : 4 * i + 4] for i, name in enumerate(LANDMARK_LEVELS[:-1])}
    anterior, posterior = points[-2], points[-1]
    edge = anterior - posterior
    down = np.array([-edge[1], edge[0]])  # the endplate turned by 90°: y grows downwards in images
    if down[1] < 0:
        down = -down
    out["S1"] = np.stack([anterior, posterior, posterior + down, anterior + down])
    return out


@dataclass
class XraySplit:
    """A set of lateral radiographs with every task's truth, as arrays.

    Attributes:
        images: (N, H, W) float32 in [0, 1], bone bright.
        slip: (N,) largest slip in % of the lower endplate (0 = none).
        masks: (N, H, W) uint8 classes of :data:`SEG_CLASSES`.
        corners: (N, 22, 2) float32 (x, y) landmark pixels (see :func:`landmarks_from_corners`).
        spacing: pixel size (row, col) in mm.
        seeds: (N,) anatomy seed of each image (phantom) or -1 (real data).
    """

    images: np.ndarray
    slip: np.ndarray
    masks: np.ndarray
    corners: np.ndarray
    spacing: tuple[float, float]
    seeds: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> np.ndarray:
        """Spondylolisthesis (1) or not (0) per image."""
        return (self.slip > 0).astype(np.int64)


def phantom_xrays(n: int, seed: int, size: int = 256, slip_fraction: float = 0.5, min_slip: float = 8.0,
                  max_slip: float = 50.0) -> XraySplit:
    """Generate ``n`` phantom lateral radiographs (anatomy seeds ``seed … seed + n - 1``).

    Half of them (``slip_fraction``) slip ``min_slip``–``max_slip`` % at L4 or L5. Splits with
    seed ranges that do not overlap share no anatomy: the zoo uses train/val/test seeds far apart.
    About 12 ms per 256² image on one CPU core.
    """
    from lumbarlab.phantom.fast2d import lateral_radiographs

    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    return split_of_radiographs(lateral_radiographs(n, seed=seed, size=size, slip_fraction=slip_fraction,
                                                    min_slip=min_slip, max_slip=max_slip), n, size)


def split_of_radiographs(radiographs: Iterable, n: int, size: int) -> XraySplit:
    """An :class:`XraySplit` of ``n`` phantom lateral radiographs of ``size``² pixels, in the order given: image,
    three-class mask, (22, 2) corner landmarks in pixels, the largest slip (%) and the anatomy seed of each.

    Args:
        radiographs: iterable of :class:`lumbarlab.phantom.fast2d.Radiograph` (e.g. ``lateral_radiographs``);
            exactly ``n`` are read.
        n: number of radiographs.
        size: their side in pixels.

    Example:
        >>> from lumbarlab.phantom.fast2d import lateral_radiographs
        >>> split = split_of_radiographs(lateral_radiographs(2, seed=5, size=64), 2, 64)
        >>> split.seeds.tolist(), split.masks.shape
        ([5, 6], (2, 64, 64))
    """
    images = np.empty((n, size, size), np.float32)
    masks = np.empty((n, size, size), np.uint8)
    corners = np.empty((n, N_LANDMARKS, 2), np.float32)
    slip = np.empty(n, np.float32)
    seeds = np.empty(n, np.int64)
    spacing = (1.0, 1.0)
    count = 0
    for i, r in enumerate(itertools.islice(radiographs, n)):
        images[i] = r.image
        masks[i] = mask_classes(r.body_labels)
        corners[i] = landmarks_from_corners(r.corners)
        slip[i] = max(r.truth["slip_percent"].values())
        seeds[i] = r.truth["seed"]
        spacing = r.spacing
        count = i + 1
    if count < n:
        raise LumbarLabError(f"asked for {n} radiographs, the source gave {count}.")
    return XraySplit(images, slip, masks, corners, tuple(float(s) for s in spacing), seeds)


class XrayDataset(torch.utils.data.Dataset):
    """Items ``(image (1, H, W) float32, target)`` for ``task`` from an :class:`XraySplit`.

    ``augment=True`` draws, per item, a random contrast/gamma change, Gaussian noise and a shift of
    up to ``max_shift`` pixels; masks and landmarks move with the image, so every task can use it.
    The draw follows ``torch``'s global generator (seeded by :func:`lumbarlab.train.seed_everything`).
    """

    def __init__(self, split: XraySplit, task: str, augment: bool = False, max_shift: int = 12):
        if task not in XRAY_TASKS:
            raise LumbarLabError(f"task must be one of {', '.join(XRAY_TASKS)}, got {task!r}.")
        self.split, self.task, self.augment, self.max_shift = split, task, augment, max_shift

    def __len__(self) -> int:
        return len(self.split)

    def _target(self, i: int):
        s = self.split
        if self.task == "classification":
            return torch.tensor(int(s.slip[i] > 0))
        if self.task == "segmentation":
            return torch.from_numpy(s.masks[i].astype(np.int64))
        return torch.from_numpy(s.corners[i].copy())

    def __getitem__(self, i: int):
        image = torch.from_numpy(self.split.images[i])[None]
        target = self._target(i)
        if not self.augment:
            return image, target
        g = torch.rand(4)
        gamma = float(0.7 + 0.6 * g[0])
        image = image.clamp(0, 1) ** gamma * (0.8 + 0.4 * g[1]) + (g[2] - 0.5) * 0.2
        image = image + torch.randn_like(image) * 0.02 * float(g[3])
        if self.max_shift:
            dy, dx = (int(v) for v in torch.randint(-self.max_shift, self.max_shift + 1, (2,)))
            image = _shift(image, dy, dx, fill=float(image[..., :4, :].mean()))
            if self.task == "segmentation":
                target = _shift(target, dy, dx, fill=0)
            elif self.task == "landmarks":
                target = target + torch.tensor([dx, dy], dtype=target.dtype)
        return image, target


def _shift(t: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """Move the last two axes by (dy, dx) pixels, filling what comes in with ``fill``."""
    out = torch.full_like(t, fill)
    h, w = t.shape[-2:]
    src_r = slice(max(-dy, 0), h - max(dy, 0))
    dst_r = slice(max(dy, 0), h - max(-dy, 0))
    src_c = slice(max(-dx, 0), w - max(dx, 0))
    dst_c = slice(max(dx, 0), w - max(-dx, 0))
    out[..., dst_r, dst_c] = t[..., src_r, src_c]
    return out


def fetched_xrays(root, size: int = 256, view: str = "lateral") -> XraySplit:
    """Radiographs with corners of a converted X-ray dataset (BUU-LSPINE) as an :class:`XraySplit`,
    interchangeable with :func:`phantom_xrays`: images padded to a square and resized to ``size``²
    (:class:`~lumbarlab.datasets.preprocess.SquareFit`, which moves the corners with them), slip measured from
    the annotated corners (Meyerding; under 8 % counts as none, as in the phantom sets), no masks (zeros).
    Cases without the corners of L1–L5 and S1 are skipped."""
    from lumbarlab.datasets.preprocess import SquareFit
    from lumbarlab.fetch.layout import read_index
    from lumbarlab.io import read_png
    from lumbarlab.measure import measure_lateral, read_corners_csv

    index = read_index(root)
    images, corners, slips = [], [], []
    for case in index.cases:
        if case.view != view or not case.landmarks:
            continue
        found = read_corners_csv(index.path(case.landmarks))
        if any(level not in found for level in LANDMARK_LEVELS):
            continue
        raw = read_png(index.path(case.image)).astype(np.float32)
        raw = (raw - raw.min()) / max(float(raw.max() - raw.min()), 1e-6)
        fit = SquareFit.for_shape(raw.shape, size)
        images.append(fit.image(raw))
        corners.append(landmarks_from_corners({k: fit.points(v) for k, v in found.items()}))
        report = measure_lateral({k: found[k] for k in LANDMARK_LEVELS})
        slip = max(report.slips[k]["slip_percent"] for k in ("L3", "L4", "L5") if k in report.slips)
        slips.append(slip if slip >= 8.0 else 0.0)  # the phantom's smallest slip; below it counts as none
    if not images:
        raise LumbarLabError(f"{root}: no {view} radiograph with corners of {', '.join(LANDMARK_LEVELS)}.")
    n = len(images)
    return XraySplit(np.stack(images), np.array(slips, np.float32), np.zeros((n, size, size), np.uint8),
                     np.stack(corners).astype(np.float32), (1.0, 1.0), np.full(n, -1))
