"""What does the classifier look at? A panel: case or upload, model, method, class, layer, alpha.

The image, the model's prediction and probability, and the map overlaid are shown side by side;
every user error (a bad upload, a layer that is not a feature map) appears in the panel's message
line and the panel keeps working.
"""

from __future__ import annotations

import html
import time

import numpy as np

from lumbarlab.errors import LumbarLabError
from lumbarlab.widgets.base import Panel

__all__ = ["CAMPanel", "CLASS_NAMES"]

CLASS_NAMES = ("normal", "spondylolisthesis")


class CAMPanel(Panel):
    """Saliency of X-ray classifiers on phantom cases or uploaded radiographs.

    Args:
        models: display name → classifier taking (B, 1, 256, 256); default: the zoo's ``xray-slip``.
        seed, slip: the first phantom case (anatomy seed; L4 slip in %).

    Example:
        >>> panel = CAMPanel()
        >>> panel.set(method="hirescam", slip=30)
        >>> label, p = panel.prediction
        >>> label, p > 0.9
        ('spondylolisthesis', True)
        >>> type(panel.widget).__name__  # display it in a notebook: panel.widget
        'VBox'
    """

    css = "ll-cam"

    def __init__(self, models: dict | None = None, seed: int = 3, slip: float = 30.0, size: int = 256):
        import ipywidgets as w

        from lumbarlab.explain import METHODS

        super().__init__()
        if models is None:
            from lumbarlab import zoo

            models = {"xray-slip (zoo)": zoo.load("xray-slip")}
        if not models:
            raise LumbarLabError("CAMPanel needs at least one model.")
        self.models, self.size = dict(models), size
        self.image: np.ndarray | None = None
        self.source = "phantom"
        self.saliency = None
        self.last_seconds = 0.0
        style, lay = {"description_width": "110px"}, w.Layout(width="330px")
        self.control("model", w.Dropdown(options=list(self.models), description="Model", style=style, layout=lay),
                     self._on_model)
        self.control("method", w.Dropdown(options=list(METHODS), value="gradcam", description="Method", style=style,
                                          layout=lay), self.update)
        self.control("target", w.Dropdown(options=[("predicted", -1)] + [(n, i) for i, n in enumerate(CLASS_NAMES)],
                                          value=-1, description="Explain class", style=style, layout=lay), self.update)
        self.control("layer", w.Dropdown(options=[], description="Layer", style=style, layout=lay), self.update)
        self.control("alpha", w.FloatSlider(0.45, min=0.0, max=1.0, step=0.05, description="Map opacity", style=style,
                                            layout=lay), self._on_alpha)
        self.control("seed", w.IntText(seed, description="Phantom seed", style=style, layout=lay), self._on_case)
        self.control("slip", w.BoundedFloatText(slip, min=0.0, max=60.0, step=1.0, description="L4 slip (%)",
                                                style=style, layout=lay), self._on_case)
        self.upload = self.upload_control(self._on_image, size)
        self.picture = w.Image(format="png", layout=w.Layout(width="300px"))
        self.map_view = w.Image(format="png", layout=w.Layout(width="300px"))
        self.result = w.HTML()
        with self.holding():  # filling the layer list is not a user's change
            self._refresh_layers()
        self.widget = w.VBox([
            w.HBox([w.VBox(list(self.controls.values()) + [self.upload]), w.VBox([self.result, self.message])]),
            w.HBox([self.picture, self.map_view]),
        ], layout=w.Layout(min_width="640px"))
        self._load_phantom()
        self.update()

    # -- state --------------------------------------------------------------------------------
    @property
    def model(self):
        return self.models[self.controls["model"].value]

    @property
    def prediction(self) -> tuple[str, float] | None:
        """(class name, probability) of the last explained image."""
        if self.saliency is None:
            return None
        return CLASS_NAMES[int(self._predicted)], float(self._probability)

    def _refresh_layers(self) -> None:
        import torch

        from lumbarlab.explain import candidate_layers, default_layer

        example = torch.zeros(1, 1, self.size, self.size)
        layers = [n for n, s in candidate_layers(self.model, example) if max(s[1:]) > 1]
        ctl = self.controls["layer"]
        ctl.options = layers
        ctl.value = default_layer(self.model, example)

    def _load_phantom(self) -> None:
        from lumbarlab.phantom import sample_params
        from lumbarlab.phantom.fast2d import lateral_radiograph

        slip = float(self.controls["slip"].value)
        params = sample_params(int(self.controls["seed"].value), **({"slip": {"L4": slip}} if slip > 0 else {}))
        self.image = lateral_radiograph(params, size=self.size).image
        self.source = f"phantom seed {self.controls['seed'].value}, L4 slip {slip:.0f} %"

    # -- events ---------------------------------------------------------------------------------
    def _on_case(self) -> None:
        if int(self.controls["seed"].value) < 0:
            raise LumbarLabError("the phantom seed must be 0 or more.")
        self._load_phantom()
        self.update()

    def _on_model(self) -> None:
        with self.holding():
            self._refresh_layers()
        self.update()

    def _on_alpha(self) -> None:
        from lumbarlab.explain import overlay

        if self.saliency is not None:  # only the overlay depends on the opacity: no new forward pass
            self.show(self.map_view, overlay(self.image, self.saliency.maps[0], alpha=self.controls["alpha"].value))

    def _on_image(self, name: str, image: np.ndarray) -> None:
        self.image = image
        self.source = f"upload {name} (resized to {self.size}²)"
        self.update()

    # -- drawing ----------------------------------------------------------------------------------
    def update(self) -> None:
        from lumbarlab.explain import explain, overlay

        c = {k: ctl.value for k, ctl in self.controls.items()}
        start = time.perf_counter()
        import torch

        with torch.inference_mode():
            probs = torch.softmax(self.model(torch.from_numpy(self.image)[None, None]), 1)[0].numpy()
        self._predicted, self._probability = int(probs.argmax()), float(probs.max())
        target = None if c["target"] < 0 else int(c["target"])
        options = {"patch": 24, "stride": 12} if c["method"] == "occlusion" else {}
        try:
            self.saliency = explain(self.model, self.image, method=c["method"], target=target, layer=c["layer"], **options)
        except RuntimeError as exc:  # e.g. a layer whose output does not feed the score
            raise LumbarLabError(f"cannot explain at layer {c['layer']!r}: {exc}") from exc
        self.last_seconds = time.perf_counter() - start
        self.show(self.picture, self.image)
        self.show(self.map_view, overlay(self.image, self.saliency.maps[0], alpha=c["alpha"]))
        explained = CLASS_NAMES[int(self.saliency.target[0])]
        self.result.value = (
            f"<p>{html.escape(self.source)}</p>"
            f"<p>Prediction: <b class='ll-cam-prediction'>{CLASS_NAMES[self._predicted]}</b> "
            f"(p = <span class='ll-cam-probability'>{self._probability:.3f}</span>)</p>"
            f"<p>Map: {html.escape(c['method'])} for “{explained}” at layer <code>{html.escape(str(c['layer']))}</code> "
            f"— {1000 * self.last_seconds:.0f} ms</p>"
        )
