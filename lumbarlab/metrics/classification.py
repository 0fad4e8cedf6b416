"""Classification metrics of the survey's Table 2, from a confusion matrix or from scores.

Definitions (Sokolova & Lapalme, "A systematic analysis of performance measures for
classification tasks", 2009), for one class with TP, FP, FN, TN counts:

* accuracy = (TP + TN) / (TP + FP + FN + TN) — over all classes: trace / total
* precision = TP / (TP + FP);  recall (sensitivity) = TP / (TP + FN);  specificity = TN / (TN + FP)
* F1 = 2·precision·recall / (precision + recall) = 2TP / (2TP + FP + FN)
* balanced accuracy = mean recall over classes (Brodersen et al., ICPR 2010)

``average``: ``"binary"`` (the positive class 1), ``None`` (one value per class), ``"macro"``
(unweighted mean over classes) or ``"micro"`` (pool the counts, then divide). A ratio whose
denominator is zero is reported as 0.0 — as scikit-learn's ``zero_division=0`` does.

ROC and precision–recall curves follow Fawcett, "An introduction to ROC analysis", 2006 and
Davis & Goadrich, ICML 2006; average precision is given both as the all-point sum
Σ (R_n − R_{n−1}) P_n (scikit-learn, COCO-style) and as the PASCAL VOC 2007 11-point
interpolation (Everingham et al., IJCV 2010).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array, check_finite, check_same_shape

__all__ = [
    "confusion_matrix", "accuracy", "precision", "recall", "sensitivity", "specificity", "f1_score",
    "balanced_accuracy", "classification_report", "roc_curve", "roc_auc", "precision_recall_curve",
    "average_precision",
]

Average = Literal["binary", "macro", "micro"] | None


def _labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = check_finite(as_array(y_true, "y_true"), "y_true").ravel()
    p = check_finite(as_array(y_pred, "y_pred"), "y_pred").ravel()
    check_same_shape(t, p)
    if t.size == 0:
        raise LumbarLabError("no samples: y_true and y_pred are empty.")
    if np.any(t < 0) or np.any(p < 0) or np.any(t != np.round(t)) or np.any(p != np.round(p)):
        raise LumbarLabError("class labels must be non-negative integers (0, 1, 2, …).")
    return t.astype(np.int64), p.astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class i predicted as class j (int64, K×K)."""
    t, p = _labels(y_true, y_pred)
    k = int(max(t.max(), p.max()) + 1) if num_classes is None else int(num_classes)
    if t.max() >= k or p.max() >= k:
        raise LumbarLabError(f"labels go up to {max(t.max(), p.max())} but num_classes is {k}.")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(float)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    return tp, fp, fn, tn


