"""The metric explorer dashboard in a real browser: the page's numbers follow the threshold and
equal what lumbarlab.metrics computes for it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lumbarlab import metrics as M
from lumbarlab.widgets.metric_data import classification_demo, segmentation_demo


@pytest.mark.server
@pytest.mark.browser
def test_threshold_moves_numbers_to_the_metrics_values(open_dashboard, tmp_path):
    dash = open_dashboard("metric_explorer", ready='.ll-metric[data-metric="f1"]')
    dash.screenshot("loaded")
    before = dash.read_metric("f1")

    data = classification_demo(1000, 0)
    threshold = 0.3
    dash.set_number("ll-threshold", threshold)
    expected = {
        "accuracy": M.accuracy(data.labels, data.scores >= threshold),
        "precision": M.precision(data.labels, data.scores >= threshold),
        "recall": M.recall(data.labels, data.scores >= threshold),
        "specificity": M.specificity(data.labels, data.scores >= threshold),
        "f1": M.f1_score(data.labels, data.scores >= threshold),
        "balanced_accuracy": M.balanced_accuracy(data.labels, data.scores >= threshold),
        "roc_auc": M.roc_auc(data.labels, data.scores),
        "average_precision": M.average_precision(data.labels, data.scores),
    }
    assert round(expected["f1"], 4) != round(before, 4)  # the move must be visible
    dash.page.wait_for_function(
        "([sel, v]) => { const e = document.querySelector(sel); return e && Math.abs(parseFloat(e.textContent) - v) < 1e-4; }",
        arg=['.ll-metric[data-metric="f1"]', round(expected["f1"], 4)],
    )
    for name, value in expected.items():
        assert dash.read_metric(name) == pytest.approx(value, abs=6e-5), name
    cm = M.confusion_matrix(data.labels, (data.scores >= threshold).astype(int))
    assert dash.read_metric("tp") == cm[1, 1] and dash.read_metric("fp") == cm[0, 1]
    assert dash.page.locator(".ll-roc .operating-point").count() == 1
    shot = dash.screenshot("threshold-0.3")
    assert shot.stat().st_size > 10_000

    # segmentation tab: the Dice shown equals lumbarlab.metrics.dice at the new threshold
    dash.page.get_by_text("Segmentation", exact=True).first.click()
    dash.page.wait_for_selector(".ll-seg-threshold input", state="visible")
    seg = segmentation_demo(0)
    dash.set_number("ll-seg-threshold", 0.8)
    want = M.dice(seg.mask, seg.probability >= 0.8)
    dash.page.wait_for_function(
        "v => [...document.querySelectorAll('.ll-metric[data-metric=\"dice\"]')].some(e => Math.abs(parseFloat(e.textContent) - v) < 1e-4)",
        arg=round(want, 4),
    )
    dash.screenshot("segmentation-0.8")
    (tmp_path / "timing.json").write_text(json.dumps({"seconds_to_interactive": dash.seconds_to_ready}))
    print(f"metric_explorer: server start → interactive page {dash.seconds_to_ready:.1f} s")
    assert np.isfinite(dash.seconds_to_ready)


def test_dashboard_command_is_locked_down():
    from lumbarlab.cli import dashboard_command
    from lumbarlab.errors import LumbarLabError

    cmd = dashboard_command("metric_explorer", 9999)
    assert "--strip_sources=True" in cmd and "--show_tracebacks=False" in cmd and "--Voila.ip=127.0.0.1" in cmd
    with pytest.raises(LumbarLabError, match="available"):
        dashboard_command("nope", 9999)
