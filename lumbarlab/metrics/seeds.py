"""The spread of a metric over training seeds: mean, sample standard deviation and the Student-t interval of the
mean, :math:`\\bar{x} \\pm t_{n-1,\\,1-\\alpha/2}\\, s/\\sqrt{n}` (Student, Biometrika 1908).

With the 2–5 seeds a lesson can afford, the t quantile (12.7 for n = 2, 4.3 for n = 3 at 95 %) is what keeps the
interval honest: a normal quantile of 1.96 would claim differences the seeds cannot back. For a comparison run on
the same seeds as its baseline, :func:`paired_seed_difference` takes the interval of the per-seed differences, so the
noise both arms share (the data order, the initial weights of shared layers) cancels. Resampling *test cases* is
:func:`lumbarlab.metrics.bootstrap_ci`'s job; the two intervals answer different questions and a lesson may need both.

Example:
    >>> print(seed_spread([0.80, 0.84, 0.82]))
    0.820 ± 0.020 (95 % CI 0.770–0.870, n=3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = ["Spread", "seed_spread", "paired_seed_difference"]


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation and a ``confidence`` Student-t interval of a metric over ``n`` seeds.
    ``sd``, ``low`` and ``high`` are NaN for a single seed: one run has no spread."""

    mean: float
    sd: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        """``high − mean``: the ± of the interval (NaN for one seed)."""
        return self.high - self.mean

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.3f} (n=1: no spread)"
        return (f"{self.mean:.3f} ± {self.sd:.3f} ({100 * self.confidence:.0f} % CI {self.low:.3f}–{self.high:.3f}, "
                f"n={self.n})")


def seed_spread(values: Sequence[float], confidence: float = 0.95) -> Spread:
    """Mean ± sd of ``values`` (one per seed) and the Student-t interval of their mean.

    Args:
        values: the metric of each seed's run (NaNs are refused: a run that failed must be reported, not dropped).
        confidence: coverage of the interval, in (0, 1).

    Example:
        >>> s = seed_spread([1.0, 3.0])
        >>> s.mean, s.sd, round(float(s.half_width), 2)  # t(1, 0.975) = 12.71: two seeds say little
        (2.0, 1.4142135623730951, 12.71)
    """
    from scipy import stats

    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise LumbarLabError(f"seed_spread needs finite values, one per seed; got {x.tolist()}.")
    if not 0.0 < confidence < 1.0:
        raise LumbarLabError(f"confidence must lie in (0, 1), got {confidence}.")
    mean = float(x.mean())
    if x.size < 2:
        return Spread(mean, float("nan"), float("nan"), float("nan"), 1, confidence)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * sd / np.sqrt(x.size))  # plain floats: JSON-able
    return Spread(mean, sd, mean - half, mean + half, int(x.size), confidence)


def paired_seed_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Spread:
    """:func:`seed_spread` of ``a - b`` seed by seed: the effect of a change run on the same seeds as its baseline.
    An interval that excludes 0 is a difference these seeds can tell.

    Args:
        a, b: the metric of each seed, in the same seed order, for the changed arm and its baseline.
        confidence: coverage of the interval, in (0, 1).

    Example:
        >>> d = paired_seed_difference([0.80, 0.85, 0.90], [0.70, 0.76, 0.79])
        >>> round(d.mean, 3), bool(d.low > 0)
        (0.1, True)
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise LumbarLabError(f"paired values need one per seed in both arms, got {a.size} and {b.size}.")
    return seed_spread(a - b, confidence)
