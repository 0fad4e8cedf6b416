"""The MRI dashboard in a real browser: load a phantom study, read its per-disc grades, remove its herniation,
undersample harder, upload a refused file and a study in another axis order, and read what the page shows."""

from __future__ import annotations

import pytest


@pytest.mark.server
@pytest.mark.browser
def test_mri_dashboard_follows_the_study_and_uploads(open_dashboard, tmp_path):
    from lumbarlab.io import write_image
    from lumbarlab.phantom import make_case
    from lumbarlab.volume import reorient

    dash = open_dashboard("mri", ready=".ll-mri-pfirrmann")
    levels = dash.page.locator(".ll-mri-levels").inner_text().split()
    assert {"L1", "L2", "L3", "L4", "L5", "S1"} <= set(levels)
    cell = dash.page.locator(".ll-mri-pfirrmann[data-disc='L4-L5']")
    assert cell.inner_text().startswith("IV ")  # the app notebook builds L4-L5 as grade 4, L5-S1 as 5
    assert dash.page.locator(".ll-mri-pfirrmann[data-disc='L5-S1']").inner_text().startswith("V ")
    assert dash.page.locator(".ll-mri-herniation[data-disc='L4-L5']").inner_text().startswith("yes")
    four = float(dash.page.locator(".ll-mri-ssim-network").inner_text())
    dash.screenshot("loaded")

    dash.set_number("ll-mri-herniation", 0)
    dash.page.wait_for_function(
        "() => { const e = document.querySelector(\".ll-mri-herniation[data-disc='L4-L5']\");"
        " return e && e.textContent.startsWith('no'); }", timeout=120_000)
    dash.screenshot("no-herniation")

    dash.page.select_option(".ll-mri-acceleration select", label="8×")
    dash.page.wait_for_function(
        "() => { const e = document.querySelector('b.ll-mri-acceleration'); return e && e.textContent === '8'; }",
        timeout=60_000)
    assert float(dash.page.locator(".ll-mri-ssim-network").inner_text()) < four

    bad = tmp_path / "axial.nii.gz"
    import numpy as np

    from lumbarlab.volume import Volume

    write_image(Volume(np.random.default_rng(0).uniform(0, 500, (64, 64, 12)).astype(np.float32), (1.0, 1.0, 4.0)), bad)
    dash.upload(".ll-mri-upload", bad)
    dash.page.wait_for_selector(".ll-mri-error", state="visible", timeout=60_000)
    assert "axial" in dash.page.locator(".ll-mri-error").inner_text()
    assert dash.page.locator(".ll-mri-herniation[data-disc='L4-L5']").inner_text().startswith("no")  # study kept

    case = make_case(900_012, shape=(96, 176, 192), spacing=1.25, modalities=("t2",),
                     pfirrmann={"T12-L1": 1, "L1-L2": 1, "L2-L3": 1, "L3-L4": 1, "L4-L5": 2, "L5-S1": 5})
    image, _ = case.mri_sagittal("T2", 4.0)
    study = tmp_path / "study.nii.gz"
    write_image(reorient(image, "LPS"), study)
    dash.upload(".ll-mri-upload", study)
    dash.page.wait_for_function(
        "() => { const e = document.querySelector(\".ll-mri-pfirrmann[data-disc='L4-L5']\");"
        " return e && e.textContent.startsWith('II '); }", timeout=120_000)
    dash.page.wait_for_selector(".ll-mri-error", state="detached", timeout=30_000)
    assert "upload study.nii.gz" in dash.page.content()
    shot = dash.screenshot("upload")
    assert shot.stat().st_size > 10_000
    print(f"mri: server start → interactive page {dash.seconds_to_ready:.1f} s")
