"""Boxes of vertebral bodies and intervertebral discs on radiographs, and a dataset for box detectors.

Boxes here are ``(x1, y1, x2, y2)`` in pixels (x = column, y = row, continuous coordinates, no +1), the
convention of :mod:`lumbarlab.metrics.detection`; pixel (r, c) is the point (x=c, y=r), as for corners. Two classes: 0 vertebra (the bodies of L1–L5) and 1 disc
(the spaces L1/L2 … L5/S1).

* A vertebra's box is the bounding box of its four body corners (the lateral or AP outline that landmark
  annotations such as BUU-LSPINE's give), or of its pixels in a label image (:func:`label_boxes`).
* A disc's box spans the space between one body's inferior endplate and the next body's superior endplate:
  the bounding box of those four corners. A disc is a thin box (a few pixels tall at 1.8 mm per pixel).

MONAI's detectors order a box's coordinates by the image tensor's axes, so for a ``(C, H, W)`` image a MONAI
box is ``(row1, col1, row2, col2)`` = ``(y1, x1, y2, x2)``: :func:`to_monai` and :func:`from_monai` swap the
pairs. :class:`BoxDataset` yields MONAI-ordered targets; :func:`detections_from_monai` turns a detector's
outputs back into the lab's boxes for the metrics.

Example:
    >>> split = phantom_box_xrays(2, seed=0, size=96)
    >>> split.boxes.shape, split.labels[0].tolist()
    ((2, 10, 4), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    >>> image, target = BoxDataset(split)[0]
    >>> tuple(image.shape), tuple(target["boxes"].shape)
    ((1, 96, 96), (10, 4))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lumbarlab.datasets.xray import (
    LANDMARK_LEVELS,
    XraySplit,
    _shift,
    corners_to_dict,
    landmarks_from_corners,
)
from lumbarlab.errors import LumbarLabError

__all__ = ["BOX_CLASSES", "VERTEBRA_LEVELS", "DISC_LEVELS", "corner_box", "vertebra_boxes", "disc_boxes",
           "label_boxes", "box_targets", "boxes_from_landmarks", "to_monai", "from_monai", "BoxSplit",
           "box_split", "phantom_box_xrays", "BoxDataset", "detection_collate", "detections_from_monai"]

#: Class names by label value.
BOX_CLASSES: tuple[str, ...] = ("vertebra", "disc")
#: Levels with a vertebra box, top to bottom.
VERTEBRA_LEVELS: tuple[str, ...] = LANDMARK_LEVELS[:-1]
#: Disc spaces, each between a level and the next (S1: its superior endplate).
DISC_LEVELS: tuple[str, ...] = tuple(f"{a}/{b}" for a, b in zip(LANDMARK_LEVELS[:-1], LANDMARK_LEVELS[1:], strict=True))


def corner_box(points) -> np.ndarray:
    """The bounding box ``(x1, y1, x2, y2)`` of (N, 2) points ``(x, y)`` in pixels.

    Args:
        points: (N, 2) array-like of (x=col, y=row), N ≥ 1.

    Example:
        >>> corner_box([[3, 10], [7, 2], [5, 6]]).tolist()
        [3.0, 2.0, 7.0, 10.0]
    """
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    if p.shape[0] == 0 or not np.all(np.isfinite(p)):
        raise LumbarLabError("corner_box needs at least one finite (x, y) point.")
    return np.r_[p.min(0), p.max(0)]


def _corners(corners) -> dict[str, np.ndarray]:
    """{level: (4, 2)} from a dict or from the (22, 2) landmark layout of :mod:`lumbarlab.datasets.xray`."""
    if isinstance(corners, dict):
        return {k: np.asarray(v, dtype=float) for k, v in corners.items()}
    return corners_to_dict(np.asarray(corners, dtype=float))


def vertebra_boxes(corners, levels: Sequence[str] = VERTEBRA_LEVELS) -> np.ndarray:
    """Vertebral body boxes (len(levels), 4) in pixels: the bounding box of each body's four corners.

    Args:
        corners: {level: (4, 2) corners (x, y)} (a :class:`~lumbarlab.volume.Radiograph`'s ``corners``), or the
            (22, 2) landmark array of :func:`~lumbarlab.datasets.xray.landmarks_from_corners`.
        levels: which bodies, top to bottom.

    Example:
        >>> square = np.array([[10, 20], [30, 20], [30, 36], [10, 36]])
        >>> vertebra_boxes({"L1": square}, levels=("L1",)).tolist()
        [[10.0, 20.0, 30.0, 36.0]]
    """
    c = _corners(corners)
    missing = [lvl for lvl in levels if lvl not in c]
    if missing:
        raise LumbarLabError(f"no corners for {', '.join(missing)}; give the corners of every level in `levels`.")
    return np.stack([corner_box(c[lvl]) for lvl in levels]) if levels else np.zeros((0, 4))


def disc_boxes(corners, levels: Sequence[str] = LANDMARK_LEVELS) -> np.ndarray:
    """Disc-space boxes (len(levels) - 1, 4) in pixels, one between each pair of neighbouring levels.

    The box of the disc under ``levels[k]`` bounds that body's inferior corners (the 3rd and 4th, see
    :meth:`~lumbarlab.volume.Radiograph`'s corner order) and the next body's superior corners (1st and 2nd):
    the whole space between the two endplates, tilted or wedged as it is.

    Args:
        corners: {level: (4, 2)} or the (22, 2) landmark array (S1 needs only its superior corners).
        levels: the bodies top to bottom; discs lie between consecutive ones.

    Example:
        >>> upper = np.array([[10, 20], [30, 20], [30, 36], [10, 36]])   # inferior endplate at y = 36
        >>> lower = np.array([[10, 42], [30, 40], [30, 56], [10, 56]])   # superior endplate at y = 40…42
        >>> disc_boxes({"L4": upper, "L5": lower}, levels=("L4", "L5")).tolist()
        [[10.0, 36.0, 30.0, 42.0]]
    """
    c = _corners(corners)
    missing = [lvl for lvl in levels if lvl not in c]
    if missing:
        raise LumbarLabError(f"no corners for {', '.join(missing)}; give the corners of every level in `levels`.")
    boxes = [corner_box(np.concatenate([c[a][2:4], c[b][0:2]])) for a, b in zip(levels[:-1], levels[1:], strict=True)]
    return np.stack(boxes) if boxes else np.zeros((0, 4))


def label_boxes(label_image, values: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bounding boxes of the labels in a 2D label image, covering their pixels' whole area.

    The lab puts pixel (row r, col c) at the point (x=c, y=r), as the phantom's corners do, so the pixel covers
    c - ½ … c + ½. A label whose pixels fill rows r0…r1 and columns c0…c1 gets ``(c0 - ½, r0 - ½, c1 + ½,
    r1 + ½)``: its width is the number of columns, and it compares with corner boxes without a half-pixel shift.

    Args:
        label_image: (H, W) integer labels (0 background), e.g. a radiograph's ``body_labels``.
        values: the labels to box, in this order (a label absent from the image is skipped); default all
            non-zero labels, ascending.

    Returns:
        (boxes (K, 4) float, label values (K,) int).

    Example:
        >>> im = np.zeros((8, 10), int); im[2:5, 1:4] = 20; im[6:8, 5:10] = 21
        >>> boxes, values = label_boxes(im)
        >>> boxes.tolist(), values.tolist()
        ([[0.5, 1.5, 3.5, 4.5], [4.5, 5.5, 9.5, 7.5]], [20, 21])
    """
    im = np.asarray(label_image)
    if im.ndim != 2 or not np.issubdtype(im.dtype, np.integer):
        raise LumbarLabError(f"label_image must be a 2D integer array, got {im.dtype} of shape {im.shape}.")
    wanted = [int(v) for v in np.unique(im) if v != 0] if values is None else [int(v) for v in values]
    boxes, found = [], []
    for v in wanted:
        rows, cols = np.nonzero(im == v)
        if rows.size:
            boxes.append([cols.min() - 0.5, rows.min() - 0.5, cols.max() + 0.5, rows.max() + 0.5])
            found.append(v)
    return np.array(boxes, dtype=float).reshape(-1, 4), np.array(found, dtype=np.int64)


def box_targets(corners) -> tuple[np.ndarray, np.ndarray]:
    """The lab's detection truth for one radiograph: L1–L5 bodies (label 0) then discs L1/L2 … L5/S1 (label 1).

    Args:
        corners: {level: (4, 2)} or the (22, 2) landmark array, in pixels.

    Returns:
        (boxes (10, 4) float (x1, y1, x2, y2), labels (10,) int64).

    Example:
        >>> from lumbarlab.phantom.fast2d import lateral_radiograph
        >>> boxes, labels = box_targets(lateral_radiograph(0, size=64).corners)
        >>> boxes.shape, int(labels.sum())
        ((10, 4), 5)
    """
    boxes = np.concatenate([vertebra_boxes(corners), disc_boxes(corners)])
    labels = np.r_[np.zeros(len(VERTEBRA_LEVELS)), np.ones(len(DISC_LEVELS))].astype(np.int64)
    return boxes, labels


def boxes_from_landmarks(points, score: float = 1.0) -> dict[str, np.ndarray]:
    """Detections from predicted corner landmarks (the landmark route): :func:`box_targets` of the points,
    each with the same ``score`` (a landmark model gives no box confidence).

    Args:
        points: (22, 2) predicted landmarks (x, y) in pixels.
        score: the confidence given to every box, in [0, 1].

    Returns:
        ``{"boxes": (10, 4), "scores": (10,), "labels": (10,)}``, the form the detection metrics take.

    Example:
        >>> from lumbarlab.phantom.fast2d import lateral_radiograph
        >>> truth = landmarks_from_corners(lateral_radiograph(0, size=64).corners)
        >>> sorted(boxes_from_landmarks(truth))
        ['boxes', 'labels', 'scores']
    """
    boxes, labels = box_targets(points)
    return {"boxes": boxes, "scores": np.full(len(boxes), float(score)), "labels": labels}


def to_monai(boxes):
    """Lab boxes ``(x1, y1, x2, y2)`` → MONAI's axis order for a (C, H, W) image, ``(y1, x1, y2, x2)``.

    The swap is its own inverse; works on numpy arrays and torch tensors of shape (..., 4).

    Example:
        >>> to_monai(np.array([[1, 2, 3, 4]])).tolist()
        [[2, 1, 4, 3]]
    """
    if boxes.shape[-1] != 4:
        raise LumbarLabError(f"expected 2D boxes (..., 4), got shape {tuple(boxes.shape)}.")
    return boxes[..., [1, 0, 3, 2]]


def from_monai(boxes):
    """MONAI's ``(y1, x1, y2, x2)`` boxes of a (C, H, W) image → the lab's ``(x1, y1, x2, y2)``.

    Example:
        >>> from_monai(np.array([[2, 1, 4, 3]])).tolist()
        [[1, 2, 3, 4]]
    """
    return to_monai(boxes)


@dataclass
class BoxSplit:
    """Radiographs with their box truth, as arrays (one view, one image size).

    Attributes:
        images: (N, H, W) float32 in [0, 1], bone bright.
        corners: (N, 22, 2) float32 landmark pixels (see :func:`~lumbarlab.datasets.xray.landmarks_from_corners`).
        boxes: (N, 10, 4) float32 ``(x1, y1, x2, y2)`` pixels: L1–L5 bodies, then discs L1/L2 … L5/S1.
        labels: (N, 10) int64 classes of :data:`BOX_CLASSES`.
        spacing: pixel size (row, col) in mm.
        view: ``"lateral"`` or ``"ap"``.
        seeds: (N,) anatomy seed of each image (phantom) or -1 (real data).
    """

    images: np.ndarray
    corners: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float]
    view: str
    seeds: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def truth(self, i: int) -> dict[str, np.ndarray]:
        """Image ``i``'s truth as the detection metrics take it: ``{"boxes", "labels"}``."""
        return {"boxes": self.boxes[i].astype(float), "labels": self.labels[i]}


