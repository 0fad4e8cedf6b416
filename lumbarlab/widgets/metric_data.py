"""Demo data for the metric explorer, drawn from the phantom in milliseconds (no training).

* classification: a spondylolisthesis screen. Each case's L4/L5 corners are perturbed as a
  landmark model would (Gaussian error, ``landmark_sd_mm``); the measured slip, squashed by a
  logistic, is the score; the label is "Meyerding grade ≥ I" on the true slip.
* segmentation: a lateral radiograph, its vertebra mask, and a blurred noisy probability map.
* detection: vertebra boxes of a lateral radiograph and detections jittered from them, with
  missed vertebrae and false alarms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["ClassificationData", "SegmentationData", "DetectionData",
           "classification_demo", "segmentation_demo", "detection_demo", "landmark_features"]


@dataclass
class ClassificationData:
    scores: np.ndarray  # (N,) in [0, 1]
    labels: np.ndarray  # (N,) 0/1
    description: str


@dataclass
class SegmentationData:
    image: np.ndarray  # (H, W) in [0, 1]
    mask: np.ndarray  # (H, W) bool
    probability: np.ndarray  # (H, W) in [0, 1]
    spacing: tuple[float, float]
    description: str


@dataclass
class DetectionData:
    image: np.ndarray
    gt_boxes: np.ndarray  # (M, 4) x1, y1, x2, y2 (pixels)
    gt_names: list[str]
    pred_boxes: np.ndarray  # (N, 4)
    pred_scores: np.ndarray  # (N,)
    description: str


def _noisy_corners(spine, name: str, rng: np.random.Generator, sd_mm: float) -> np.ndarray:
    """Lateral corners (mm, image-like axes) of one vertebra with Gaussian landmark error."""
    v = spine.vertebrae[name]
    c = v.to_world(v.lateral_corners_local())[:, 1:]  # (y, z) in mm
    return np.stack([-c[:, 0], -c[:, 1]], 1) + rng.normal(0.0, sd_mm, (4, 2))


def classification_demo(n: int = 1000, seed: int = 0, prevalence: float = 0.3,
                        landmark_sd_mm: float = 1.2) -> ClassificationData:
    """Scores of a landmark-based spondylolisthesis screen on ``n`` phantom cases."""
    from lumbarlab.measure import meyerding_slip
    from lumbarlab.phantom import sample_params
    from lumbarlab.phantom.anatomy import build_spine

    rng = np.random.default_rng([seed, 31])
    scores, labels = np.empty(n), np.empty(n, dtype=np.int64)
    for i in range(n):
        level = "L4" if rng.random() < 0.6 else "L5"
        slip = float(rng.uniform(5.0, 45.0)) if rng.random() < prevalence else float(abs(rng.normal(0, 1.5)))
        spine = build_spine(sample_params(seed * 100_003 + i, slip={level: slip}))
        lower = {"L4": "L5", "L5": "S1"}[level]

        measured = meyerding_slip(_noisy_corners(spine, level, rng, landmark_sd_mm),
                                  _noisy_corners(spine, lower, rng, landmark_sd_mm))
        scores[i] = 1.0 / (1.0 + np.exp(-(measured - 5.0) / 3.0))
        labels[i] = int(slip >= 5.0)
    return ClassificationData(scores, labels, f"{n} phantom cases; score = logistic of the slip measured on "
                              f"landmarks with {landmark_sd_mm} mm error; positive = true slip ≥ 5 % (Meyerding ≥ I)")


def segmentation_demo(seed: int = 0, size: int = 256, blur_px: float = 2.5, noise: float = 2.5) -> SegmentationData:
    """A lateral radiograph's vertebra mask and a plausible, imperfect probability map."""
    from lumbarlab.phantom import sample_params
    from lumbarlab.phantom.fast2d import lateral_radiograph

    rad = lateral_radiograph(sample_params(seed, slip={"L5": 20}), size=size)
    mask = rad.labels > 0
    rng = np.random.default_rng([seed, 32])
    logit = ndimage.gaussian_filter(mask.astype(float) * 2 - 1, blur_px) * 4
    logit += ndimage.gaussian_filter(rng.normal(0, 1, mask.shape), 3.0) * noise * 8
    prob = 1.0 / (1.0 + np.exp(-logit))
    return SegmentationData(rad.image, mask, prob.astype(np.float32), rad.spacing,
                            "vertebrae and sacrum on a lateral phantom radiograph; a blurred, noisy probability map")


