"""MetricExplorer: move a threshold and watch the Table 2 numbers, curves and overlays follow.

Three panels share one pattern — a slider (with a number box linked to it) and a fast
``update()`` that redraws HTML/SVG and a PNG built with numpy, so a slider move costs a few
milliseconds in the kernel (measured in ``benchmarks/bench_metric_explorer.py``):

* classification: a score threshold → confusion matrix, accuracy, precision, recall,
  specificity, F1, balanced accuracy (plus the threshold-free AUC and AP), ROC and PR curves
  with the operating point marked;
* segmentation: a probability threshold → TP/FP/FN overlay, Dice and IoU;
* detection: an IoU threshold → matched and unmatched boxes, AP.

Every number carries ``data-metric="<name>"`` so tests (and curious users) can read it off the page.
"""

from __future__ import annotations

import html

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.metrics import average_precision, precision_recall_curve, roc_auc, roc_curve
from lumbarlab.metrics._common import as_array, check_finite
from lumbarlab.widgets.base import Panel
from lumbarlab.widgets.svg import curve_svg, png_data_uri

__all__ = ["MetricExplorer", "ClassificationPanel", "SegmentationPanel", "DetectionPanel", "counts_at"]


def counts_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, int]:
    """TP, FP, FN, TN when ``score >= threshold`` is called positive."""
    pred = scores >= threshold
    pos = labels == 1
    tp = int(np.count_nonzero(pred & pos))
    fp = int(np.count_nonzero(pred & ~pos))
    fn = int(np.count_nonzero(~pred & pos))
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(labels.size - tp - fp - fn)}


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def table2_from_counts(c: dict[str, int]) -> dict[str, float]:
    """The confusion-matrix metrics of Table 2 from TP/FP/FN/TN (see lumbarlab.metrics.classification)."""
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    recall, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    return {
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "precision": _ratio(tp, tp + fp),
        "recall": recall,
        "specificity": spec,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "balanced_accuracy": (recall + spec) / 2,
    }


def _metric_rows(values: dict[str, float], fmt: str = "{:.4f}") -> str:
    rows = "".join(
        f'<tr><td>{html.escape(k.replace("_", " "))}</td>'
        f'<td class="ll-metric" data-metric="{k}" style="text-align:right">{fmt.format(v)}</td></tr>'
        for k, v in values.items()
    )
    return f'<table class="ll-metrics">{rows}</table>'


def _threshold_controls(description: str, value: float, minimum: float, maximum: float, step: float, css: str):
    import ipywidgets as w

    slider = w.FloatSlider(value=value, min=minimum, max=maximum, step=step, description=description,
                           readout_format=".3f", style={"description_width": "110px"},
                           layout=w.Layout(width="420px"))
    box = w.BoundedFloatText(value=value, min=minimum, max=maximum, step=step, layout=w.Layout(width="90px"))
    box.add_class(css)
    slider.add_class(css + "-slider")
    w.link((slider, "value"), (box, "value"))
    return slider, box


