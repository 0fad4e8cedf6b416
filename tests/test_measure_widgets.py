"""The measurement overlay and the landmark-jitter lesson panel."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab.phantom import make_case, sample_params
from lumbarlab.phantom.fast2d import lateral_radiograph
from lumbarlab.viz import measurement_overlay
from lumbarlab.widgets import LandmarkJitterPanel, grade_flip_curve


def test_overlays_render_for_both_views():
    rad = lateral_radiograph(sample_params(1, slip={"L5": 30}), size=128)
    png = measurement_overlay(rad.image, rad.corners, rad.spacing, "lateral", "t")
    assert png[:4] == b"\x89PNG" and len(png) > 5000
    case = make_case(sample_params(2, cobb=15), shape=(48, 48, 64), spacing=3.0)
    assert measurement_overlay(case.ap.image, case.ap.corners, case.ap.spacing, "ap")[:4] == b"\x89PNG"


def test_grade_flip_curve_grows_with_landmark_error():
    curve = grade_flip_curve(sds_mm=(0.0, 1.0, 3.0), n_cases=120, seed=2)
    assert curve["grade_flip_rate"][0] == 0.0 and curve["mean_abs_slip_error"][0] < 1e-6
    assert curve["grade_flip_rate"] == sorted(curve["grade_flip_rate"])
    assert curve["mean_abs_slip_error"][2] > curve["mean_abs_slip_error"][1] > 0


def test_jitter_panel_moves_the_measurement():
    panel = LandmarkJitterPanel(seed=1, curve=grade_flip_curve(sds_mm=(0.0, 2.0), n_cases=20))
    _, exact = panel.measured(0.0)
    assert exact.slips["L4"]["slip_percent"] == pytest.approx(24.0, abs=0.01)
    panel.slider.value = 3.0
    _, noisy = panel.measured()
    assert noisy.slips["L4"]["slip_percent"] != pytest.approx(24.0, abs=0.01)
    assert "ll-measured-slip" in panel.text.value and panel.image.value[:4] == b"\x89PNG"
    assert np.isfinite(noisy.lordosis_L1_S1)


def test_jitter_panel_marks_the_chosen_error_on_the_curve():
    import io

    from PIL import Image

    panel = LandmarkJitterPanel(seed=1, curve=grade_flip_curve(sds_mm=(0.0, 2.0, 4.0), n_cases=10))
    columns = {}
    for sd in (1.0, 3.0):
        panel.set(sd=sd)
        rgb = np.asarray(Image.open(io.BytesIO(panel.curve_view.value)).convert("RGB")).astype(int)
        red = (rgb[..., 0] > 180) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
        columns[sd] = np.nonzero(red)[1].mean()
    _, column, _ = panel._curve_base
    assert columns[1.0] == pytest.approx(column(1.0), abs=1.5) and columns[3.0] == pytest.approx(column(3.0), abs=1.5)
    assert columns[3.0] > columns[1.0]