def _from_corners(images: np.ndarray, corners: np.ndarray, spacing, view: str, seeds) -> BoxSplit:
    pairs = [box_targets(c) for c in corners]
    return BoxSplit(images.astype(np.float32), corners.astype(np.float32),
                    np.stack([b for b, _ in pairs]).astype(np.float32), np.stack([lab for _, lab in pairs]),
                    (float(spacing[0]), float(spacing[1])), view, np.asarray(seeds))


def box_split(split: XraySplit, view: str = "lateral") -> BoxSplit:
    """Boxes for an :class:`~lumbarlab.datasets.xray.XraySplit` (phantom or :func:`fetched_xrays`), from its corners.

    Example:
        >>> from lumbarlab.datasets.xray import phantom_xrays
        >>> len(box_split(phantom_xrays(1, seed=0, size=64)))
        1
    """
    return _from_corners(split.images, split.corners, split.spacing, view, split.seeds)


def _ap_case(seed: int, rng: np.random.Generator):
    from lumbarlab.phantom import make_case

    cobb = float(rng.uniform(5, 30)) if rng.random() < 0.5 else 0.0  # half of them with a scoliotic curve
    case = make_case(seed, cobb=cobb, scoliosis_side=str(rng.choice(["left", "right"])), shape=(96, 64, 120),
                     spacing=2.0, modalities=("ct", "xray"))  # 2 mm voxels: a fraction of a second per case
    return case.ap