class ClassificationPanel(Panel):
    """Threshold over binary scores → confusion matrix, Table 2 numbers, ROC and PR curves."""

    css = "ll-cls"

    def __init__(self, scores, labels, threshold: float = 0.5, description: str = ""):
        import ipywidgets as w

        super().__init__()
        self.scores = check_finite(as_array(scores, "scores", dtype=float).ravel(), "scores")
        self.labels = as_array(labels, "labels").ravel().astype(np.int64)
        if self.scores.size != self.labels.size:
            raise LumbarLabError(f"{self.scores.size} scores but {self.labels.size} labels.")
        self.fpr, self.tpr, _ = roc_curve(self.labels, self.scores)
        self.prec, self.rec, _ = precision_recall_curve(self.labels, self.scores)
        self.auc = roc_auc(self.labels, self.scores)
        self.ap = average_precision(self.labels, self.scores)
        lo, hi = float(self.scores.min()), float(self.scores.max())
        self.slider, self.box = _threshold_controls("Threshold", threshold, min(lo, 0.0), max(hi, 1.0), 0.001,
                                                    "ll-threshold")
        self.matrix = w.HTML()
        self.numbers = w.HTML()
        self.curves = w.HTML()
        self.widget = w.VBox([
            w.HTML(f"<p><i>{html.escape(description)}</i> — {self.labels.size} cases, "
                   f"{int(self.labels.sum())} positive.</p>"),
            w.HBox([self.slider, self.box]),
            self.message,
            w.HBox([w.VBox([self.matrix, self.numbers]), self.curves]),
        ])
        self.control("threshold", self.slider, self.update, continuous=True)  # a move costs ~1 ms
        self.guard(self.update)

    def values(self, threshold: float | None = None) -> dict[str, float]:
        t = self.slider.value if threshold is None else threshold
        return {**table2_from_counts(counts_at(self.scores, self.labels, t)), "auc": self.auc, "ap": self.ap}

    def update(self) -> None:
        t = self.slider.value
        c = counts_at(self.scores, self.labels, t)
        v = {**table2_from_counts(c), "roc_auc": self.auc, "average_precision": self.ap}
        self.matrix.value = (
            '<table class="ll-confusion" style="border-collapse:collapse;text-align:center">'
            "<tr><td></td><th>predicted +</th><th>predicted −</th></tr>"
            f'<tr><th>true +</th><td class="ll-metric" data-metric="tp">{c["tp"]}</td>'
            f'<td class="ll-metric" data-metric="fn">{c["fn"]}</td></tr>'
            f'<tr><th>true −</th><td class="ll-metric" data-metric="fp">{c["fp"]}</td>'
            f'<td class="ll-metric" data-metric="tn">{c["tn"]}</td></tr></table>'
        )
        self.numbers.value = _metric_rows(v)
        n_neg = max(c["fp"] + c["tn"], 1)
        op_roc = (c["fp"] / n_neg, v["recall"])
        op_pr = (v["recall"], v["precision"] if c["tp"] + c["fp"] else 1.0)
        self.curves.value = (
            curve_svg(self.fpr, self.tpr, f"ROC (AUC {self.auc:.3f})", "false-positive rate", "true-positive rate",
                      op_roc, diagonal=True, css_class="ll-roc")
            + curve_svg(self.rec, self.prec, f"Precision–recall (AP {self.ap:.3f})", "recall", "precision",
                        op_pr, css_class="ll-pr")
        )


