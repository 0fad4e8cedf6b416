"""The registration panel against the phantom's known correspondence: each method's landmark TRE is what the library
measures for the same pair, a registration lowers it, the overlay controls redraw without registering again, and
user errors keep the last good result."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab.widgets.registration_panel import METHODS, RegistrationPanel, register_pair


@pytest.fixture(scope="module")
def panel():
    return RegistrationPanel(seed=900_820, flexion=10.0, shift=6.0, method="rigid")


def test_panel_measures_the_pair_as_the_library_does(panel):
    from lumbarlab.datasets.registration_pairs import posture_pair
    from lumbarlab.metrics import target_registration_error

    pair = posture_pair(900_820, 10.0, shift_mm=(0.0, -3.0, 6.0), shape=(40, 32, 64), spacing=4.0)
    before = target_registration_error(pair.fixed_points, pair.moving_points)
    assert np.allclose(panel.before, before)
    assert panel.message.value == "" and panel.result["tre"].mean() < 0.5 * before.mean()
    assert f"{panel.result['tre'].mean():.2f}" in panel.summary.value
    assert all(f"data-level='{lv}'" in panel.table.value for lv in ("L1", "L2", "L3", "L4", "L5"))
    assert panel.image.value[:4] == b"\x89PNG"


def test_per_vertebra_rigid_is_the_best_and_overlays_redraw_only(panel):
    rigid = panel.result["tre"].mean()
    panel.set(method="rigid per vertebra")
    assert panel.result["tre"].mean() < min(1.0, rigid)
    shown, seconds = panel.image.value, panel.result["seconds"]
    panel.set(view="blend", blend=0.2)
    assert panel.image.value != shown and panel.result["seconds"] == seconds      # redrawn, not registered again
    panel.set(view="difference", slice=5)
    assert panel.image.value[:4] == b"\x89PNG"
    panel.set(method="LocalNet (zoo)")     # the sacrum registered rigidly, then the zoo network
    assert panel.result["tre"].mean() < 0.3 * panel.before.mean() and panel.result["folded"] < 1.0


def test_errors_show_in_the_message_line_and_keep_the_result(panel):
    tre = panel.result["tre"].copy()
    panel.set(seed=-2)
    assert "seed must be 0 or more" in panel.message.value and np.array_equal(panel.result["tre"], tre)
    with pytest.raises(Exception, match="unknown method"):
        register_pair(panel.pair, "demons")
    assert set(METHODS) >= {"none", "rigid", "affine", "B-spline", "LocalNet (zoo)", "rigid per vertebra"}