def _ratio(num, den) -> np.ndarray:
    num, den = np.asarray(num, float), np.asarray(den, float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _reduce(cm: np.ndarray, num_fn, den_fn, average: Average):
    tp, fp, fn, tn = _counts(cm)
    if average == "micro":
        return float(_ratio(num_fn(tp, fp, fn, tn).sum(), den_fn(tp, fp, fn, tn).sum()))
    per_class = _ratio(num_fn(tp, fp, fn, tn), den_fn(tp, fp, fn, tn))
    if average is None:
        return per_class
    if average == "macro":
        return float(per_class.mean())
    if average == "binary":
        if cm.shape[0] > 2:
            raise LumbarLabError("average='binary' needs two classes; use 'macro', 'micro' or None.")
        return float(per_class[1]) if cm.shape[0] == 2 else 0.0
    raise LumbarLabError(f"average must be 'binary', 'macro', 'micro' or None, got {average!r}.")


def _cm(y_true, y_pred, num_classes) -> np.ndarray:
    return confusion_matrix(y_true, y_pred, max(num_classes or 0, 2) if num_classes is not None else None) \
        if num_classes is not None else _at_least_binary(confusion_matrix(y_true, y_pred))


def _at_least_binary(cm: np.ndarray) -> np.ndarray:
    if cm.shape[0] >= 2:
        return cm
    out = np.zeros((2, 2), dtype=cm.dtype)
    out[: cm.shape[0], : cm.shape[1]] = cm
    return out


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted class equals the true class."""
    cm = confusion_matrix(y_true, y_pred)
    return float(np.trace(cm) / cm.sum())


def precision(y_true, y_pred, average: Average = "binary", num_classes: int | None = None):
    """TP / (TP + FP): of the samples called positive, the share that are."""
    return _reduce(_cm(y_true, y_pred, num_classes), lambda tp, fp, fn, tn: tp, lambda tp, fp, fn, tn: tp + fp, average)


def recall(y_true, y_pred, average: Average = "binary", num_classes: int | None = None):
    """TP / (TP + FN), also called sensitivity or true-positive rate."""
    return _reduce(_cm(y_true, y_pred, num_classes), lambda tp, fp, fn, tn: tp, lambda tp, fp, fn, tn: tp + fn, average)


sensitivity = recall


def specificity(y_true, y_pred, average: Average = "binary", num_classes: int | None = None):
    """TN / (TN + FP): of the true negatives, the share called negative."""
    return _reduce(_cm(y_true, y_pred, num_classes), lambda tp, fp, fn, tn: tn, lambda tp, fp, fn, tn: tn + fp, average)


def f1_score(y_true, y_pred, average: Average = "binary", num_classes: int | None = None):
    """2TP / (2TP + FP + FN), the harmonic mean of precision and recall (equal to Dice on masks)."""
    return _reduce(_cm(y_true, y_pred, num_classes), lambda tp, fp, fn, tn: 2 * tp,
                   lambda tp, fp, fn, tn: 2 * tp + fp + fn, average)


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean recall over the classes present in ``y_true`` (robust to class imbalance)."""
    cm = confusion_matrix(y_true, y_pred)
    present = cm.sum(axis=1) > 0
    return float((np.diag(cm)[present] / cm.sum(axis=1)[present]).mean())


def classification_report(y_true, y_pred) -> dict[str, float]:
    """The Table 2 numbers for a binary problem in one dict (positive class = 1)."""
    return {
        "accuracy": accuracy(y_true, y_pred),
        "precision": precision(y_true, y_pred),
        "recall": recall(y_true, y_pred),
        "specificity": specificity(y_true, y_pred),
        "f1": f1_score(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
    }


# ---------------------------------------------------------------------------------------------
# Score-based curves


def _binary_scores(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    t = check_finite(as_array(y_true, "y_true"), "y_true").ravel()
    s = check_finite(as_array(scores, "scores", dtype=float), "scores").ravel()
    check_same_shape(t, s, ("y_true", "scores"))
    values = set(np.unique(t).tolist())
    if not values <= {0, 1}:
        raise LumbarLabError(f"y_true must hold 0/1 labels for a binary curve, got {sorted(values)[:5]}.")
    if 1 not in values:
        raise LumbarLabError("y_true has no positive samples: ROC and precision–recall curves are undefined.")
    return t.astype(np.int64), s


def _cumulative(t: np.ndarray, s: np.ndarray):
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    distinct = np.where(np.diff(s))[0]
    ends = np.r_[distinct, t.size - 1]
    tps = np.cumsum(t)[ends].astype(float)
    fps = (ends + 1 - tps).astype(float)
    return tps, fps, s[ends]


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate, thresholds), thresholds descending, starting at +inf.

    A sample is called positive when ``score >= threshold``.
    """
    t, s = _binary_scores(y_true, scores)
    negatives = int((t == 0).sum())
    if negatives == 0:
        raise LumbarLabError("y_true has no negative samples: the false-positive rate is undefined.")
    tps, fps, thr = _cumulative(t, s)
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / negatives]
    return fpr, tpr, np.r_[np.inf, thr]


def roc_auc(y_true, scores, average: Literal["macro", "micro"] = "macro") -> float:
    """Area under the ROC curve (trapezoids). For (N, K) scores and labels 0…K−1, one-vs-rest:
    ``macro`` averages the per-class AUCs, ``micro`` pools all (sample, class) pairs."""
    s = as_array(scores, "scores", dtype=float)
    if s.ndim == 2 and s.shape[1] > 1:
        t = as_array(y_true, "y_true").ravel().astype(np.int64)
        onehot = np.eye(s.shape[1], dtype=np.int64)[t]
        if average == "micro":
            return roc_auc(onehot.ravel(), s.ravel())
        return float(np.mean([roc_auc(onehot[:, k], s[:, k]) for k in range(s.shape[1])]))
    fpr, tpr, _ = roc_curve(y_true, s.ravel())
    return float(np.trapezoid(tpr, fpr))


def precision_recall_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) with thresholds ascending, as scikit-learn returns them;
    the last point is (precision 1, recall 0) with no threshold."""
    t, s = _binary_scores(y_true, scores)
    tps, fps, thr = _cumulative(t, s)
    prec = tps / (tps + fps)
    rec = tps / tps[-1]
    # ascending thresholds, as scikit-learn ≥ 1.1 returns them (every distinct score kept)
    return np.r_[prec[::-1], 1.0], np.r_[rec[::-1], 0.0], thr[::-1]


def average_precision(y_true, scores, method: Literal["all-point", "11-point"] = "all-point") -> float:
    """Area under the precision–recall curve.

    * ``"all-point"``: Σ_n (R_n − R_{n−1}) P_n over the thresholds (scikit-learn's definition,
      no interpolation).
    * ``"11-point"``: mean over r ∈ {0, 0.1, …, 1} of the interpolated precision
      max_{R ≥ r} P (PASCAL VOC 2007).
    """
    prec, rec, _ = precision_recall_curve(y_true, scores)
    if method == "all-point":
        return float(-np.sum(np.diff(rec) * prec[:-1]))
    if method == "11-point":
        return float(np.mean([prec[rec >= r].max() if np.any(rec >= r) else 0.0 for r in np.linspace(0, 1, 11)]))
    raise LumbarLabError(f"method must be 'all-point' or '11-point', got {method!r}.")