class SegmentationPanel(Panel):
    """Probability threshold → overlay (TP green, FP red, FN blue), Dice and IoU."""

    css = "ll-seg"

    def __init__(self, image, mask, probability, threshold: float = 0.5, description: str = ""):
        import ipywidgets as w

        super().__init__()
        self.image = check_finite(as_array(image, "image", dtype=float), "image")
        self.mask = as_array(mask, "mask").astype(bool)
        self.prob = check_finite(as_array(probability, "probability", dtype=np.float32), "probability")
        if not (self.image.shape == self.mask.shape == self.prob.shape) or self.image.ndim != 2:
            raise LumbarLabError(f"image, mask and probability must be one 2D shape, got "
                                 f"{self.image.shape}, {self.mask.shape}, {self.prob.shape}.")
        span = np.ptp(self.image) or 1.0
        gray = ((self.image - self.image.min()) / span * 200).astype(np.uint8)
        self._base = np.repeat(gray[..., None], 3, axis=2)
        self._n_true = int(self.mask.sum())
        self.slider, self.box = _threshold_controls("Threshold", threshold, 0.0, 1.0, 0.01, "ll-seg-threshold")
        self.overlay = w.Image(format="png", layout=w.Layout(width="360px"))
        self.numbers = w.HTML()
        self.widget = w.VBox([
            w.HTML(f"<p><i>{html.escape(description)}</i></p>"),
            w.HBox([self.slider, self.box]),
            self.message,
            w.HBox([self.overlay, self.numbers]),
        ])
        self.control("threshold", self.slider, self.update, continuous=True)  # a move costs ~4 ms
        self.guard(self.update)

    def values(self, threshold: float | None = None) -> dict[str, float]:
        t = self.slider.value if threshold is None else threshold
        pred = self.prob >= t
        tp = int(np.count_nonzero(pred & self.mask))
        n_pred = int(np.count_nonzero(pred))
        fp, fn = n_pred - tp, self._n_true - tp
        union = tp + fp + fn
        return {"dice": 1.0 if union == 0 else 2 * tp / (2 * tp + fp + fn),
                "iou": 1.0 if union == 0 else tp / union, "tp": tp, "fp": fp, "fn": fn}

    def update(self) -> None:
        pred = self.prob >= self.slider.value
        rgb = self._base.copy()
        rgb[pred & self.mask] = (40, 200, 80)
        rgb[pred & ~self.mask] = (230, 50, 50)
        rgb[~pred & self.mask] = (60, 110, 255)
        from lumbarlab.widgets.svg import encode_png

        self.overlay.value = encode_png(rgb)
        v = self.values()
        self.numbers.value = _metric_rows({k: v[k] for k in ("dice", "iou")}) + _metric_rows(
            {k: v[k] for k in ("tp", "fp", "fn")}, "{:.0f}") + (
            "<p><span style='color:#28c850'>■</span> TP <span style='color:#e63232'>■</span> FP "
            "<span style='color:#3c6eff'>■</span> FN</p>")


