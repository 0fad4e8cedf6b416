"""Agreement on ordinal grades and on angle sets.

* Cohen's kappa (Cohen 1960) with optional linear or quadratic weights (Cohen 1968), the usual
  agreement measure for Pfirrmann grades: κ = 1 − Σ w_ij O_ij / Σ w_ij E_ij with observed
  proportions O, chance-expected E = outer(row, column marginals), and w_ij = 0 on the
  diagonal, 1 off it (unweighted), |i − j| (linear) or (i − j)² (quadratic).
* SMAPE as the AASCE 2019 challenge scores Cobb angles (Wang et al., MedIA 2021): for each image,
  Σ_j |x_j − y_j| / Σ_j (x_j + y_j), averaged over images, in percent.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array, check_finite, check_same_shape
from lumbarlab.metrics.classification import confusion_matrix

__all__ = ["cohen_kappa", "smape"]


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
