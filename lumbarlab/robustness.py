"""Domain shift: how a model trained at one site does at others, and what helps — measured honestly.

* :func:`cross_site_table` → :class:`SiteTable`: a metric for every (train site, test site) pair and every seed;
  the drop is the in-site value minus the value at another site.
* :func:`seed_spread` → :class:`Spread` and :func:`paired_difference`: the Student-t interval over seeds of a
  metric, or of a comparison run on the same seeds — :mod:`lumbarlab.metrics.seeds`, re-exported here because
  every table of a domain-shift study needs them.
* :func:`predict_tta`: test-time augmentation, the average of the softmax over transformed copies of each input,
  each dense output mapped back before averaging (Wang et al., "Aleatoric uncertainty estimation with test-time
  augmentation for medical image segmentation", Neurocomputing 2019). Transforms: :class:`Flip`, :class:`Shift`,
  :class:`Gamma`; 2D and 3D alike.
* :func:`normalise_intensity`: per-image intensity normalisation (percentile window, z-score, or histogram
  equalisation), a classic answer to scanners that differ in contrast.
* :func:`threshold_for_sensitivity` and :func:`transfer_threshold`: choose an operating point at one site and see
  what it does at another — the sensitivity a screening threshold promised is a property of a site's scores, not
  of the model.

* :func:`mean_auc`: the AUC of every column of a score array at once (Mann–Whitney, ties counted half) — fast
  enough to bootstrap over test cases with :func:`lumbarlab.metrics.bootstrap_ci`, seeds and sites in the columns,
  and, given a second array, the paired difference of two arms on the same resampled cases.
* :func:`prior_shift`: move a probability from the prevalence it was trained at to another site's prevalence
  (Saerens et al., Neural Computation 2002): what changes with the population, separated from what the images do.

Calibration uses :func:`lumbarlab.metrics.expected_calibration_error` and
:func:`lumbarlab.metrics.reliability_curve` in the binary form of Naeini et al. (AAAI 2015): the bins hold the
predicted probability of *slip*, not — as in Guo et al. (ICML 2017) — the confidence of the predicted class. For
two classes the two differ: a case at p(slip) = 0.1 sits in Guo's 0.9 bin.

Example:
    >>> print(seed_spread([0.80, 0.84, 0.82]))
    0.820 ± 0.020 (95 % CI 0.770–0.870, n=3)
    >>> threshold_for_sensitivity([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 1.0)
    0.35
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics.seeds import Spread, paired_seed_difference, seed_spread

__all__ = ["Spread", "seed_spread", "paired_difference", "SiteTable", "cross_site_table", "Flip", "Shift", "Gamma",
           "default_tta", "predict_tta", "normalise_intensity", "threshold_for_sensitivity", "operating_point",
           "ThresholdTransfer", "transfer_threshold", "NORMALISATIONS", "mean_auc", "prior_shift"]


# --- spread over seeds: one implementation, in lumbarlab.metrics.seeds ---------------------------------------------
paired_difference = paired_seed_difference  # the name this module's lessons use for a paired comparison over seeds


# --- the train-site × test-site table ------------------------------------------------------------------------------
@dataclass
class SiteTable:
    """A metric for every (train site, test site) pair and seed.

    Attributes:
        train: names of the training sites (rows).
        test: names of the test sites (columns).
        values: (rows, columns, seeds) array of the metric.
        metric: the metric's name, for tables and figures.
    """

    train: tuple[str, ...]
    test: tuple[str, ...]
    values: np.ndarray
    metric: str = "metric"

    def mean(self) -> np.ndarray:
        """(rows, columns) mean over seeds."""
        return self.values.mean(axis=2)

    def sd(self) -> np.ndarray:
        """(rows, columns) sample standard deviation over seeds (NaN with one seed)."""
        if self.values.shape[2] < 2:
            return np.full(self.values.shape[:2], np.nan)
        return self.values.std(axis=2, ddof=1)

    def spread(self, train: str, test: str, confidence: float = 0.95) -> Spread:
        """:func:`seed_spread` of one cell."""
        return seed_spread(self.values[self._row(train), self._col(test)], confidence)

    def drop(self, train: str, test: str) -> np.ndarray:
        """Per seed, the in-site value of ``train`` minus its value at ``test`` (positive: worse away from home).

        Example:
            >>> t = SiteTable(("A", "B"), ("A", "B"), np.array([[[0.9], [0.7]], [[0.6], [0.8]]]), "AUC")
            >>> t.drop("A", "B").round(3).tolist(), t.drop("B", "A").round(3).tolist()
            ([0.2], [0.2])
        """
        row = self._row(train)
        return self.values[row, self._col(train)] - self.values[row, self._col(test)]

    def _row(self, name: str) -> int:
        if name not in self.train:
            raise LumbarLabError(f"{name!r} is not a training site of this table ({', '.join(self.train)}).")
        return self.train.index(name)

    def _col(self, name: str) -> int:
        if name not in self.test:
            raise LumbarLabError(f"{name!r} is not a test site of this table ({', '.join(self.test)}); an in-site "
                                 "value needs the training site among the test sites.")
        return self.test.index(name)

    def to_markdown(self, digits: int = 3) -> str:
        """The table as Markdown: mean ± sd over seeds per cell, the in-site cell in bold.

        Example:
            >>> t = SiteTable(("A",), ("A", "B"), np.array([[[0.9, 0.8], [0.7, 0.6]]]), "AUC")
            >>> print(t.to_markdown(2))
            | train ↓ / test → (AUC) | A | B |
            | --- | --- | --- |
            | A | **0.85 ± 0.07** | 0.65 ± 0.07 |
        """
        mean, sd = self.mean(), self.sd()
        lines = [f"| train ↓ / test → ({self.metric}) | " + " | ".join(self.test) + " |",
                 "| --- | " + " | ".join("---" for _ in self.test) + " |"]
        for i, row in enumerate(self.train):
            cells = []
            for j, col in enumerate(self.test):
                text = f"{mean[i, j]:.{digits}f}" + ("" if np.isnan(sd[i, j]) else f" ± {sd[i, j]:.{digits}f}")
                cells.append(f"**{text}**" if row == col else text)
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def cross_site_table(evaluate: Callable[[object, object], float], models: Mapping[str, Sequence[object]],
                     tests: Mapping[str, object], metric: str = "metric") -> SiteTable:
    """Evaluate every model on every test site.

    Args:
        evaluate: ``evaluate(model, test_data) -> float`` (e.g. the AUC of a classifier on a split).
        models: training site → one trained model per seed (the same number of seeds for every site).
        tests: test site → its data, whatever ``evaluate`` takes.
        metric: name of the metric.

    Example:
        >>> models = {"A": [0.0, 0.1], "B": [0.9, 1.0]}  # any objects: here numbers that stand for models
        >>> tests = {"A": 0.0, "B": 1.0}
        >>> table = cross_site_table(lambda m, d: 1 - abs(m - d), models, tests, "closeness")
        >>> table.mean().round(2).tolist()
        [[0.95, 0.05], [0.05, 0.95]]
    """
    if not models or not tests:
        raise LumbarLabError("cross_site_table needs at least one training site and one test site.")
    seeds = {len(v) for v in models.values()}
    if len(seeds) != 1 or 0 in seeds:
        raise LumbarLabError(f"every training site needs the same number (≥ 1) of models, one per seed; got "
                             f"{ {k: len(v) for k, v in models.items()} }.")
    values = np.array([[[float(evaluate(m, data)) for m in runs] for data in tests.values()] for runs in models.values()])
    return SiteTable(tuple(models), tuple(tests), values, metric)


# --- test-time augmentation ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Flip:
    """Mirror the spatial ``axis`` (0 = the first spatial axis); its own inverse."""

    axis: int = -1

    def forward(self, x):
        return x.flip(_spatial_axis(x, self.axis))

    def inverse(self, y):
        return y.flip(_spatial_axis(y, self.axis))


@dataclass(frozen=True)
class Shift:
    """Roll the spatial axes by ``offsets`` voxels (one per spatial axis; what leaves one side comes back at the
    other, so the inverse is exact)."""

    offsets: tuple[int, ...] = (0, 0)

    def forward(self, x):
        return x.roll(tuple(self.offsets), tuple(range(x.ndim - len(self.offsets), x.ndim)))

    def inverse(self, y):
        return y.roll(tuple(-o for o in self.offsets), tuple(range(y.ndim - len(self.offsets), y.ndim)))


@dataclass(frozen=True)
class Gamma:
    """Raise intensities in [0, 1] to the power ``gamma`` (a contrast change; outputs need no inverse)."""

    gamma: float = 1.0

    def forward(self, x):
        return x.clamp(0.0, 1.0) ** self.gamma

    def inverse(self, y):
        return y


def _spatial_axis(x, axis: int) -> int:
    """Tensor axis of spatial ``axis`` of an (N, C, *spatial) tensor (negative counts from the end)."""
    return axis if axis < 0 else 2 + axis


def default_tta(spatial_dims: int = 2, shift: int = 4, gammas: tuple[float, ...] = (0.8, 1.25)) -> list:
    """The identity, a shift of ``shift`` voxels each way along every spatial axis, and contrast ``gammas`` — no
    flips, because a lateral radiograph's anterior side is not its posterior side.

    Example:
        >>> [type(t).__name__ for t in default_tta(2)]
        ['Shift', 'Shift', 'Shift', 'Shift', 'Shift', 'Gamma', 'Gamma']
    """
    out: list = [Shift((0,) * spatial_dims)]
    for d in range(spatial_dims):
        for s in (shift, -shift):
            offsets = [0] * spatial_dims
            offsets[d] = s
            out.append(Shift(tuple(offsets)))
    return out + [Gamma(g) for g in gammas]


def predict_tta(model, images, transforms: Sequence | None = None, dense: bool = False, batch_size: int = 32,
                device=None) -> np.ndarray:
    """Softmax probabilities of ``model`` averaged over ``transforms`` of every input (Wang et al., Neurocomputing
    2019); dense outputs (segmentation) are mapped back by each transform's inverse before averaging.

    Args:
        model: a torch module returning logits (N, K) or, with ``dense=True``, (N, K, *spatial).
        images: (N, C, *spatial) or (N, *spatial) for one channel; 2D or 3D; numpy or torch.
        transforms: objects with ``forward``/``inverse`` (:class:`Flip`, :class:`Shift`, :class:`Gamma`); None or
            ``[]`` gives the plain prediction.
        dense: whether the model predicts a map (segmentation) rather than one vector per input.
        batch_size: inputs per forward pass.
        device: where to compute; default the model's device.

    Returns:
        (N, K) or (N, K, *spatial) float32 probabilities.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> x = torch.rand(3, 1, 8, 8)
        >>> bool(np.allclose(predict_tta(net, x, [Flip(-1), Flip(-2)]), predict_tta(net, x), atol=1e-6))
        True
    """
    import torch

    x = torch.as_tensor(np.asarray(images, dtype=np.float32) if not isinstance(images, torch.Tensor) else images)
    if x.ndim < 3:
        raise LumbarLabError(f"images must be (N, C, *spatial) or (N, *spatial) with 2 or 3 spatial axes, got {tuple(x.shape)}.")
    if x.ndim == _model_dims(model) + 1:  # (N, *spatial): one channel
        x = x[:, None]
    if device is None:
        params = next(iter(model.parameters()), None)
        device = params.device if params is not None else torch.device("cpu")
    steps = list(transforms) if transforms else [Shift((0,) * (x.ndim - 2))]
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size].to(device)
            total = None
            for t in steps:
                prob = torch.softmax(model(t.forward(batch)).float(), dim=1)
                prob = t.inverse(prob) if dense else prob
                total = prob if total is None else total + prob
            out.append((total / len(steps)).cpu())
    model.train(was_training)
    return torch.cat(out).numpy().astype(np.float32)


def _model_dims(model) -> int:
    """Spatial axes the model convolves: 3 when its first convolution is 3D, else 2."""
    import torch

    first = next((m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))), None)
    return 3 if isinstance(first, torch.nn.Conv3d) else 2


# --- intensity normalisation ----------------------------------------------------------------------------------------
NORMALISATIONS = ("none", "percentile", "zscore", "histogram")


def normalise_intensity(images, method: str = "histogram", percentiles: tuple[float, float] = (1.0, 99.0)) -> np.ndarray:
    """Normalise every image (2D or 3D) on its own, so that sites that differ in brightness, contrast or gamma meet
    the network alike.

    Args:
        images: (N, *spatial) array; each of the N images is normalised by its own values.
        method: ``"percentile"`` (the ``percentiles`` window mapped to [0, 1], clipped), ``"zscore"`` (mean 0, sd 1)
            or ``"histogram"`` (equalisation: each value → its rank among the image's values, in [0, 1] — this
            undoes any monotone contrast change such as a gamma, exactly), or ``"none"``.
        percentiles: the window of ``"percentile"``.

    Returns:
        float32 array of the input's shape.

    Example:
        >>> x = np.array([[0.0, 0.1, 0.4, 0.9]])
        >>> bool(np.array_equal(normalise_intensity(x ** 2), normalise_intensity(x)))  # a gamma is undone
        True
        >>> [round(float(v), 2) for v in normalise_intensity(x, "zscore")[0]]
        [-1.0, -0.71, 0.14, 1.57]
    """
    x = np.asarray(images, dtype=np.float32)
    if method not in NORMALISATIONS:
        raise LumbarLabError(f"method must be one of {', '.join(NORMALISATIONS)}, got {method!r}.")
    if x.ndim < 2:
        raise LumbarLabError(f"images must be (N, *spatial), got shape {x.shape}.")
    if method == "none":
        return x.copy()
    flat = x.reshape(len(x), -1)
    if method == "zscore":
        out = (flat - flat.mean(1, keepdims=True)) / np.maximum(flat.std(1, keepdims=True), 1e-6)
    elif method == "percentile":
        lo, hi = (np.percentile(flat, q, axis=1, keepdims=True) for q in percentiles)
        out = np.clip((flat - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)
    else:  # ties share a rank, so flat regions (collimated borders) stay flat
        out = np.empty_like(flat)
        for i, row in enumerate(flat):
            values, inverse = np.unique(row, return_inverse=True)
            counts = np.bincount(inverse)
            mid_rank = np.cumsum(counts) - (counts + 1) / 2.0  # mean rank of each distinct value
            out[i] = mid_rank[inverse] / max(row.size - 1, 1)
    return out.reshape(x.shape).astype(np.float32)


# --- operating points across sites ----------------------------------------------------------------------------------
def threshold_for_sensitivity(y_true, scores, target: float = 0.9) -> float:
    """The highest threshold (call positive when ``score >= threshold``) whose sensitivity reaches ``target``.

    Args:
        y_true: 0/1 labels.
        scores: predicted probability or score of class 1.
        target: wanted sensitivity in (0, 1].

    Example:
        >>> threshold_for_sensitivity([0, 1, 1, 1, 1], [0.2, 0.3, 0.6, 0.7, 0.9], 0.75)  # 3 of 4 positives ≥ 0.6
        0.6
    """
    from lumbarlab.metrics import roc_curve

    if not 0.0 < target <= 1.0:
        raise LumbarLabError(f"target sensitivity must lie in (0, 1], got {target}.")
    _, tpr, thresholds = roc_curve(y_true, scores)
    return float(thresholds[int(np.argmax(tpr >= target - 1e-12))])


def operating_point(y_true, scores, threshold: float) -> tuple[float, float]:
    """(sensitivity, specificity) of calling ``score >= threshold`` positive.

    Example:
        >>> operating_point([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], 0.5)
        (0.5, 0.5)
    """
    from lumbarlab.metrics import sensitivity, specificity

    y = np.asarray(y_true).astype(int).ravel()
    pred = (np.asarray(scores, dtype=float).ravel() >= threshold).astype(int)
    if not (np.any(y == 1) and np.any(y == 0)):
        raise LumbarLabError("an operating point needs positive and negative cases.")
    return float(sensitivity(y, pred, num_classes=2)), float(specificity(y, pred, num_classes=2))


@dataclass(frozen=True)
class ThresholdTransfer:
    """A threshold chosen at ``source`` for ``target`` sensitivity, and (sensitivity, specificity) at every site."""

    source: str
    target: float
    threshold: float
    points: dict[str, tuple[float, float]]

    def sensitivity(self, site: str) -> float:
        return self.points[site][0]

    def specificity(self, site: str) -> float:
        return self.points[site][1]


def transfer_threshold(sites: Mapping[str, tuple], source: str, target: float = 0.9) -> ThresholdTransfer:
    """Choose the threshold at ``source`` that reaches ``target`` sensitivity there
    (:func:`threshold_for_sensitivity`), then apply it unchanged at every site.

    Args:
        sites: site name → (labels, scores).
        source: the site whose cases choose the threshold.
        target: the wanted sensitivity.

    Example:
        >>> sites = {"A": ([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.8]), "B": ([0, 0, 1, 1], [0.05, 0.1, 0.3, 0.75])}
        >>> t = transfer_threshold(sites, "A", target=1.0)
        >>> t.threshold, t.points["A"], t.points["B"]  # B's scores run lower: half its positives are missed
        (0.7, (1.0, 1.0), (0.5, 1.0))
    """
    if source not in sites:
        raise LumbarLabError(f"source site {source!r} is not among {', '.join(sites)}.")
    threshold = threshold_for_sensitivity(*sites[source], target)
    points = {name: operating_point(y, s, threshold) for name, (y, s) in sites.items()}
    return ThresholdTransfer(source, float(target), threshold, points)


# --- bootstrap-friendly AUC and prevalence -------------------------------------------------------------------------
def mean_auc(y_true, scores, baseline=None) -> float:
    """Mean over columns of the AUC of ``scores`` (N, ...) against labels ``y_true`` (N,); with ``baseline`` of the
    same shape, the mean AUC of ``scores`` minus that of ``baseline`` (a paired comparison on the same cases).

    The AUC is the Mann–Whitney probability that a random positive outscores a random negative, ties counted half —
    the area under the trapezoid ROC curve. Vectorised over columns, so that
    :func:`lumbarlab.metrics.bootstrap_ci` (which resamples axis 0: the test cases) can call it a thousand times.
    Raises :class:`~lumbarlab.errors.LumbarLabError` without both classes (the bootstrap skips such resamples).

    Example:
        >>> mean_auc([0, 0, 1, 1], [[0.1, 0.5], [0.4, 0.5], [0.35, 0.9], [0.8, 0.7]])  # columns: 0.75 and 1.0
        0.875
        >>> from lumbarlab.metrics import roc_auc
        >>> mean_auc([0, 1, 0, 1], [0.2, 0.2, 0.6, 0.9]) == roc_auc([0, 1, 0, 1], [0.2, 0.2, 0.6, 0.9])
        True
    """
    from scipy.stats import rankdata

    y = np.asarray(y_true).astype(int).ravel()
    s = np.asarray(scores, dtype=float)
    if s.shape[0] != y.size:
        raise LumbarLabError(f"scores need one row per label, got {s.shape[0]} rows for {y.size} labels.")
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        raise LumbarLabError("an AUC needs positive and negative cases.")
    ranks = rankdata(s.reshape(len(y), -1), axis=0)
    auc = (ranks[y == 1].sum(0) - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    value = float(auc.mean())
    return value if baseline is None else value - mean_auc(y, baseline)


def prior_shift(probabilities, trained_prevalence: float, new_prevalence: float) -> np.ndarray:
    """Probabilities of class 1 moved from the prevalence a model was trained at to another one: the logit shifts
    by log(π_new / (1 − π_new)) − log(π_old / (1 − π_old)) (Bayes' rule, assuming p(image | class) is unchanged;
    Saerens et al., Neural Computation 2002).

    Example:
        >>> prior_shift([0.5, 0.9], 0.5, 0.25).round(3).tolist()  # at a quarter of the old odds
        [0.25, 0.75]
    """
    for label, pi in (("trained_prevalence", trained_prevalence), ("new_prevalence", new_prevalence)):
        if not 0.0 < pi < 1.0:
            raise LumbarLabError(f"{label} must lie in (0, 1), got {pi}.")
    p = np.clip(np.asarray(probabilities, dtype=float), 1e-7, 1 - 1e-7)
    logit = np.log(p / (1 - p)) + np.log(new_prevalence / (1 - new_prevalence)) \
        - np.log(trained_prevalence / (1 - trained_prevalence))
    return 1.0 / (1.0 + np.exp(-logit))
