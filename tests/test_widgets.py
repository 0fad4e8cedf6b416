"""PhantomExplorer behaves as a user would expect: controls re-render, errors show, the panel lives on."""

from __future__ import annotations

import pytest

from lumbarlab.widgets import PhantomExplorer


@pytest.fixture(scope="module")
def explorer():
    return PhantomExplorer(seed=3, shape=(64, 64, 96), spacing=2.5)


def test_initial_render(explorer):
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Spondylolisthesis" in explorer.truth_html.value


def test_slider_changes_truth_and_image(explorer):
    before = explorer.image.value
    explorer.controls["slip_level"].value = "L5"
    explorer.controls["slip_percent"].value = 37.0  # a user moving the slider
    assert explorer.case.truth["slip"]["L5"]["slip_percent"] == pytest.approx(37.0, abs=2.0)
    assert "Meyerding 2" in explorer.truth_html.value
    assert explorer.image.value != before
    assert "relabelled" in explorer.status.value  # the panel reports what changed


def test_each_pathology_control_reaches_the_case(explorer):
    explorer.set(slip_percent=0.0, cobb=18.0, fracture_level="L2", fracture_percent=30.0, bmd=90.0,
                 disc="L3-L4", pfirrmann=4, herniation=5.0, canal=9.0)
    t = explorer.case.truth
    assert t["cobb"]["angle_deg"] == pytest.approx(18.0, abs=1.5)
    assert t["vertebrae"]["L2"]["height_loss_percent"] == pytest.approx(30.0)
    assert t["bone_density"]["category"] == "osteoporosis"
    assert t["discs"]["L3-L4"]["pfirrmann"] == 4 and t["discs"]["L3-L4"]["herniation_mm"] == 5.0
    assert t["canal_ap_mm"] == 9.0


def test_bad_input_shows_message_and_panel_keeps_working(explorer):
    good = explorer.case
    explorer.controls["seed"].value = -4
    assert "Cannot render" in explorer.message.value and "seed" in explorer.message.value
    assert "ll-pe-error" in explorer.message.value  # the base panel's message line, found by its class
    assert explorer.case is good  # the last good render stays on screen
    assert explorer.image.value and "Spondylolisthesis" in explorer.truth_html.value
    explorer.controls["seed"].value = 4
    assert explorer.case.params.seed == 4 and explorer.message.value == ""


def test_unknown_control_is_an_error(explorer):
    from lumbarlab.errors import LumbarLabError

    with pytest.raises(LumbarLabError, match="no control"):
        explorer.set(tilt=3)
