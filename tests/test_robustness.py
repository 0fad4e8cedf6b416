"""Site-shift evaluation, test-time augmentation, normalisation, threshold transfer and seed spreads: known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lumbarlab import metrics
from lumbarlab import robustness as rb
from lumbarlab.errors import LumbarLabError


def test_seed_spreads_are_the_metrics_ones():
    """One implementation of the seed interval: the names kept here for the lessons are lumbarlab.metrics' own."""
    assert rb.seed_spread is metrics.seed_spread and rb.paired_difference is metrics.paired_seed_difference
    assert rb.Spread is metrics.Spread


def test_cross_site_table_in_site_values_drops_and_markdown():
    models = {"A": ["a1", "a2"], "B": ["b1", "b2"]}
    value = {("a1", "A"): 0.9, ("a2", "A"): 0.8, ("a1", "B"): 0.6, ("a2", "B"): 0.7,
             ("b1", "A"): 0.5, ("b2", "A"): 0.6, ("b1", "B"): 0.95, ("b2", "B"): 0.85}
    table = rb.cross_site_table(lambda m, site: value[(m, site)], models, {"A": "A", "B": "B"}, "AUC")
    assert table.values.shape == (2, 2, 2)
    assert np.allclose(table.mean(), [[0.85, 0.65], [0.55, 0.9]])
    assert table.drop("A", "B").tolist() == pytest.approx([0.3, 0.1])
    assert table.drop("B", "A").tolist() == pytest.approx([0.45, 0.25])
    assert table.spread("B", "B").mean == pytest.approx(0.9)
    assert "**0.85 ± 0.07**" in table.to_markdown(2)
    with pytest.raises(LumbarLabError, match="not a test site"):
        table.drop("A", "C")
    with pytest.raises(LumbarLabError, match="same number"):
        rb.cross_site_table(lambda m, s: 0.0, {"A": [1], "B": [1, 2]}, {"A": 0})


class _Pointwise(torch.nn.Module):
    """A 1×1 convolution: equivariant to flips and shifts; pooled, invariant."""

    def __init__(self, dims: int, dense: bool):
        super().__init__()
        self.conv = (torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d)(1, 3, 1)
        self.dense = dense

    def forward(self, x):
        y = self.conv(x)
        return y if self.dense else y.flatten(2).mean(2)


@pytest.mark.parametrize("dims", [2, 3])
def test_tta_of_an_equivariant_model_equals_the_plain_prediction(dims):
    torch.manual_seed(0)
    x = torch.rand(5, 1, *([8] * dims))
    flips = [rb.Flip(a) for a in range(dims)]
    shifts = [rb.Shift(tuple([2] + [0] * (dims - 1))), rb.Shift(tuple([0] * (dims - 1) + [-3]))]
    for dense in (False, True):
        net = _Pointwise(dims, dense)
        plain = rb.predict_tta(net, x, dense=dense)
        assert plain.shape == ((5, 3) if not dense else (5, 3, *([8] * dims)))
        assert np.allclose(rb.predict_tta(net, x, flips + shifts, dense=dense), plain, atol=1e-6)
    # inputs without a channel axis are taken as one channel
    net = _Pointwise(dims, False)
    assert np.array_equal(rb.predict_tta(net, x[:, 0]), rb.predict_tta(net, x))


def test_tta_averages_the_softmax_of_each_view():
    class Bright(torch.nn.Module):  # logit of class 1 = mean intensity · 10
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            m = x.flatten(1).mean(1) * 10
            return torch.stack([torch.zeros_like(m), m], 1)

    x = torch.full((1, 1, 4, 4), 0.5)
    got = rb.predict_tta(Bright(), x, [rb.Gamma(1.0), rb.Gamma(2.0)])[0, 1]
    expected = (torch.sigmoid(torch.tensor(5.0)) + torch.sigmoid(torch.tensor(2.5))) / 2
    assert got == pytest.approx(float(expected), abs=1e-6)


