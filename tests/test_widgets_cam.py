"""CAMPanel without a browser: controls change the map, user errors show in the panel and it keeps working."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from lumbarlab.errors import LumbarLabError
from lumbarlab.models import build_model


@pytest.fixture(scope="module")
def panel():
    from lumbarlab.widgets import CAMPanel

    torch.manual_seed(0)
    net = build_model("classification", "mobilenet", size="tiny").eval()
    return CAMPanel(models={"tiny": net}, seed=2, slip=20.0, size=128)


def test_panel_draws_prediction_and_map(panel):
    name, p = panel.prediction
    assert name in ("normal", "spondylolisthesis") and 0.5 <= p <= 1.0
    assert panel.saliency.maps.shape == (1, 128, 128)
    assert panel.picture.value[:4] == b"\x89PNG" and panel.map_view.value[:4] == b"\x89PNG"
    assert "ll-cam-prediction" in panel.result.value


def test_controls_change_method_target_and_layer(panel):
    first = panel.saliency.maps.copy()
    panel.set(method="hirescam", target=0)
    assert panel.saliency.method == "hirescam" and panel.saliency.target[0] == 0
    assert "hirescam" in panel.result.value
    layer = panel.controls["layer"].options[0]
    panel.set(layer=layer)
    assert panel.saliency.layer == layer and not np.allclose(panel.saliency.maps, first)
    with pytest.raises(LumbarLabError, match="no control"):
        panel.set(colour="red")
    panel.set(method="gradcam", target=-1)


def test_bad_upload_shows_an_error_and_the_panel_keeps_working(panel):
    from PIL import Image

    panel._on_upload({"new": [{"name": "notes.txt", "content": b"not an image"}]})
    assert "ll-cam-error" in panel.message.value and "not a PNG" in panel.message.value
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((200, 150)) * 255).astype(np.uint8)).save(buf, format="PNG")
    panel._on_upload({"new": [{"name": "ok.png", "content": buf.getvalue()}]})
    assert panel.message.value == ""
    assert panel.image.shape == (128, 128) and "ok.png" in panel.result.value
    panel.set(seed=-1)
    assert "seed must be 0 or more" in panel.message.value
    panel.set(seed=4)
    assert panel.message.value == "" and "phantom seed 4" in panel.result.value


def test_opacity_redraws_the_overlay_without_a_forward_pass(panel, monkeypatch):
    import lumbarlab.explain as explain_module

    saliency, before = panel.saliency, panel.map_view.value
    monkeypatch.setattr(explain_module, "explain", lambda *a, **k: pytest.fail("opacity must not recompute the map"))
    panel.set(alpha=0.9)
    assert panel.saliency is saliency and panel.map_view.value != before
    monkeypatch.undo()
    panel.set(alpha=0.45)
