"""Bootstrap confidence intervals for any metric (Efron & Tibshirani, *An Introduction to the
Bootstrap*, 1993, percentile method): resample cases with replacement, recompute the metric,
report the (α/2, 1 − α/2) percentiles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics._common import as_array

__all__ = ["bootstrap_ci", "Interval"]


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    confidence: float

    def __str__(self) -> str:
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}] ({100 * self.confidence:.0f} % CI)"


def bootstrap_ci(metric: Callable[..., float], *arrays, n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0, **kwargs) -> Interval:
    """Percentile-bootstrap interval of ``metric(*arrays, **kwargs)``, resampling along axis 0.

    Resamples on which the metric is undefined (it raises, e.g. no positive case for an AUC) are
    skipped; if more than half are, the interval is refused.
    """
    if not 0 < confidence < 1:
        raise LumbarLabError(f"confidence must be in (0, 1), got {confidence}.")
    data = [as_array(a, "input") for a in arrays]
    n = data[0].shape[0]
    if any(a.shape[0] != n for a in data):
        raise LumbarLabError("all arrays must have the same number of cases along axis 0.")
    estimate = float(metric(*data, **kwargs))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        try:
            values.append(float(metric(*(a[idx] for a in data), **kwargs)))
        except LumbarLabError:
            continue
    if len(values) < n_resamples / 2:
        raise LumbarLabError("the metric was undefined on most resamples; collect more cases of each class.")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return Interval(estimate, float(low), float(high), confidence)
