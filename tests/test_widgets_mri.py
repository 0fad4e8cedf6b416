"""The MRI panel against the phantom's truth: a study with known Pfirrmann grades, a herniation and a canal width is
labelled and graded as built; an upload in another axis order reads the same; undersampling and errors behave."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarlab.widgets.mri_panel import MRIPanel, reconstruct_slab


@pytest.fixture(scope="module")
def panel():
    return MRIPanel(seed=900_010, pfirrmann={"L3-L4": 3, "L4-L5": 4, "L5-S1": 5}, herniation_level="L4-L5",
                    herniation=5.0, canal=16.0)


def test_panel_grades_the_phantom_as_built(panel):
    grades, truth = panel.result["grades"], panel.truth
    assert list(grades) == ["T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert {d: g["pfirrmann"] for d, g in grades.items()} == {d: t["pfirrmann"] for d, t in truth.items()}
    assert grades["L4-L5"]["herniation"] and not any(g["herniation"] for d, g in grades.items() if d != "L4-L5")
    assert all(grades[d]["stenosis"] == truth[d]["stenosis"] for d in grades), (grades, truth)
    assert panel.message.value == ""
    html = panel.report.value
    assert "ll-mri-pfirrmann" in html and "IV (" in html and "phantom truth" in html
    assert panel.view.value[:4] == b"\x89PNG" and panel.recon.value[:4] == b"\x89PNG"


def test_the_slab_slider_walks_the_stack_and_undersampling_scores_both(panel):
    seg = panel.result["seg"]
    assert panel.controls["slab"].max == seg.classes.shape[0] - 1
    before = panel.view.value
    panel.set(slab=2)
    assert panel.view.value != before
    panel.set(slab=int(np.argmax([(seg.classes[i] > 0).sum() for i in range(seg.classes.shape[0])])))
    panel.set(acceleration=4)
    four = dict(panel.recon_scores)
    panel.set(acceleration=8)
    eight = dict(panel.recon_scores)
    # on the phantom's own 2 mm planes (mri-recon's domain) the network beats zero-filling, and 8× is worse than 4×
    assert four["ssim_network"] > four["ssim_zero_filled"] and eight["ssim_network"] > eight["ssim_zero_filled"]
    assert eight["ssim_zero_filled"] < four["ssim_zero_filled"]
    panel.set(acceleration=1)
    assert panel.recon_scores == {"ssim_zero_filled": 1.0, "ssim_network": 1.0}
    assert "ll-mri-ssim-network" in panel.recon_text.value


def test_errors_show_in_the_message_line_and_keep_the_study(panel, tmp_path):
    grades = dict(panel.result["grades"])
    panel.set(seed=-3)
    assert "seed must be 0 or more" in panel.message.value and panel.result["grades"] == grades
    panel._on_upload({"new": ({"name": "notes.txt", "content": memoryview(b"hello")},)})
    assert "upload a sagittal T2" in panel.message.value and panel.result["grades"] == grades
    from lumbarlab.io import write_image
    from lumbarlab.volume import Volume

    axial = Volume(np.random.default_rng(0).uniform(0, 500, (64, 64, 12)).astype(np.float32), (1.0, 1.0, 4.0))
    content = write_image(axial, tmp_path / "axial.nii.gz").read_bytes()
    panel._on_upload({"new": ({"name": "axial.nii.gz", "content": memoryview(content)},)})
    assert "axial" in panel.message.value and panel.result["grades"] == grades


def test_an_uploaded_study_in_another_axis_order_reads_the_same(panel):
    from lumbarlab.io import write_image
    from lumbarlab.phantom import make_case
    from lumbarlab.volume import reorient

    grades = {d: t["pfirrmann"] for d, t in panel.truth.items()}  # the panel sets every disc's grade
    case = make_case(900_010, shape=(96, 176, 192), spacing=1.25, modalities=("t2",), pfirrmann=grades,
                     herniation={"L4-L5": 5.0}, stenosis=16.0)
    image, _ = case.mri_sagittal("T2", 4.0)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        content = write_image(reorient(image, "PIL"), Path(tmp) / "study.nii.gz").read_bytes()
    fresh = MRIPanel(seed=900_011)
    fresh._on_upload({"new": ({"name": "study.nii.gz", "content": memoryview(content)},)})
    assert fresh.message.value == "" and fresh.truth == {}
    assert {d: g["pfirrmann"] for d, g in fresh.result["grades"].items()} == \
        {d: g["pfirrmann"] for d, g in panel.result["grades"].items()}
    assert "upload study.nii.gz" in fresh.report.value and "outside its training data" in fresh.recon_text.value


def test_reconstruct_slab_refuses_an_unknown_acceleration():
    from lumbarlab.errors import LumbarLabError

    with pytest.raises(LumbarLabError, match="acceleration"):
        reconstruct_slab(np.zeros((64, 64)), 2.0, 3)
