"""MetricExplorer panels show exactly what lumbarlab.metrics computes, at every threshold."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab import metrics as M
from lumbarlab.errors import LumbarLabError
from lumbarlab.widgets import ClassificationPanel, DetectionPanel, MetricExplorer, SegmentationPanel
from lumbarlab.widgets.metric_data import classification_demo, detection_demo, segmentation_demo


@pytest.fixture(scope="module")
def demo():
    return MetricExplorer.demo(seed=1, n_cases=300)


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.5, 0.77, 0.99])
def test_classification_values_equal_metrics(demo, threshold):
    data = classification_demo(300, 1)
    demo.classification.slider.value = threshold
    v = demo.classification.values()
    pred = (data.scores >= threshold).astype(int)
    assert v["accuracy"] == pytest.approx(M.accuracy(data.labels, pred))
    assert v["precision"] == pytest.approx(M.precision(data.labels, pred))
    assert v["recall"] == pytest.approx(M.recall(data.labels, pred))
    assert v["specificity"] == pytest.approx(M.specificity(data.labels, pred))
    assert v["f1"] == pytest.approx(M.f1_score(data.labels, pred))
    assert v["balanced_accuracy"] == pytest.approx(M.balanced_accuracy(data.labels, pred))
    assert f'data-metric="f1" style="text-align:right">{v["f1"]:.4f}' in demo.classification.numbers.value
    assert demo.classification.box.value == pytest.approx(threshold)  # the number box follows the slider


@pytest.mark.parametrize("threshold", [0.1, 0.5, 0.9])
def test_segmentation_values_equal_metrics(demo, threshold):
    s = segmentation_demo(1)
    demo.segmentation.slider.value = threshold
    v = demo.segmentation.values()
    assert v["dice"] == pytest.approx(M.dice(s.mask, s.probability >= threshold))
    assert v["iou"] == pytest.approx(M.iou(s.mask, s.probability >= threshold))
    assert demo.segmentation.overlay.value[:4] == b"\x89PNG"


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_detection_values_equal_metrics(demo, threshold):
    d = detection_demo(1)
    demo.detection.slider.value = threshold
    v = demo.detection.values()
    pred = [{"boxes": d.pred_boxes, "scores": d.pred_scores, "labels": np.zeros(len(d.pred_boxes), int)}]
    gt = [{"boxes": d.gt_boxes, "labels": np.zeros(len(d.gt_boxes), int)}]
    assert v["ap"] == pytest.approx(M.detection_average_precision(pred, gt, 0, threshold))
    m = M.match_detections(d.pred_boxes, d.pred_scores, d.gt_boxes, threshold)
    assert v["matched"] == int(m.true_positive.sum())
    assert demo.detection.view.value.count('class="ll-tp"') == v["matched"]


def test_stricter_iou_never_matches_more(demo):
    matched = []
    for t in (0.1, 0.3, 0.5, 0.7, 0.9):
        demo.detection.slider.value = t
        matched.append(demo.detection.values()["matched"])
    assert matched == sorted(matched, reverse=True)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(LumbarLabError, match="scores"):
        ClassificationPanel([0.1, 0.2], [0, 1, 1])
    with pytest.raises(LumbarLabError, match="no positive"):
        ClassificationPanel([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(LumbarLabError, match="NaN"):
        ClassificationPanel([0.1, np.nan], [0, 1])
    with pytest.raises(LumbarLabError, match="2D shape"):
        SegmentationPanel(np.zeros((4, 4)), np.zeros((4, 5)), np.zeros((4, 4)))
    with pytest.raises(LumbarLabError, match="at least one panel"):
        MetricExplorer()
    d = detection_demo(0)
    DetectionPanel(d.image, d.gt_boxes, d.pred_boxes, d.pred_scores)  # the happy path builds


def test_panels_share_the_base_panel_controls(demo):
    """The number box, the slider and Panel.set are one control: each redraws the numbers the page shows."""
    from lumbarlab.widgets.base import Panel

    panel = demo.classification
    assert isinstance(panel, Panel) and set(panel.controls) == {"threshold"}
    panel.box.value = 0.42  # typing in the box moves the slider and redraws
    assert panel.slider.value == pytest.approx(0.42)
    assert f'data-metric="f1" style="text-align:right">{panel.values()["f1"]:.4f}' in panel.numbers.value
    demo.segmentation.set(threshold=0.9)
    dice = demo.segmentation.values()["dice"]
    assert f'data-metric="dice" style="text-align:right">{dice:.4f}' in demo.segmentation.numbers.value
    with pytest.raises(LumbarLabError, match="no control"):
        demo.detection.set(iou=0.3)