def phantom_box_xrays(n: int, seed: int, size: int = 128, view: str = "lateral", slip_fraction: float = 0.5) -> BoxSplit:
    """``n`` phantom radiographs with vertebra and disc boxes (anatomy seeds ``seed … seed + n - 1``).

    Args:
        n: number of images.
        seed: first anatomy seed; splits whose seed ranges do not overlap share no anatomy.
        size: lateral image side in pixels (230 mm field of view: 1.8 mm per pixel at 128). AP views come from
            a rendered CT at 2 mm voxels and are always 120 × 96 pixels of 2 mm.
        view: ``"lateral"`` (fast projection, about 40 ms per 128² image) or ``"ap"`` (about 0.1–0.3 s each;
            half of them with a scoliotic curve of 5–30°).
        slip_fraction: share of lateral views with a spondylolisthesis of 8–50 % at L4 or L5.

    Example:
        >>> phantom_box_xrays(1, seed=3, view="ap").images.shape
        (1, 120, 96)
    """
    if n < 1:
        raise LumbarLabError(f"n must be at least 1, got {n}.")
    if view == "lateral":
        from lumbarlab.datasets.xray import phantom_xrays

        return box_split(phantom_xrays(n, seed, size=size, slip_fraction=slip_fraction), "lateral")
    if view != "ap":
        raise LumbarLabError(f"view must be 'lateral' or 'ap', got {view!r}.")
    rng = np.random.default_rng([seed, 51])
    views = [_ap_case(seed + i, rng) for i in range(n)]
    corners = np.stack([landmarks_from_corners(v.corners) for v in views])
    return _from_corners(np.stack([v.image for v in views]), corners, views[0].spacing, "ap", np.arange(seed, seed + n))


