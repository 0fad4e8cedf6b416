"""Classification metrics equal scikit-learn's on the same inputs (hand cases + property tests)."""

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

labels_binary = arrays(np.int64, st.integers(2, 60), elements=st.integers(0, 1))


def test_hand_computed_binary_case():
    y_true = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # 3 positives
    y_pred = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]  # TP 2, FN 1, FP 1, TN 6
    assert M.confusion_matrix(y_true, y_pred).tolist() == [[6, 1], [1, 2]]
    assert M.accuracy(y_true, y_pred) == pytest.approx(0.8)
    assert M.precision(y_true, y_pred) == pytest.approx(2 / 3)
    assert M.recall(y_true, y_pred) == pytest.approx(2 / 3)
    assert M.specificity(y_true, y_pred) == pytest.approx(6 / 7)
    assert M.f1_score(y_true, y_pred) == pytest.approx(2 / 3)
    assert M.balanced_accuracy(y_true, y_pred) == pytest.approx((2 / 3 + 6 / 7) / 2)


def test_accuracy_misleads_on_imbalance():
    y_true = np.r_[np.ones(5), np.zeros(95)].astype(int)
    always_negative = np.zeros(100, dtype=int)
    assert M.accuracy(y_true, always_negative) == pytest.approx(0.95)
    assert M.recall(y_true, always_negative) == 0.0
    assert M.balanced_accuracy(y_true, always_negative) == pytest.approx(0.5)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_binary_counts_match_sklearn(data):
    n = data.draw(st.integers(2, 80))
    t = data.draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    p = data.draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    kw = dict(zero_division=0)
    assert M.accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p))
    assert M.precision(t, p) == pytest.approx(skm.precision_score(t, p, **kw))
    assert M.recall(t, p) == pytest.approx(skm.recall_score(t, p, **kw))
    assert M.f1_score(t, p) == pytest.approx(skm.f1_score(t, p, **kw))
    assert M.specificity(t, p) == pytest.approx(skm.recall_score(1 - t, 1 - p, **kw))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_multiclass_averages_match_sklearn(data):
    n, k = data.draw(st.integers(3, 80)), data.draw(st.integers(3, 5))
    t = data.draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    p = data.draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    labels = list(range(k))
    for avg in ("macro", "micro", None):
        for ours, theirs in ((M.precision, skm.precision_score), (M.recall, skm.recall_score), (M.f1_score, skm.f1_score)):
            np.testing.assert_allclose(ours(t, p, average=avg, num_classes=k),
                                       theirs(t, p, average=avg, labels=labels, zero_division=0))
    if len(np.unique(t)) > 0:
        assert M.balanced_accuracy(t, p) == pytest.approx(skm.balanced_accuracy_score(t, p))
    np.testing.assert_array_equal(M.confusion_matrix(t, p, k), skm.confusion_matrix(t, p, labels=labels))


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_curves_and_areas_match_sklearn(data):
    n = data.draw(st.integers(3, 60))
    t = data.draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    if t.min() == t.max():
        t[0], t[1] = 0, 1
    # include ties: scores on a coarse grid
    s = data.draw(arrays(np.float64, n, elements=st.integers(0, 10).map(lambda v: v / 10)))
    assert M.roc_auc(t, s) == pytest.approx(skm.roc_auc_score(t, s))
    assert M.average_precision(t, s) == pytest.approx(skm.average_precision_score(t, s))
    fpr, tpr, thr = M.roc_curve(t, s)
    f2, t2, th2 = skm.roc_curve(t, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    prec, rec, thr = M.precision_recall_curve(t, s)
    p2, r2, th2 = skm.precision_recall_curve(t, s)
    np.testing.assert_allclose(prec, p2)
    np.testing.assert_allclose(rec, r2)
    np.testing.assert_allclose(thr, th2)


def test_multiclass_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, 200)
    s = rng.dirichlet([1, 1, 1], 200) + np.eye(3)[t] * 0.3
    s /= s.sum(1, keepdims=True)
    assert M.roc_auc(t, s) == pytest.approx(skm.roc_auc_score(t, s, multi_class="ovr", average="macro"))
    onehot = np.eye(3)[t]
    assert M.roc_auc(t, s, average="micro") == pytest.approx(skm.roc_auc_score(onehot, s, average="micro"))


def test_eleven_point_ap_hand_computed():
    # ranked: P N P N N  → recall 0.5 at precision 1, recall 1 at precision 2/3
    t, s = [1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5]
    # interpolated precision is 1 for r ≤ 0.5 (6 points) and 2/3 for r in 0.6..1 (5 points)
    assert M.average_precision(t, s, method="11-point") == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    assert M.average_precision(t, s, method="all-point") == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_torch_inputs_give_the_same_numbers():
    t = torch.tensor([0, 1, 1, 0, 1])
    s = torch.tensor([0.1, 0.9, 0.4, 0.35, 0.8])
    assert M.roc_auc(t, s) == pytest.approx(M.roc_auc(t.numpy(), s.numpy()))
    assert M.f1_score(t, (s > 0.5).int()) == pytest.approx(M.f1_score(t.numpy(), (s.numpy() > 0.5).astype(int)))


@pytest.mark.parametrize("call,message", [
    (lambda: M.roc_auc([0, 0, 0], [0.1, 0.2, 0.3]), "no positive"),
    (lambda: M.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]), "no negative"),
    (lambda: M.roc_auc([0, 1, 1], [0.1, np.nan, 0.3]), "NaN"),
    (lambda: M.accuracy([0, 1], [0, 1, 1]), "shape"),
    (lambda: M.accuracy([], []), "empty"),
    (lambda: M.precision([0, 1, 2], [0, 1, 2]), "binary"),
    (lambda: M.average_precision([0, 1], [0.2, 0.4], method="3-point"), "11-point"),
])
def test_edge_cases_raise_clear_errors(call, message):
    with pytest.raises(LumbarLabError, match=message):
        call()
