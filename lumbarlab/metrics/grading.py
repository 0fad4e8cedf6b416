"""Agreement on ordinal grades and on angle sets.

* Cohen's kappa (Cohen 1960) with optional linear or quadratic weights (Cohen 1968), the usual
  agreement measure for Pfirrmann grades: κ = 1 − Σ w_ij O_ij / Σ w_ij E_ij with observed
  proportions O, chance-expected E = outer(row, column marginals), and w_ij = 0 on the
  diagonal, 1 off it (unweighted), |i − j| (linear) or (i − j)² (quadratic).
* The sample-weighted log loss of the RSNA 2024 Lumbar Spine Degenerative Classification challenge (its
  evaluation page): each graded level weighs 1 when its true severity is normal/mild, 2 when moderate and 4 when
  severe, and the loss is −Σ w_i log p_i(y_i) / Σ w_i over the predicted probabilities of the true grades —
  scikit-learn's ``log_loss`` with those ``sample_weight``.
* SMAPE as the AASCE 2019 challenge scores Cobb angles (Wang et al., MedIA 2021): for each image,
  Σ_j |x_j − y_j| / Σ_j (x_j + y_j), averaged over images, in percent.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array, check_finite, check_same_shape
from lumbarlab.metrics.classification import confusion_matrix

__all__ = ["cohen_kappa", "smape", "weighted_log_loss", "RSNA_SEVERITY_WEIGHTS"]

#: RSNA 2024's weights of normal/mild, moderate and severe.
RSNA_SEVERITY_WEIGHTS: tuple[float, ...] = (1.0, 2.0, 4.0)


def cohen_kappa(y_true, y_pred, weights: Literal["linear", "quadratic"] | None = None,
                num_classes: int | None = None) -> float:
    """Cohen's kappa between two raters' integer grades (e.g. Pfirrmann 1–5)."""
    cm = confusion_matrix(y_true, y_pred, num_classes).astype(float)
    k = cm.shape[0]
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j).astype(float)
    elif weights == "quadratic":
        w = ((i - j) ** 2).astype(float)
    else:
        raise LumbarLabError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}.")
    observed = cm / cm.sum()
    expected = np.outer(cm.sum(axis=1), cm.sum(axis=0)) / cm.sum() ** 2
    denom = float((w * expected).sum())
    if denom == 0:
        return 1.0 if float((w * observed).sum()) == 0 else 0.0  # both raters used one grade only
    return float(1.0 - (w * observed).sum() / denom)


def smape(y_true, y_pred) -> float:
    """Symmetric mean absolute percentage error (%) of angle sets, ``(N, A)`` or ``(A,)`` arrays."""
    t = check_finite(as_array(y_true, "y_true", dtype=float), "y_true")
    p = check_finite(as_array(y_pred, "y_pred", dtype=float), "y_pred")
    check_same_shape(t, p)
    if t.ndim == 1:
        t, p = t[None], p[None]
    if np.any(t < 0) or np.any(p < 0):
        raise LumbarLabError("SMAPE is defined for non-negative angles (Cobb angles are magnitudes).")
    den = (t + p).sum(axis=1)
    if np.any(den == 0):
        raise LumbarLabError("an image has all angles zero in both sets; SMAPE is undefined there.")
    return float(100.0 * np.mean(np.abs(t - p).sum(axis=1) / den))


def weighted_log_loss(y_true, probabilities, class_weights=RSNA_SEVERITY_WEIGHTS, eps: float = 1e-15) -> float:
    """Log loss in nats with each sample weighted by its true class (RSNA 2024: 1, 2, 4 for normal/mild,
    moderate, severe): rows of ``probabilities`` (N, K) are renormalised and clipped to [eps, 1 − eps] as
    scikit-learn's ``log_loss`` does.

    Example:
        >>> round(weighted_log_loss([0, 2], [[0.8, 0.1, 0.1], [0.2, 0.3, 0.5]]), 4)   # (1·0.223 + 4·0.693) / 5
        0.5991
    """
    y = as_array(y_true, "y_true", dtype=int).ravel()
    p = check_finite(as_array(probabilities, "probabilities", dtype=float), "probabilities")
    w_class = np.asarray(class_weights, float)
    if p.ndim != 2 or p.shape[0] != y.size or p.shape[1] != w_class.size:
        raise LumbarLabError(f"probabilities must be (N, {w_class.size}) for {y.size} grades, got {p.shape}.")
    if y.size == 0 or y.min() < 0 or y.max() >= w_class.size:
        raise LumbarLabError(f"grades must lie in 0…{w_class.size - 1}.")
    p = p / p.sum(axis=1, keepdims=True)
    p = np.clip(p, eps, 1.0 - eps)
    w = w_class[y]
    return float(-(w * np.log(p[np.arange(y.size), y])).sum() / w.sum())