def test_histogram_normalisation_undoes_a_monotone_contrast_change_in_2d_and_3d():
    rng = np.random.default_rng(0)
    for shape in ((3, 16, 16), (2, 6, 8, 8)):
        x = rng.random(shape).astype(np.float32)
        y = 0.2 + 0.5 * x ** 1.7  # another site's gain, offset and gamma
        assert np.allclose(rb.normalise_intensity(x), rb.normalise_intensity(y))
        z = rb.normalise_intensity(y, "zscore")
        assert np.allclose(z.reshape(len(z), -1).mean(1), 0, atol=1e-5)
        p = rb.normalise_intensity(y, "percentile")
        assert p.min() == 0.0 and p.max() == 1.0
    with pytest.raises(LumbarLabError, match="method"):
        rb.normalise_intensity(np.zeros((1, 4, 4)), "whiten")


def test_threshold_transfer_gives_the_hand_computed_sensitivity():
    # site A: positives score 0.6, 0.7, 0.8, 0.9; 90 % sensitivity needs 4 of 4 → threshold 0.6
    a = ([0, 0, 0, 1, 1, 1, 1], [0.1, 0.3, 0.65, 0.6, 0.7, 0.8, 0.9])
    # site B: the scores run lower; at ≥ 0.6 two of four positives and none of three negatives are called
    b = ([0, 0, 0, 1, 1, 1, 1], [0.05, 0.2, 0.4, 0.3, 0.5, 0.62, 0.95])
    t = rb.transfer_threshold({"A": a, "B": b}, "A", target=0.9)
    assert t.threshold == pytest.approx(0.6)
    assert t.points["A"] == pytest.approx((1.0, 2 / 3))
    assert t.sensitivity("B") == pytest.approx(0.5) and t.specificity("B") == pytest.approx(1.0)
    assert rb.threshold_for_sensitivity(*a, 0.5) == pytest.approx(0.8)
    with pytest.raises(LumbarLabError, match="source"):
        rb.transfer_threshold({"A": a}, "C")
    with pytest.raises(LumbarLabError, match="positive and negative"):
        rb.operating_point([1, 1], [0.2, 0.9], 0.5)


def test_ece_on_model_probabilities_equals_the_hand_computation():
    # ten cases at 0.9 of which six slip, ten at 0.2 of which three slip: (10·0.3 + 10·0.1) / 20 = 0.2
    y = [1] * 6 + [0] * 4 + [1] * 3 + [0] * 7
    p = [0.9] * 10 + [0.2] * 10
    assert metrics.expected_calibration_error(y, p) == pytest.approx(0.2)


def test_default_tta_has_no_flip_and_shifts_every_axis():
    steps = rb.default_tta(3, shift=2)
    assert not any(isinstance(s, rb.Flip) for s in steps)
    assert {s.offsets for s in steps if isinstance(s, rb.Shift)} == {
        (0, 0, 0), (2, 0, 0), (-2, 0, 0), (0, 2, 0), (0, -2, 0), (0, 0, 2), (0, 0, -2)}


def test_mean_auc_matches_roc_auc_per_column_and_pairs_two_arms():
    from lumbarlab.metrics import roc_auc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    s = rng.random((50, 3)) + y[:, None] * np.array([0.0, 0.3, 0.6])
    s[:5] = 0.5  # ties
    assert rb.mean_auc(y, s) == pytest.approx(np.mean([roc_auc(y, s[:, k]) for k in range(3)]))
    assert rb.mean_auc(y, s, s[:, ::-1]) == pytest.approx(0.0)
    with pytest.raises(rb.LumbarLabError):
        rb.mean_auc(np.ones(4), np.arange(4.0))


def test_prior_shift_is_bayes_rule_on_the_odds():
    p = np.array([0.2, 0.5, 0.8])
    q = rb.prior_shift(p, 0.5, 0.2)
    assert np.allclose(q / (1 - q), p / (1 - p) * 0.25)
    assert np.allclose(rb.prior_shift(q, 0.2, 0.5), p)