def _label_boxes(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Boxes of every label of a radiograph (the dataset's own convention) with the label names for the legend."""
    from lumbarlab.datasets.xray_boxes import label_boxes
    from lumbarlab.phantom.labels import LABEL_NAMES

    boxes, values = label_boxes(labels)
    return boxes, [LABEL_NAMES.get(int(v), str(int(v))) for v in values]


def detection_demo(seed: int = 0, size: int = 256, jitter_px: float = 6.0) -> DetectionData:
    """Vertebra boxes and detections: jittered true boxes, one missed vertebra, two false alarms."""
    from lumbarlab.phantom import sample_params
    from lumbarlab.phantom.fast2d import lateral_radiograph

    rad = lateral_radiograph(sample_params(seed), size=size)
    gt, names = _label_boxes(rad.labels)
    rng = np.random.default_rng([seed, 33])
    keep = np.ones(len(gt), dtype=bool)
    keep[rng.integers(0, len(gt))] = False  # a missed vertebra
    pred = gt[keep] + rng.normal(0, jitter_px, (int(keep.sum()), 4))
    scores = np.clip(rng.normal(0.8, 0.12, len(pred)), 0.05, 0.99)
    fa = np.array([[20, 30, 60, 70], [size - 80, size - 60, size - 40, size - 25]], dtype=float)
    pred = np.vstack([pred, fa])
    scores = np.r_[scores, [0.55, 0.35]]
    pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 2)
    return DetectionData(rad.image, gt, names, pred, scores,
                         "vertebra boxes on a lateral phantom radiograph; detections jittered by "
                         f"{jitter_px:g} px, one vertebra missed, two false alarms")


def landmark_features(n: int, seed: int = 0, prevalence: float = 0.3, landmark_sd_mm: float = 1.2,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features a landmark model gives a spondylolisthesis classifier, for ``n`` phantom cases.

    For each pair L3/L4, L4/L5, L5/S1: the forward offset (mm) of the upper vertebra's
    posterior-inferior corner from the lower one's posterior-superior corner, and the lower
    endplate's length (mm) — measured on corners perturbed by ``landmark_sd_mm`` of Gaussian
    error. Returns (features (n, 6), labels (n,) = true slip ≥ 5 %, true slip % (n,)).
    """
    from lumbarlab.phantom import sample_params
    from lumbarlab.phantom.anatomy import build_spine

    rng = np.random.default_rng([seed, 34])
    feats, labels, slips = np.empty((n, 6)), np.empty(n, dtype=np.int64), np.empty(n)
    for i in range(n):
        level = "L4" if rng.random() < 0.6 else "L5"
        slip = float(rng.uniform(5.0, 45.0)) if rng.random() < prevalence else float(abs(rng.normal(0, 1.5)))
        spine = build_spine(sample_params(seed * 100_003 + i + 7, slip={level: slip}))
        corners = {}
        for name in ("L3", "L4", "L5", "S1"):
            v = spine.vertebrae[name]
            c = v.to_world(v.lateral_corners_local())[:, 1:]
            corners[name] = c + rng.normal(0.0, landmark_sd_mm, c.shape)
        row = []
        for upper, lower in (("L3", "L4"), ("L4", "L5"), ("L5", "S1")):
            endplate = corners[lower][0] - corners[lower][1]
            length = float(np.linalg.norm(endplate))
            row += [float(np.dot(corners[upper][2] - corners[lower][1], endplate / length)), length]
        feats[i], labels[i], slips[i] = row, int(slip >= 5.0), slip
    return feats, labels, slips
