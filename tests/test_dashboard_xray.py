"""The X-ray dashboard in a real browser: load, change the slip, upload a bad file and a DICOM,
and read the Meyerding grade the page shows."""

from __future__ import annotations

import pytest


@pytest.mark.server
@pytest.mark.browser
def test_xray_dashboard_grades_follow_the_case_and_uploads(open_dashboard, tmp_path):
    import numpy as np
    from dicom_files import dicom_bytes as _dicom_bytes

    from lumbarlab.phantom import sample_params
    from lumbarlab.phantom.fast2d import lateral_radiograph

    dash = open_dashboard("xray", ready=".ll-xr-grade")
    assert dash.page.locator(".ll-xr-grade").inner_text() == "2"  # seed 3, L4 slip 30 % → Meyerding II
    assert dash.page.locator(".ll-xr-class").inner_text() == "spondylolisthesis"
    dash.screenshot("loaded")

    dash.set_number("ll-xr-slip", 10)
    dash.wait_text(".ll-xr-grade", "1", exact=True)
    slip = float(dash.page.locator(".ll-xr-slip-measured").inner_text().rstrip(" %"))
    assert slip == pytest.approx(10, abs=4)
    dash.screenshot("slip-10")

    bad = tmp_path / "huge.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\1" * 5000)  # a DICOM preamble with no readable data set
    dash.upload(".ll-xr-upload", bad)
    dash.page.wait_for_selector(".ll-xr-error", state="visible")
    assert "huge.dcm" in dash.page.locator(".ll-xr-error").inner_text()
    assert dash.page.locator(".ll-xr-grade").inner_text() == "1"  # the previous case is still shown

    rad = lateral_radiograph(sample_params(40, slip={"L5": 45.0}), size=300)
    pixels = np.round(4095 * (1 - np.clip(rad.image, 0, 1))).astype(np.uint16)  # MONOCHROME1: bone dark in the file
    dicom = tmp_path / "lateral.dcm"
    dicom.write_bytes(_dicom_bytes(pixels, "MONOCHROME1"))
    dash.upload(".ll-xr-upload", dicom)
    dash.wait_text(".ll-xr-grade", "2", exact=True)  # 45 % at L5 → Meyerding II
    # the panel clears the old message after it has drawn the new case: wait for that message, not a race
    dash.page.wait_for_selector(".ll-xr-error", state="detached", timeout=30_000)
    assert dash.page.locator(".ll-xr-error").count() == 0
    assert "upload lateral.dcm" in dash.page.content()
    shot = dash.screenshot("dicom-upload")
    assert shot.stat().st_size > 10_000
    print(f"xray: server start → interactive page {dash.seconds_to_ready:.1f} s")
