"""Metric explorer responsiveness: kernel time of one slider move. JSON out.

Goal (issue #3): ≤ 50 ms p95 per update for 1,000 scores (classification) and a 256² image
(segmentation). Baseline in the same run: the plain-library way — scikit-learn metrics and a
matplotlib figure (confusion matrix, ROC and PR with the operating point; or the overlay)
rendered to PNG on every move.

    python benchmarks/bench_metric_explorer.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import time

import numpy as np
from _report import emit


def _p(values, q):
    return round(float(np.percentile(values, q)) * 1000, 2)


def _time_moves(move, thresholds) -> list[float]:
    out = []
    for t in thresholds:
        start = time.perf_counter()
        move(float(t))
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import sklearn.metrics as skm

    from lumbarlab.widgets import ClassificationPanel, SegmentationPanel
    from lumbarlab.widgets.metric_data import classification_demo, segmentation_demo

    moves = 40 if args.quick else 200
    rng = np.random.default_rng(0)
    thresholds = rng.uniform(0.05, 0.95, moves)

    c = classification_demo(1000, 0)
    panel = ClassificationPanel(c.scores, c.labels)
    ours_c = _time_moves(lambda t: setattr(panel.slider, "value", t), thresholds)
    fpr, tpr, _ = skm.roc_curve(c.labels, c.scores)
    prec, rec, _ = skm.precision_recall_curve(c.labels, c.scores)

    def baseline_c(t):
        pred = (c.scores >= t).astype(int)
        cm = skm.confusion_matrix(c.labels, pred)
        _ = [f(c.labels, pred, zero_division=0) for f in (skm.precision_score, skm.recall_score, skm.f1_score)]
        fig, ax = plt.subplots(1, 3, figsize=(9, 3))
        ax[0].imshow(cm)
        ax[1].plot(fpr, tpr)
        ax[1].plot([cm[0, 1] / max(cm[0].sum(), 1)], [cm[1, 1] / max(cm[1].sum(), 1)], "ro")
        ax[2].plot(rec, prec)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        plt.close(fig)

    base_c = _time_moves(baseline_c, thresholds[: max(moves // 4, 10)])

    s = segmentation_demo(0)
    seg = SegmentationPanel(s.image, s.mask, s.probability)
    ours_s = _time_moves(lambda t: setattr(seg.slider, "value", t), thresholds)

    def baseline_s(t):
        pred = s.probability >= t
        skm.f1_score(s.mask.ravel(), pred.ravel())
        skm.jaccard_score(s.mask.ravel(), pred.ravel())
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(s.image, cmap="gray")
        ax.imshow(np.ma.masked_where(~(pred ^ s.mask), pred), alpha=0.5, cmap="autumn")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        plt.close(fig)

    base_s = _time_moves(baseline_s, thresholds[: max(moves // 4, 10)])

    result = {
        "benchmark": "metric_explorer",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "goal_ms_p95": 50.0,
        "classification_1000_scores": {
            "ours_ms_p50": _p(ours_c, 50), "ours_ms_p95": _p(ours_c, 95),
            "baseline_sklearn_matplotlib_ms_p50": _p(base_c, 50), "baseline_ms_p95": _p(base_c, 95),
            "speedup_p95": round(np.percentile(base_c, 95) / np.percentile(ours_c, 95), 1),
        },
        "segmentation_256x256": {
            "ours_ms_p50": _p(ours_s, 50), "ours_ms_p95": _p(ours_s, 95),
            "baseline_sklearn_matplotlib_ms_p50": _p(base_s, 50), "baseline_ms_p95": _p(base_s, 95),
            "speedup_p95": round(np.percentile(base_s, 95) / np.percentile(ours_s, 95), 1),
        },
    }
    result["within_goal"] = (result["classification_1000_scores"]["ours_ms_p95"] <= 50
                             and result["segmentation_256x256"]["ours_ms_p95"] <= 50)
    emit(result, args.out)


if __name__ == "__main__":
    main()
