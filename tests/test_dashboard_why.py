"""The `why` dashboard in a real browser: load, change the case, upload a bad file and a good one,
switch the method — the page keeps answering and shows the zoo classifier's prediction."""

from __future__ import annotations

import io

import numpy as np
import pytest


@pytest.mark.server
@pytest.mark.browser
def test_why_dashboard_follows_case_upload_and_method(open_dashboard, tmp_path):
    from PIL import Image

    from lumbarlab.phantom import sample_params
    from lumbarlab.phantom.fast2d import lateral_radiograph

    dash = open_dashboard("why", ready=".ll-cam-prediction")
    assert dash.page.locator(".ll-cam-prediction").inner_text() == "spondylolisthesis"  # seed 3, L4 slip 30 %
    dash.screenshot("loaded")

    dash.set_number("ll-cam-slip", 0)
    dash.wait_text(".ll-cam-prediction", "normal")
    dash.screenshot("no-slip")

    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    dash.upload(".ll-cam-upload", bad)
    dash.page.wait_for_selector(".ll-cam-error", state="visible")
    assert "not a PNG, JPEG or DICOM" in dash.page.locator(".ll-cam-error").inner_text()

    rad = lateral_radiograph(sample_params(21, slip={"L5": 40.0}), size=320)
    good = tmp_path / "lateral.png"
    buf = io.BytesIO()
    Image.fromarray((255 * np.clip(rad.image, 0, 1)).astype(np.uint8)).save(buf, format="PNG")
    good.write_bytes(buf.getvalue())
    dash.upload(".ll-cam-upload", good)
    dash.wait_text(".ll-cam-prediction", "spondylolisthesis")
    assert dash.page.locator(".ll-cam-error").count() == 0  # the error line cleared
    assert "upload lateral.png" in dash.page.content()

    dash.page.select_option(".ll-cam-method select", "hirescam")
    dash.page.wait_for_function("() => document.body.textContent.includes('hirescam for')")
    shot = dash.screenshot("hirescam-upload")
    assert shot.stat().st_size > 10_000
    print(f"why: server start → interactive page {dash.seconds_to_ready:.1f} s")