class BoxDataset(torch.utils.data.Dataset):
    """Items ``(image (1, H, W) float32, {"boxes": (10, 4) float32, "labels": (10,) int64})`` for MONAI's
    detectors; the boxes are in MONAI's axis order ``(y1, x1, y2, x2)`` (:func:`to_monai`).

    ``augment=True`` draws, per item, a contrast/gamma change, Gaussian noise and a shift of up to
    ``max_shift`` pixels; the boxes move with the image (clipped to it). The draw follows torch's global
    generator (seeded by :func:`lumbarlab.train.seed_everything`). Batch with :func:`detection_collate`.

    Args:
        split: a :class:`BoxSplit`.
        augment: draw the random changes above.
        max_shift: largest shift in pixels.
    """

    def __init__(self, split: BoxSplit, augment: bool = False, max_shift: int = 8):
        if max_shift < 0:
            raise LumbarLabError(f"max_shift must be >= 0, got {max_shift}.")
        self.split, self.augment, self.max_shift = split, augment, max_shift

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        image = torch.from_numpy(self.split.images[i])[None]
        boxes = torch.from_numpy(self.split.boxes[i].copy())
        if self.augment:
            g = torch.rand(4)
            image = image.clamp(0, 1) ** float(0.7 + 0.6 * g[0]) * (0.8 + 0.4 * g[1]) + (g[2] - 0.5) * 0.2
            image = image + torch.randn_like(image) * 0.02 * float(g[3])
            if self.max_shift:
                dy, dx = (int(v) for v in torch.randint(-self.max_shift, self.max_shift + 1, (2,)))
                image = _shift(image, dy, dx, fill=float(image[..., :4, :].mean()))
                h, w = image.shape[-2:]
                boxes = boxes + torch.tensor([dx, dy, dx, dy], dtype=boxes.dtype)
                # the image spans -½ … size - ½ (pixel centres at integers): boxes pushed past it are cut there
                boxes = torch.minimum(boxes.clamp(min=-0.5), torch.tensor([w, h, w, h], dtype=boxes.dtype) - 0.5)
        return image, {"boxes": to_monai(boxes), "labels": torch.from_numpy(self.split.labels[i].copy())}


def detection_collate(items) -> tuple[list[torch.Tensor], list[dict]]:
    """Batch ``(image, target)`` items as MONAI's detectors take them: a list of images, a list of targets
    (images may differ in size; the detector pads them)."""
    return [image for image, _ in items], [target for _, target in items]


def detections_from_monai(outputs: Sequence[dict], score_key: str = "labels_scores") -> list[dict[str, np.ndarray]]:
    """A MONAI detector's eval outputs → per image ``{"boxes" (x1, y1, x2, y2), "scores", "labels"}`` numpy arrays,
    the form :func:`lumbarlab.metrics.detection_average_precision` takes.

    Args:
        outputs: per image ``{"boxes": (K, 4) MONAI order, "labels": (K,), score_key: (K,)}`` tensors.
        score_key: where the detector put its scores (MONAI: the label key + ``"_scores"``).

    Example:
        >>> out = [{"boxes": torch.tensor([[2.0, 1, 4, 3]]), "labels": torch.tensor([1]), "labels_scores": torch.tensor([0.9])}]
        >>> detections_from_monai(out)[0]["boxes"].tolist()
        [[1.0, 2.0, 3.0, 4.0]]
    """
    result = []
    for o in outputs:
        if score_key not in o:
            raise LumbarLabError(f"no {score_key!r} in the detector's output (keys: {', '.join(o)}); pass score_key.")
        boxes = o["boxes"].detach().cpu().numpy().astype(float).reshape(-1, 4)
        result.append({"boxes": from_monai(boxes), "scores": o[score_key].detach().cpu().numpy().astype(float),
                       "labels": o["labels"].detach().cpu().numpy().astype(np.int64)})
    return result