class DetectionPanel(Panel):
    """IoU threshold → matched (green) and unmatched (red) detections, missed truth (yellow), AP."""

    css = "ll-det"

    def __init__(self, image, gt_boxes, pred_boxes, pred_scores, threshold: float = 0.5, description: str = "",
                 gt_names: list[str] | None = None):
        import ipywidgets as w

        super().__init__()
        self.image = as_array(image, "image", dtype=float)
        self.gt = as_array(gt_boxes, "gt_boxes", dtype=float).reshape(-1, 4)
        self.pred = as_array(pred_boxes, "pred_boxes", dtype=float).reshape(-1, 4)
        self.scores = as_array(pred_scores, "pred_scores", dtype=float).ravel()
        self.names = gt_names or [str(i) for i in range(len(self.gt))]
        self._order = np.argsort(-self.scores, kind="mergesort")  # the order match_detections uses
        span = np.ptp(self.image) or 1.0
        self._uri = png_data_uri(((self.image - self.image.min()) / span * 255).astype(np.uint8))
        self.slider, self.box = _threshold_controls("IoU threshold", threshold, 0.05, 0.95, 0.01, "ll-iou-threshold")
        self.view = w.HTML()
        self.numbers = w.HTML()
        self.widget = w.VBox([
            w.HTML(f"<p><i>{html.escape(description)}</i></p>"),
            w.HBox([self.slider, self.box]),
            self.message,
            w.HBox([self.view, self.numbers]),
        ])
        self.control("threshold", self.slider, self.update, continuous=True)
        self.guard(self.update)

    def _match(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """TP flags per detection (in score order) and which truth boxes were found, at IoU ``t``."""
        from lumbarlab.metrics import match_detections

        m = match_detections(self.pred, self.scores, self.gt, t)
        taken = np.zeros(len(self.gt), dtype=bool)
        taken[m.matched_gt[m.matched_gt >= 0]] = True
        return m.true_positive, taken

    def values(self, threshold: float | None = None) -> dict[str, float]:
        from lumbarlab.metrics import detection_average_precision

        t = self.slider.value if threshold is None else threshold
        tp, taken = self._match(t)
        ap = detection_average_precision(
            [{"boxes": self.pred, "scores": self.scores, "labels": np.zeros(len(self.pred), int)}],
            [{"boxes": self.gt, "labels": np.zeros(len(self.gt), int)}], 0, t, method="coco")
        return {"ap": ap, "matched": int(tp.sum()), "false_positives": int((~tp).sum()),
                "missed": int((~taken).sum())}

    def update(self) -> None:
        t = self.slider.value
        tp, taken = self._match(t)
        h, wd = self.image.shape
        scale = 360 / wd
        rects = []
        for box, name, hit in zip(self.gt, self.names, taken, strict=True):
            x1, y1, x2, y2 = box * scale
            rects.append(f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" fill="none" '
                         f'stroke="{"#ffffff" if hit else "#ffd400"}" stroke-dasharray="3" stroke-width="1.2"/>'
                         f'<text x="{x2 + 2:.0f}" y="{y1 + 9:.0f}" fill="#ffd400" font-size="9">{html.escape(name)}</text>')
        for k, i in enumerate(self._order):
            x1, y1, x2, y2 = self.pred[i] * scale
            colour = "#2ecc40" if tp[k] else "#ff4136"
            rects.append(f'<rect class="{"ll-tp" if tp[k] else "ll-fp"}" x="{x1:.1f}" y="{y1:.1f}" '
                         f'width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" fill="none" stroke="{colour}" stroke-width="2"/>'
                         f'<text x="{x1:.0f}" y="{y1 - 2:.0f}" fill="{colour}" font-size="9">{self.scores[i]:.2f}</text>')
        self.view.value = (f'<div style="position:relative;width:360px;height:{h * scale:.0f}px">'
                           f'<img src="{self._uri}" width="360" style="position:absolute;left:0;top:0"/>'
                           f'<svg width="360" height="{h * scale:.0f}" style="position:absolute;left:0;top:0">'
                           + "".join(rects) + "</svg></div>")
        v = self.values(t)
        self.numbers.value = _metric_rows({"ap": v["ap"]}) + _metric_rows(
            {k: v[k] for k in ("matched", "false_positives", "missed")}, "{:.0f}") + (
            "<p><span style='color:#2ecc40'>■</span> matched <span style='color:#ff4136'>■</span> false positive "
            "<span style='color:#ffd400'>▭</span> missed truth</p>")


class MetricExplorer:
    """The three panels in tabs; build from your own arrays or from phantom demo data.

    Example:
        >>> explorer = MetricExplorer.demo(seed=0)
        >>> explorer.classification.slider.value = 0.3
        >>> round(explorer.classification.values()["recall"], 2)   # the number the panel shows
        0.98
        >>> type(explorer.widget).__name__                        # display it: explorer.widget
        'Tab'
    """

    def __init__(self, classification: ClassificationPanel | None = None, segmentation: SegmentationPanel | None = None,
                 detection: DetectionPanel | None = None):
        import ipywidgets as w

        self.classification, self.segmentation, self.detection = classification, segmentation, detection
        panels = [(n, p) for n, p in (("Classification", classification), ("Segmentation", segmentation),
                                      ("Detection", detection)) if p is not None]
        if not panels:
            raise LumbarLabError("give the explorer at least one panel (or use MetricExplorer.demo()).")
        self.widget = w.Tab(children=[p.widget for _, p in panels])
        for i, (name, _) in enumerate(panels):
            self.widget.set_title(i, name)
        self.widget.add_class("ll-metric-explorer")

    @classmethod
    def demo(cls, seed: int = 0, n_cases: int = 1000) -> MetricExplorer:
        """All three panels on phantom demo data (see :mod:`lumbarlab.widgets.metric_data`)."""
        from lumbarlab.widgets.metric_data import classification_demo, detection_demo, segmentation_demo

        c, s, d = classification_demo(n_cases, seed), segmentation_demo(seed), detection_demo(seed)
        return cls(
            ClassificationPanel(c.scores, c.labels, description=c.description),
            SegmentationPanel(s.image, s.mask, s.probability, description=s.description),
            DetectionPanel(d.image, d.gt_boxes, d.pred_boxes, d.pred_scores, description=d.description,
                           gt_names=d.gt_names),
        )

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
