"""The registration dashboard in a real browser: it opens on an affine registration of a posture pair, a per-vertebra
rigid registration lowers the mean TRE the page shows, the overlay changes without a new registration, and a negative
seed shows an error while the last result stays."""

from __future__ import annotations

import pytest


@pytest.mark.server
@pytest.mark.browser
def test_registration_dashboard_registers_and_overlays(open_dashboard):
    dash = open_dashboard("registration", ready=".ll-reg-tre-mean")
    page = dash.page
    affine = float(page.locator(".ll-reg-tre-mean").inner_text())
    before = float(page.locator(".ll-reg-tre-before").inner_text())
    assert affine < 0.5 * before
    rows = page.locator(".ll-reg-tre").count()
    assert rows == 5
    dash.screenshot("affine")

    page.select_option(".ll-reg-method select", label="rigid per vertebra")
    page.wait_for_function(
        "() => { const e = document.querySelector('.ll-reg-summary b'); return e && e.textContent.includes('per vertebra'); }",
        timeout=120_000)
    per_vertebra = float(page.locator(".ll-reg-tre-mean").inner_text())
    assert per_vertebra < affine and per_vertebra < 1.0

    src = page.locator(".ll-reg-image").get_attribute("src")
    page.select_option(".ll-reg-view select", label="difference")
    page.wait_for_function("(old) => document.querySelector('.ll-reg-image').getAttribute('src') !== old", arg=src,
                           timeout=30_000)
    assert float(page.locator(".ll-reg-tre-mean").inner_text()) == per_vertebra

    dash.set_number("ll-reg-seed", -1)
    page.wait_for_selector(".ll-reg-error", state="visible", timeout=30_000)
    assert "seed must be 0 or more" in page.locator(".ll-reg-error").inner_text()
    assert float(page.locator(".ll-reg-tre-mean").inner_text()) == per_vertebra
    shot = dash.screenshot("per-vertebra")
    assert shot.stat().st_size > 10_000
    print(f"registration: server start → interactive page {dash.seconds_to_ready:.1f} s")
