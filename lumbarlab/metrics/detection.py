"""Detection metrics: box IoU, matching at an IoU threshold, AP per class and mAP.

Boxes are ``(x1, y1, x2, y2)`` in 2D or ``(x1, y1, z1, x2, y2, z2)`` in 3D, corners inclusive of
the area between them (continuous coordinates, no +1).

Matching follows PASCAL VOC / COCO (Everingham et al., IJCV 2010; Lin et al., ECCV 2014):
detections are taken in descending score; each matches the unmatched ground-truth box of its
class with the highest IoU if that IoU ≥ the threshold, else it is a false positive. AP is the
area under the interpolated precision–recall curve: ``"coco"`` samples the monotone precision
envelope at 101 recall points, ``"voc"`` integrates it at every recall step (VOC 2010+).
``mean_average_precision`` averages AP over classes, at one IoU threshold or over COCO's
0.50:0.05:0.95.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array, check_finite

__all__ = ["box_iou", "match_detections", "Match", "detection_average_precision", "mean_average_precision",
           "COCO_IOU_THRESHOLDS"]

COCO_IOU_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))


def _boxes(b, name: str) -> np.ndarray:
    arr = check_finite(as_array(b, name, dtype=float), name)
    if arr.size == 0:
        return arr.reshape(0, 4 if arr.ndim < 2 else arr.shape[-1])
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (4, 6):
        raise LumbarLabError(f"{name} must be (N, 4) or (N, 6) boxes, got shape {arr.shape}.")
    d = arr.shape[1] // 2
    if np.any(arr[:, d:] < arr[:, :d]):
        raise LumbarLabError(f"{name}: a box has its second corner before its first; use (x1, y1, x2, y2).")
    return arr


def box_iou(a, b) -> np.ndarray:
    """Pairwise IoU (N×M) of two sets of boxes."""
    a, b = _boxes(a, "boxes a"), _boxes(b, "boxes b")
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    if a.shape[1] != b.shape[1]:
        raise LumbarLabError("cannot compare 2D and 3D boxes.")
    d = a.shape[1] // 2
    lo = np.maximum(a[:, None, :d], b[None, :, :d])
    hi = np.minimum(a[:, None, d:], b[None, :, d:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    vol_a = np.prod(a[:, d:] - a[:, :d], axis=-1)
    vol_b = np.prod(b[:, d:] - b[:, :d], axis=-1)
    union = vol_a[:, None] + vol_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class Match:
    """Matching result for one class: per detection (in score order) TP flags and scores."""

    scores: np.ndarray
    true_positive: np.ndarray
    matched_gt: np.ndarray  # index of the matched ground-truth box per detection, -1 if none
    n_ground_truth: int


def match_detections(pred_boxes, pred_scores, gt_boxes, iou_threshold: float = 0.5) -> Match:
    """Greedy matching of one image's detections of one class to its ground truth."""
    pb, gb = _boxes(pred_boxes, "pred_boxes"), _boxes(gt_boxes, "gt_boxes")
    scores = check_finite(as_array(pred_scores, "pred_scores", dtype=float).ravel(), "pred_scores")
    if scores.size != pb.shape[0]:
        raise LumbarLabError(f"{pb.shape[0]} boxes but {scores.size} scores.")
    if not 0.0 < iou_threshold <= 1.0:
        raise LumbarLabError(f"iou_threshold must be in (0, 1], got {iou_threshold}.")
    order = np.argsort(-scores, kind="mergesort")
    ious = box_iou(pb[order], gb) if gb.shape[0] else np.zeros((pb.shape[0], 0))
    taken = np.zeros(gb.shape[0], dtype=bool)
    tp = np.zeros(pb.shape[0], dtype=bool)
    matched = np.full(pb.shape[0], -1)
    for i in range(pb.shape[0]):
        if gb.shape[0] == 0:
            break
        cand = np.where(taken, -1.0, ious[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou_threshold:
            taken[j] = True
            tp[i] = True
            matched[i] = j
    return Match(scores[order], tp, matched, gb.shape[0])


def _ap_from_matches(matches: Sequence[Match], method: str) -> float:
    n_gt = sum(m.n_ground_truth for m in matches)
    if n_gt == 0:
        return float("nan")
    scores = np.concatenate([m.scores for m in matches]) if matches else np.zeros(0)
    tps = np.concatenate([m.true_positive for m in matches]) if matches else np.zeros(0, bool)
    if scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(tps[order])
    fp = np.cumsum(~tps[order])
    rec = tp / n_gt
    prec = tp / np.maximum(tp + fp, 1)
    env = np.maximum.accumulate(prec[::-1])[::-1]  # monotone precision envelope
    if method == "coco":
        points = np.linspace(0, 1, 101)
        idx = np.searchsorted(rec, points, side="left")
        return float(np.mean([env[i] if i < env.size else 0.0 for i in idx]))
    if method == "voc":
        r = np.r_[0.0, rec]
        return float(np.sum((r[1:] - r[:-1]) * env))
    raise LumbarLabError(f"method must be 'coco' or 'voc', got {method!r}.")


def detection_average_precision(
    predictions: Sequence[dict], ground_truth: Sequence[dict], label: int, iou_threshold: float = 0.5,
    method: Literal["coco", "voc"] = "coco",
) -> float:
    """AP of one class over a dataset; NaN if the class has no ground-truth box.

    Args:
        predictions: per image ``{"boxes": (N, 4|6), "scores": (N,), "labels": (N,)}``.
        ground_truth: per image ``{"boxes": (M, 4|6), "labels": (M,)}``.
    """
    if len(predictions) != len(ground_truth):
        raise LumbarLabError(f"{len(predictions)} prediction entries but {len(ground_truth)} ground-truth entries.")
    matches = []
    for pred, gt in zip(predictions, ground_truth, strict=True):
        pl = as_array(pred.get("labels", []), "labels").ravel()
        gl = as_array(gt.get("labels", []), "labels").ravel()
        pb = _boxes(pred.get("boxes", np.zeros((0, 4))), "pred boxes")
        gb = _boxes(gt.get("boxes", np.zeros((0, 4))), "gt boxes")
        ps = as_array(pred.get("scores", []), "scores", dtype=float).ravel()
        matches.append(match_detections(pb[pl == label], ps[pl == label], gb[gl == label], iou_threshold))
    return _ap_from_matches(matches, method)


def mean_average_precision(
    predictions: Sequence[dict], ground_truth: Sequence[dict], iou_thresholds: float | Sequence[float] = 0.5,
    method: Literal["coco", "voc"] = "coco", per_class: bool = False,
):
    """mAP: AP averaged over classes with ground truth (and over IoU thresholds if several).

    ``iou_thresholds=COCO_IOU_THRESHOLDS`` gives COCO's mAP@[.5:.95].
    """
    thresholds = [iou_thresholds] if np.isscalar(iou_thresholds) else list(iou_thresholds)
    labels = sorted({int(v) for gt in ground_truth for v in as_array(gt.get("labels", []), "labels").ravel()})
    if not labels:
        raise LumbarLabError("the ground truth holds no boxes; mAP is undefined.")
    table = {k: float(np.mean([detection_average_precision(predictions, ground_truth, k, t, method)
                               for t in thresholds])) for k in labels}
    return table if per_class else float(np.mean(list(table.values())))
