"""The CT dashboard in a real browser: load a phantom CT, change its bone density, upload a broken file and a real
NIfTI in another orientation, and read the levels and numbers the page shows."""

from __future__ import annotations

import pytest


@pytest.mark.server
@pytest.mark.browser
def test_ct_dashboard_follows_the_case_and_uploads(open_dashboard, tmp_path):
    import numpy as np

    from lumbarlab.io import write_image
    from lumbarlab.phantom import make_case
    from lumbarlab.volume import reorient

    dash = open_dashboard("ct", ready=".ll-ct-worst-grade")
    levels = dash.page.locator(".ll-ct-levels").inner_text().split()
    assert {"L1", "L2", "L3", "L4", "L5"} <= set(levels)
    # the ROI on the model's L1 mask reads what the same ROI reads on the phantom's true mask (the scan's kVp,
    # contrast phase and the fracture's compaction move both away from the 150 HU the bone was built with)
    first_hu = float(dash.page.locator(".ll-ct-l1-hu").inner_text())
    assert first_hu == pytest.approx(float(dash.page.locator(".ll-ct-l1-roi-true").inner_text()), abs=15.0)
    dash.screenshot("loaded")

    dash.set_number("ll-ct-bmd", 80)
    dash.page.wait_for_function(
        "() => { const e = document.querySelector('.ll-ct-l1-hu'); return e && parseFloat(e.textContent) < 140; }",
        timeout=120_000)
    assert float(dash.page.locator(".ll-ct-l1-hu").inner_text()) == pytest.approx(
        float(dash.page.locator(".ll-ct-l1-roi-true").inner_text()), abs=15.0)
    dash.screenshot("bmd-80")

    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b" + b"\0" * 300)
    dash.upload(".ll-ct-upload", bad)
    dash.page.wait_for_selector(".ll-ct-error", state="visible", timeout=60_000)
    assert "broken.nii.gz" in dash.page.locator(".ll-ct-error").inner_text()
    assert float(dash.page.locator(".ll-ct-l1-hu").inner_text()) < 140  # the previous case is still shown

    case = make_case(900_012, shape=(156, 120, 132), spacing=2.0, modalities=("ct",), bmd=200.0)
    scan = tmp_path / "patient.nii.gz"
    write_image(reorient(case.ct.with_array(np.round(case.ct.array).astype(np.int16)), "LPS"), scan)
    dash.upload(".ll-ct-upload", scan)
    dash.page.wait_for_function(
        "() => { const e = document.querySelector('.ll-ct-l1-hu'); return e && parseFloat(e.textContent) > 160; }",
        timeout=120_000)
    dash.page.wait_for_selector(".ll-ct-error", state="detached", timeout=30_000)
    assert "upload patient.nii.gz" in dash.page.content()
    assert {"L1", "L5"} <= set(dash.page.locator(".ll-ct-levels").inner_text().split())
    shot = dash.screenshot("nifti-upload")
    assert shot.stat().st_size > 10_000
    print(f"ct: server start → interactive page {dash.seconds_to_ready:.1f} s")
