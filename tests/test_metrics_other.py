"""Segmentation, detection, landmark, grading, reconstruction and bootstrap metrics against
MONAI / scikit-learn / hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lumbarlab import metrics as M
from lumbarlab.errors import LumbarLabError


def _blob(shape, centre, radius):
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


# ---- segmentation --------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(arrays(np.bool_, (12, 12), elements=st.booleans()), arrays(np.bool_, (12, 12), elements=st.booleans()))
def test_dice_equals_f1_and_monai(a, b):
    from monai.metrics import compute_dice, compute_iou

    if not a.any() and not b.any():
        assert M.dice(a, b) == 1.0
        return
    assert M.dice(a, b) == pytest.approx(skm.f1_score(a.ravel(), b.ravel(), zero_division=0))
    assert M.iou(a, b) == pytest.approx(skm.jaccard_score(a.ravel(), b.ravel(), zero_division=0))
    ta, tb = torch.from_numpy(a)[None, None].float(), torch.from_numpy(b)[None, None].float()
    if a.any():  # MONAI returns NaN for an empty ground truth
        assert M.dice(a, b) == pytest.approx(float(compute_dice(tb, ta, include_background=True)))
        assert M.iou(a, b) == pytest.approx(float(compute_iou(tb, ta, include_background=True)))


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 0.8, 2.5)])
def test_surface_distances_match_monai(spacing):
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    a = _blob((40, 40, 24), (20, 20, 12), 9)
    b = _blob((40, 40, 24), (23, 19, 12), 8)
    ta, tb = (torch.from_numpy(x)[None, None].float() for x in (a, b))
    hd = float(compute_hausdorff_distance(tb, ta, percentile=95, spacing=spacing))
    asd = float(compute_average_surface_distance(tb, ta, symmetric=True, spacing=spacing))
    assert M.hausdorff95(a, b, spacing) == pytest.approx(hd, rel=1e-5)
    assert M.mean_surface_distance(a, b, spacing) == pytest.approx(asd, rel=1e-5)


def test_surface_distance_of_shifted_square_is_the_shift():
    a = np.zeros((30, 30), bool)
    a[5:15, 5:15] = True
    b = np.roll(a, 3, axis=0)
    assert M.hausdorff95(a, b, spacing=(2.0, 1.0)) == pytest.approx(6.0)  # 3 px × 2 mm
    assert M.hausdorff95(a, a) == 0.0


def test_empty_mask_conventions():
    empty, full = np.zeros((8, 8), bool), np.ones((8, 8), bool)
    assert M.dice(empty, empty) == 1.0 and M.iou(empty, empty) == 1.0
    assert M.dice(empty, full) == 0.0
    assert M.hausdorff95(empty, empty) == 0.0 and M.hausdorff95(empty, full) == float("inf")


def test_mean_dice_over_label_map():
    t = np.zeros((20, 20), int)
    t[2:8, 2:8], t[10:18, 10:18] = 20, 21
    p = t.copy()
    p[2:8, 2:5] = 0  # half of label 20 missing
    per = M.mean_dice(t, p, per_class=True)
    assert per[21] == 1.0 and per[20] == pytest.approx(2 * 18 / (36 + 18))
    assert M.mean_dice(t, p) == pytest.approx((per[20] + 1.0) / 2)
    assert M.mean_iou(t, p) == pytest.approx((0.5 + 1.0) / 2)


# ---- detection -----------------------------------------------------------------------------

def test_box_iou_hand_computed():
    a = [[0, 0, 10, 10]]
    b = [[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30]]
    np.testing.assert_allclose(M.box_iou(a, b), [[25 / 175, 1.0, 0.0]])
    assert M.box_iou([[0, 0, 0, 10, 10, 10]], [[0, 0, 5, 10, 10, 15]])[0, 0] == pytest.approx(500 / 1500)


def test_ap_hand_computed():
    gt = [{"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "labels": [1, 1]}]
    pred = [{"boxes": [[0, 0, 10, 10], [50, 50, 60, 60], [21, 21, 31, 31]], "scores": [0.9, 0.8, 0.7], "labels": [1, 1, 1]}]
    # ranked TP, FP, TP: recall .5 @ P 1, recall 1 @ P 2/3 (IoU of the third is 81/119 ≈ 0.68)
    assert M.detection_average_precision(pred, gt, 1, 0.5, method="voc") == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert M.detection_average_precision(pred, gt, 1, 0.75, method="voc") == pytest.approx(0.5)
    coco = M.detection_average_precision(pred, gt, 1, 0.5, method="coco")
    assert coco == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)
    assert M.mean_average_precision(pred, gt, M.COCO_IOU_THRESHOLDS) < M.mean_average_precision(pred, gt, 0.5)


def test_duplicate_detection_is_a_false_positive():
    gt = [{"boxes": [[0, 0, 10, 10]], "labels": [0]}]
    pred = [{"boxes": [[0, 0, 10, 10], [0, 0, 10, 10]], "scores": [0.9, 0.8], "labels": [0, 0]}]
    m = M.match_detections(pred[0]["boxes"], pred[0]["scores"], gt[0]["boxes"])
    assert m.true_positive.tolist() == [True, False]


# ---- landmarks, grading --------------------------------------------------------------------

def test_radial_error_and_success_rates():
    true = np.zeros((2, 3, 2))
    pred = true + np.array([[[3, 4], [0, 1], [0, 0]], [[0, 2.4], [6, 8], [0, 3]]])  # 5, 1, 0, 2.4, 10, 3 px
    mre, sd = M.mean_radial_error(pred, true, spacing=0.5)
    assert mre == pytest.approx(np.mean([5, 1, 0, 2.4, 10, 3]) * 0.5)
    sdr = M.success_detection_rate(pred, true, spacing=0.5)
    # errors in mm: 2.5, 0.5, 0, 1.2, 5, 1.5
    assert sdr == {2.0: pytest.approx(4 / 6), 2.5: pytest.approx(5 / 6), 3.0: pytest.approx(5 / 6), 4.0: pytest.approx(5 / 6)}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_kappa_matches_sklearn(data):
    n = data.draw(st.integers(2, 60))
    a = data.draw(arrays(np.int64, n, elements=st.integers(1, 5)))
    b = data.draw(arrays(np.int64, n, elements=st.integers(1, 5)))
    for w in (None, "linear", "quadratic"):
        expected = skm.cohen_kappa_score(a, b, weights=w, labels=[1, 2, 3, 4, 5])
        if np.isnan(expected):
            continue
        assert M.cohen_kappa(a, b, weights=w, num_classes=6) == pytest.approx(expected, abs=1e-9)


def test_smape_aasce_definition():
    t = [[30.0, 10.0, 20.0], [0.0, 5.0, 5.0]]
    p = [[27.0, 12.0, 20.0], [0.0, 5.0, 10.0]]
    expected = 100 * np.mean([(3 + 2 + 0) / (60 + 59), 5 / 25])
    assert M.smape(t, p) == pytest.approx(expected)
    with pytest.raises(LumbarLabError):
        M.smape([[0, 0]], [[0, 0]])


# ---- reconstruction ------------------------------------------------------------------------

def test_psnr_and_ssim_match_monai():
    from monai.metrics import PSNRMetric, SSIMMetric

    rng = np.random.default_rng(0)
    ref = rng.random((48, 52)).astype(np.float64)
    ref = np.cumsum(np.cumsum(ref, 0), 1)
    ref /= ref.max()
    img = ref + rng.normal(0, 0.05, ref.shape)
    tr, ti = torch.from_numpy(ref)[None, None], torch.from_numpy(img)[None, None]
    assert M.psnr(ref, img, data_range=1.0) == pytest.approx(float(PSNRMetric(max_val=1.0)(ti, tr)), rel=1e-6)
    assert M.ssim(ref, img, data_range=1.0) == pytest.approx(float(SSIMMetric(spatial_dims=2, data_range=1.0)(ti, tr)), abs=1e-4)
    assert M.ssim(ref, ref, data_range=1.0) == pytest.approx(1.0)


def test_snr_and_cnr():
    img = np.zeros((40, 40))
    img[:20] = 100.0
    img[20:] = 40.0
    noise = np.zeros_like(img, bool)
    noise[::2, ::2] = True
    img[noise] += np.tile([-5.0, 5.0], int(noise.sum()) // 2)
    signal, other = np.zeros_like(noise), np.zeros_like(noise)
    signal[2:10, 1:20:2] = True
    other[30:38, 1:20:2] = True
    sd = img[noise].std(ddof=1)
    assert M.snr(img, signal, noise) == pytest.approx(100 / sd)
    assert M.cnr(img, signal, other, noise) == pytest.approx(60 / sd)


# ---- bootstrap -----------------------------------------------------------------------------

def test_bootstrap_interval_covers_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(1)

    def make(n):
        t = rng.integers(0, 2, n)
        return t, np.clip(t * 0.3 + rng.random(n) * 0.7, 0, 1)

    small, large = M.bootstrap_ci(M.roc_auc, *make(60), n_resamples=300), M.bootstrap_ci(M.roc_auc, *make(1500), n_resamples=300)
    for ci in (small, large):
        assert ci.low <= ci.estimate <= ci.high
    assert (large.high - large.low) < (small.high - small.low)
    assert "CI" in str(small)


@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_reliability_curve_equals_scikit_learn_and_ece_its_weighted_gap(n_bins):
    from sklearn.calibration import calibration_curve

    from lumbarlab.metrics import expected_calibration_error, reliability_curve

    rng = np.random.default_rng(n_bins)
    p = rng.random(400)
    p[:3] = [0.0, 1.0, 0.5]  # the edges of the bins
    y = (rng.random(400) < p**2).astype(int)  # over-confident: the truth is rarer than the probability says
    freq, conf, count = reliability_curve(y, p, n_bins)
    ref_freq, ref_conf = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    assert np.allclose(freq, ref_freq) and np.allclose(conf, ref_conf) and count.sum() == 400
    ece = expected_calibration_error(y, p, n_bins)
    assert ece == pytest.approx(np.sum(count * np.abs(ref_freq - ref_conf)) / 400)
    assert 0.1 < ece < 0.3  # E[p - p²] = 1/6 for uniform p
    assert expected_calibration_error(y, np.full(400, y.mean()), n_bins) == pytest.approx(0.0, abs=1e-12)


# ---- spread over seeds ---------------------------------------------------------------------

@pytest.mark.parametrize("values", [[0.70, 0.80, 0.90], [0.61, 0.58, 0.66, 0.71, 0.64], [1.0, 3.0]])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_seed_spread_equals_scipys_t_interval(values, confidence):
    from scipy import stats

    s = M.seed_spread(values, confidence)
    x = np.asarray(values)
    low, high = stats.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (s.mean, s.sd, s.n) == (pytest.approx(x.mean()), pytest.approx(x.std(ddof=1)), len(x))
    assert (s.low, s.high) == pytest.approx((low, high))
    assert s.half_width == pytest.approx(high - s.mean)


def test_seed_spread_one_seed_and_refusals():
    one = M.seed_spread([0.5])
    assert one.n == 1 and np.isnan(one.sd) and np.isnan(one.half_width) and "no spread" in str(one)
    assert "n=3" in str(M.seed_spread([0.7, 0.8, 0.9]))
    for bad in ([], [0.5, float("nan")]):
        with pytest.raises(LumbarLabError, match="finite"):
            M.seed_spread(bad)
    with pytest.raises(LumbarLabError, match="confidence"):
        M.seed_spread([0.1, 0.2], confidence=1.0)


def test_paired_seed_difference_cancels_what_both_arms_share():
    base = np.array([0.60, 0.80, 0.70])  # large seed-to-seed noise …
    d = M.paired_seed_difference(base + 0.05, base)  # … shared by both arms
    assert d.mean == pytest.approx(0.05) and d.sd == pytest.approx(0.0, abs=1e-12)
    unpaired = M.seed_spread(base + 0.05)
    assert unpaired.low < 0.6 < unpaired.high  # the same arm alone: an interval too wide to tell anything
    with pytest.raises(LumbarLabError, match="one per seed"):
        M.paired_seed_difference([1, 2], [1, 2, 3])


def test_every_seed_table_uses_the_same_interval():
    """pretrain's learning-curve summary and compact's comparison rows report metrics.seed_spread's numbers."""
    from lumbarlab.compact import Latency, comparison_rows
    from lumbarlab.pretrain import CurvePoint, summarise

    values = [0.61, 0.58, 0.66]
    s = M.seed_spread(values)
    curve = summarise([CurvePoint("random", 0.1, 20, k, v, 0.5, [], 0) for k, v in enumerate(values)])[0]
    assert (curve.mean, curve.sd, curve.low, curve.high) == pytest.approx((s.mean, s.sd, s.low, s.high))
    rows = comparison_rows({"a": {"parameters": 1, "flops": 1, "latency": Latency(1.0, 0.1, 2, 5), "dice": values}},
                           baseline="a")
    assert rows[0]["dice_ci95"] == pytest.approx([s.low, s.high], abs=1e-4)
    assert rows[0]["dice_sd"] == pytest.approx(s.sd, abs=1e-4)
