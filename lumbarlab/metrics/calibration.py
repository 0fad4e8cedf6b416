"""Calibration: whether a classifier's probabilities mean what they say.

A model is calibrated when, of all cases it gives probability :math:`p`, a share :math:`p` are positive. The
reliability curve bins the predicted probabilities into ``n_bins`` equal-width bins and compares each bin's mean
probability (confidence) with its observed frequency of positives; the expected calibration error weighs the gaps by
the bins' sizes (Naeini et al., AAAI 2015; Guo et al., ICML 2017):

.. math:: \\mathrm{ECE} = \\sum_{b=1}^{B} \\frac{|S_b|}{N} \\, \\bigl| \\bar{y}_b - \\bar{p}_b \\bigr|

The bins match scikit-learn's ``calibration_curve(strategy="uniform")`` (empty bins are left out).

Example:
    >>> round(expected_calibration_error([0, 0, 1, 1], [0.1, 0.1, 0.9, 0.9], n_bins=10), 6)  # 10 % off in both bins
    0.1
"""

from __future__ import annotations

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array

__all__ = ["reliability_curve", "expected_calibration_error"]


def reliability_curve(y_true, probabilities, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observed frequency of positives, mean predicted probability, count) per non-empty bin of equal width on
    [0, 1], for a binary label and the predicted probability of class 1.

    Example:
        >>> freq, conf, count = reliability_curve([0, 1, 1, 1], [0.2, 0.3, 0.8, 0.9], n_bins=2)
        >>> freq.tolist(), conf.tolist(), count.tolist()
        ([0.5, 1.0], [0.25, 0.8500000000000001], [2, 2])
    """
    y = as_array(y_true).astype(float).ravel()
    p = as_array(probabilities).astype(float).ravel()
    if y.shape != p.shape or y.size == 0:
        raise LumbarLabError(f"labels {y.shape} and probabilities {p.shape} must be non-empty and of one length.")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise LumbarLabError("probabilities must lie in [0, 1].")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise LumbarLabError("labels must be 0 or 1 (one class against the rest).")
    if n_bins < 1:
        raise LumbarLabError(f"n_bins must be at least 1, got {n_bins}.")
    # scikit-learn's uniform bins: a probability on an interior edge belongs to the bin below it
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], p)
    count = np.bincount(which, minlength=n_bins)
    pos = np.bincount(which, weights=y, minlength=n_bins)
    conf = np.bincount(which, weights=p, minlength=n_bins)
    keep = count > 0
    return pos[keep] / count[keep], conf[keep] / count[keep], count[keep]


def expected_calibration_error(y_true, probabilities, n_bins: int = 10) -> float:
    """Expected calibration error (0 = calibrated) of binary ``probabilities`` against labels ``y_true``, over
    ``n_bins`` equal-width bins — the formula of the module docstring."""
    freq, conf, count = reliability_curve(y_true, probabilities, n_bins)
    return float(np.sum(count * np.abs(freq - conf)) / np.sum(count))
